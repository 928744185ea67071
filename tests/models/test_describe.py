"""Model inspection: FLOPs, parameter totals, memory per batch, and ``glassnet models --describe``."""

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import glassnet.models.describe  # noqa: F401  (imported explicitly until the models package re-exports it)
from glassnet.cli import main
from glassnet.data import DataSpec, load_dataset
from glassnet.errors import ConfigError
from glassnet.models import count_parameters, create_model, list_models, model_info, summarize
from glassnet.models.describe import describe
from glassnet.models.summary import example_input, measure_memory

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"

TABLE = DataSpec(
    modality="tabular",
    input_shape=(10,),
    task="classify",
    num_outputs=3,
    input_mean=(0.0,) * 10,
    input_std=(1.0,) * 10,
    name="table",
)
IMAGE = DataSpec(modality="image", input_shape=(1, 8, 8), task="classify", num_outputs=4, name="img")
SERIES = DataSpec(modality="sequence", input_shape=(12, 3), task="forecast", num_outputs=2, name="series")
TEXT = DataSpec(
    modality="text", input_shape=(9,), task="classify", num_outputs=3,
    extra={"vocab": ["<pad>", "<unk>", "a", "b"], "pad_index": 0}, name="txt",
)  # fmt: skip
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


# ---------------------------------------------------------------- FLOPs


def test_a_linear_model_costs_two_flops_per_multiply_add():
    summary = summarize(create_model("mlp", TABLE, depth=0), TABLE)
    assert summary["flops"] == 2 * 10 * 3
    linear = [row for row in summary["layers"] if row["type"] == "Linear"]
    assert [row["flops"] for row in linear] == [60]


def test_hidden_layers_add_their_products():
    summary = summarize(create_model("mlp", TABLE, depth=1, width=7), TABLE)
    assert summary["flops"] == 2 * (10 * 7 + 7 * 3)


def test_convolution_flops_per_output_pixel():
    model = create_model("cnn", IMAGE, channels=[4], hidden=0, dropout=0.0)
    conv = 2 * (4 * 8 * 8) * (1 * 3 * 3)  # every output value is a 3x3x1 dot product
    head = 2 * (4 * 4 * 4) * 4  # after 2x2 pooling
    assert summarize(model, IMAGE)["flops"] == conv + head


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("spec", [SERIES, TEXT], ids=["sequence", "text"])
def test_recurrent_layers_count_every_step(cell, spec):
    # LSTM runs as one fused kernel on CPU that FlopCounterMode cannot see by itself
    model = create_model(cell, spec, hidden=8, layers=1, bidirectional=False, embedding_dim=5)
    summary = summarize(model, spec)
    steps = spec.input_shape[0]
    inputs = 5 if spec.modality == "text" else spec.input_shape[1]
    recurrence = 2 * steps * GATES[cell] * 8 * (inputs + 8)
    assert summary["flops"] == recurrence + 2 * 8 * spec.num_outputs
    assert [row["flops"] for row in summary["layers"] if row["name"] == "rnn"] == [recurrence]


class Attention(nn.Module):
    """Self-attention then a linear head: ``nn.MultiheadAttention`` owns weights and has a child."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.attn(x, x, x)[0].mean(dim=1))


def test_attention_is_one_layer_with_all_its_parameters_and_flops():
    spec = DataSpec(modality="sequence", input_shape=(5, 4), task="classify", num_outputs=2)
    summary = summarize(Attention(), spec)
    rows = {row["name"]: row for row in summary["layers"]}
    assert set(rows) == {"attn", "head"}  # out_proj never runs as a module
    assert rows["attn"]["parameters"] == 4 * 12 + 12 + 4 * 4 + 4 and rows["attn"]["output_shape"] == [5, 4]
    projections = 2 * 5 * 4 * 12 + 2 * 5 * 4 * 4  # q, k, v in; out
    products = 2 * 2 * 5 * 5 * (2 + 2)  # per head: Q K^T and weights x V, head size 2
    assert rows["attn"]["flops"] == projections + products
    assert summary["flops"] == projections + products + 2 * 4 * 2
    assert summary["parameters"] == sum(row["parameters"] for row in rows.values())


def test_cudnn_formula_agrees_with_the_cpu_count():
    # no GPU in CI: feed the cuDNN formula the shapes a 2-layer bidirectional LSTM passes to aten._cudnn_rnn
    from glassnet.models.summary import _cudnn_rnn_flops

    model = create_model("lstm", SERIES, hidden=8, layers=2, bidirectional=True)
    weights = [p.shape for p in model.rnn._flat_weights]
    recurrence = _cudnn_rnn_flops(torch.Size([12, 1, 3]), weights)
    assert recurrence + 2 * 16 * SERIES.num_outputs == summarize(model, SERIES)["flops"]


# ---------------------------------------------------------------- parameters and memory


def test_parameter_totals_match_the_layer_rows_and_bytes():
    model = create_model("cnn", IMAGE, channels=[4, 8], hidden=16)
    model.features[0].weight.requires_grad_(False)
    summary = summarize(model, IMAGE)
    assert summary["parameters"] == sum(row["parameters"] for row in summary["layers"]) == count_parameters(model)
    assert summary["trainable_parameters"] == summary["parameters"] - model.features[0].weight.numel()
    assert measure_memory(model, IMAGE, 2)["parameter_bytes"] == 4 * summary["parameters"]


def test_activation_bytes_are_the_leaf_outputs_of_the_batch():
    memory = measure_memory(create_model("mlp", TABLE, depth=0), TABLE, batch_size=5)
    # Standardize (10), Flatten (10), Linear (3), Identity (3) outputs, float32
    assert memory["activation_bytes"] == 5 * (10 + 10 + 3 + 3) * 4
    assert memory["saved_for_backward_bytes"] == 5 * 10 * 4  # the linear layer keeps its input


@pytest.mark.parametrize("name,spec", [("mlp", TABLE), ("cnn", IMAGE), ("gru", SERIES), ("lstm", TEXT)])
def test_activation_memory_grows_linearly_with_batch_size(name, spec):
    model = create_model(name, spec)
    sizes = {b: measure_memory(model, spec, b) for b in (4, 8, 16)}
    four, eight, sixteen = (sizes[b]["activation_bytes"] for b in (4, 8, 16))
    assert 0 < four < eight and sixteen - eight == 2 * (eight - four)  # exact: a packed RNN adds a constant
    # autograd's buffers follow the batch too, up to kernel workspaces and aliasing (e.g. fused LSTM)
    four, eight, sixteen = (sizes[b]["saved_for_backward_bytes"] for b in (4, 8, 16))
    assert 0 < four < eight and sixteen / eight == pytest.approx(2, rel=0.05)


def test_measuring_leaves_the_model_as_it_was():
    model = create_model("cnn", IMAGE, channels=[4]).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summarize(model, IMAGE)
    measure_memory(model, IMAGE, 8)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # no batch-norm update
    assert not any(m._forward_hooks for m in model.modules())


def test_batch_size_must_be_positive():
    with pytest.raises(ConfigError, match="batch_size=0"):
        measure_memory(create_model("mlp", TABLE), TABLE, 0)


def test_text_input_is_full_length_token_ids():
    tokens = example_input(TEXT, batch_size=2)
    assert tokens.dtype == torch.int64 and tokens.shape == (2, 9)
    assert (tokens != 0).all()  # no padding, so a packed RNN runs every step
    padded_at_one = DataSpec(**{**TEXT.to_dict(), "extra": {"vocab": ["a", "<pad>"], "pad_index": 1}})
    assert (example_input(padded_at_one) != 1).all()
    assert example_input(SERIES, 3).dtype == torch.float32


# ---------------------------------------------------------------- describe()


def test_describe_joins_summary_and_memory_as_json():
    info = describe("lstm", TEXT, batch_size=4, hidden=16)
    assert info["name"] == "lstm" and info["data"] == "txt" and info["input_shape"] == [9]
    assert info["hparams"]["hidden"] == 16 and info["batch_size"] == 4
    assert info["flops"] > 0 and info["parameters"] == count_parameters(create_model("lstm", TEXT, hidden=16))
    json.dumps(info)  # results files and scripts read it


def test_describe_shows_tuple_defaults_as_lists():
    assert describe("cnn", IMAGE)["hparams"]["channels"] == [32, 64]


def test_describe_names_the_models_that_fit():
    with pytest.raises(ConfigError, match="Models that fit it: .*mlp"):
        describe("lstm", TABLE)


# ---------------------------------------------------------------- glassnet models --describe


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_prints_the_layer_table_and_totals(capsys):
    code, out, err = run_cli(capsys, "models", "--describe", "cnn", "--data", "digits", "model.channels=[16,32]")
    assert code == 0, err
    expected = describe("cnn", load_dataset("digits").spec, channels=[16, 32])
    assert re.search(r"features\.0\s+Conv2d\s+16 x 8 x 8\s+144\s+18,432", out)
    assert f"parameters:  {expected['parameters']:,} " in out
    assert f"FLOPs:       {expected['flops']:,} per example" in out
    assert "batch of 64" in out


def test_cli_batch_size_and_overrides_on_both_sides(capsys):
    code, out, err = run_cli(
        capsys, "models", "model.depth=0", "--describe", "mlp", "--data", "breast-cancer", "--batch-size", "8"
    )
    assert code == 0, err
    assert "depth=0" in out and "batch of 8;" in out
    assert "FLOPs:       120 per example" in out  # 30 features x 2 classes x 2


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--describe", "cnx", "--data", "digits"], "Did you mean 'cnn'"),
        (["--describe", "cnn", "--data", "digitz"], "Did you mean 'digits'"),
        (["--describe", "lstm", "--data", "digits"], "Models that fit it: cnn"),
        (["--describe", "cnn"], "needs --data"),
        (["--describe", "cnn", "--data", "digits", "model.chanels=[4]"], "Did you mean 'channels'"),
        (["--describe", "cnn", "--data", "digits", "lr=0.1"], "model.<hyper-parameter>=value"),
        (["--describe", "cnn", "--data", "digits", "--batch-size", "0"], "--batch-size 0"),
        (["--data", "digits", "model.width=3"], "--describe NAME only"),
    ],
)
def test_cli_user_errors_exit_2_with_a_message(capsys, args, fragment):
    code, _, err = run_cli(capsys, "models", *args)
    assert code == 2
    assert err.startswith("glassnet: error:") and fragment in err, err


def test_cli_listing_for_a_dataset_shows_parameter_counts(capsys):
    code, out, _ = run_cli(capsys, "models", "--data", "breast-cancer")
    assert code == 0
    assert out.split()[:2] == ["name", "parameters"]
    spec = load_dataset("breast-cancer").spec
    assert re.search(rf"^mlp\s+{count_parameters(create_model('mlp', spec)):,}\s", out, re.MULTILINE)


def test_cli_listing_without_data_keeps_its_columns(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    assert out.split()[:4] == ["name", "modalities", "tasks", "description"]


# ---------------------------------------------------------------- docs


@pytest.mark.parametrize("name", list_models())
def test_docs_list_every_model_with_its_hyper_parameters(name):
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith(f"| `{name}` |")]
    assert rows, f"docs/models.md has no row for {name!r}"
    for key in model_info(name).defaults():
        assert f"`{key}=" in rows[0], f"docs/models.md does not list {name}'s {key!r}"
