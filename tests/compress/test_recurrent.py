"""Structured pruning of recurrent models: hidden units and embedding dimensions really removed."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from glassnet.compress import channel_prune, compress, load_compressed, recurrent_prune, save_compressed
from glassnet.compress.recurrent import GATES, shrink
from glassnet.data import DataSpec
from glassnet.errors import ConfigError
from glassnet.models import count_parameters, create_model, load_model, save_model

TEXT = DataSpec(
    modality="text", input_shape=(12,), task="classify", num_outputs=3, extra={"vocab_size": 40, "pad_index": 0}
)
SEQUENCE = DataSpec(modality="sequence", input_shape=(10, 4), task="classify", num_outputs=3)
TAGS = DataSpec(modality="text", input_shape=(12,), task="tag", num_outputs=5, extra={"vocab_size": 40})


def _tokens(n: int = 6) -> torch.Tensor:
    x = torch.randint(1, 40, (n, 12), generator=torch.Generator().manual_seed(1))
    for i in range(n):
        x[i, 2 + 2 * i :] = 0  # different lengths, padding at the end
    return x


def _inputs(spec: DataSpec) -> torch.Tensor:
    return _tokens() if spec.modality == "text" else torch.randn(6, *spec.input_shape)


def _kill(model: nn.Module, dead: torch.Tensor, dead_dims: torch.Tensor | None) -> None:
    """Zero every weight of the ``dead`` units (all layers, directions) and of ``dead_dims``: a dead
    unit's state stays 0 and nothing reads it, so removing it changes no output."""
    rnn, head = model.rnn, model.head[1]
    hidden, gates = rnn.hidden_size, GATES[type(rnn)]
    directions = 2 if rnn.bidirectional else 1
    rows = torch.cat([g * hidden + dead for g in range(gates)])
    outputs = torch.cat([d * hidden + dead for d in range(directions)])
    with torch.no_grad():
        for name, tensor in rnn.named_parameters():
            tensor[rows] = 0
            if name.startswith("weight_hh"):
                tensor[:, dead] = 0
            elif name.startswith("weight_ih") and not name.startswith("weight_ih_l0"):
                tensor[:, outputs] = 0
            elif name.startswith("weight_ih_l0") and dead_dims is not None:
                tensor[:, dead_dims] = 0
        head.weight[:, outputs] = 0
        if dead_dims is not None:
            model.embedding.weight[:, dead_dims] = 0


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pool", ["last", "mean", "max"])
def test_removing_dead_units_changes_no_output(cell, bidirectional, pool):
    torch.manual_seed(0)
    model = create_model(cell, TEXT, hidden=8, layers=2, bidirectional=bidirectional, embedding_dim=6, pool=pool)
    model.eval()
    _kill(model, torch.tensor([0, 3, 4, 6]), torch.tensor([1, 2, 5]))
    x = _tokens()
    pruned = recurrent_prune(model, 0.5)
    assert pruned.rnn.hidden_size == 4 and pruned.embedding.embedding_dim == 3
    assert torch.allclose(pruned(x), model(x), atol=1e-6)


@pytest.mark.parametrize("spec", [SEQUENCE, TAGS], ids=["sequence", "tagging"])
def test_sequence_inputs_and_per_step_heads_are_pruned_too(spec):
    torch.manual_seed(0)
    model = create_model("gru", spec, hidden=8, layers=2, bidirectional=True).eval()
    _kill(model, torch.tensor([1, 2, 5, 7]), None)
    x = _inputs(spec)
    pruned = recurrent_prune(model, 0.5, embedding=False)
    assert pruned.rnn.hidden_size == 4
    assert torch.allclose(pruned(x), model(x), atol=1e-6)


def test_units_of_each_layer_and_direction_are_chosen_on_their_own():
    torch.manual_seed(0)
    model = create_model("lstm", TEXT, hidden=6, layers=2, bidirectional=True, embedding_dim=4).eval()
    rnn = model.rnn
    with torch.no_grad():  # make unit 0 of the forward direction and unit 5 of the backward one tiny
        for name, tensor in rnn.named_parameters():
            unit = 5 if name.endswith("_reverse") else 0
            tensor[[g * 6 + unit for g in range(4)]] *= 1e-3
    pruned = recurrent_prune(model, 1 / 6, embedding=False)
    forward, backward = pruned.rnn.weight_hh_l1, pruned.rnn.weight_hh_l1_reverse
    assert forward.shape == backward.shape == (4 * 5, 5)
    # the kept rows are the original rows without the tiny unit, in order
    assert torch.equal(forward[:5, :], rnn.weight_hh_l1[1:6, 1:6])
    assert torch.equal(backward[:5, :], rnn.weight_hh_l1_reverse[0:5, 0:5])


def test_shapes_and_parameter_count_of_a_pruned_lstm():
    model = create_model("lstm", TEXT, hidden=16, layers=2, bidirectional=True, embedding_dim=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = recurrent_prune(model, 0.5)
    h, e, vocab, classes = 8, 5, 40, 3
    expected = (
        vocab * e + 2 * (4 * h * (e + h) + 8 * h) + 2 * (4 * h * (2 * h + h) + 8 * h) + (2 * h * classes + classes)
    )
    assert count_parameters(pruned) == expected
    assert pruned.head[1].in_features == 2 * h
    assert pruned(_tokens()).shape == (6, 3)
    # the original is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.rnn.hidden_size == 16 and model.glassnet_arch["hparams"]["hidden"] == 16
    # the pruned model's hyper-parameters describe it: create_model builds the same shapes
    assert pruned.glassnet_arch["hparams"]["hidden"] == h and pruned.glassnet_arch["hparams"]["embedding_dim"] == e
    rebuilt = create_model("lstm", TEXT, **pruned.glassnet_arch["hparams"])
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in pruned.state_dict().items()}


def test_embedding_can_be_kept_whole():
    model = create_model("gru", TEXT, hidden=8, embedding_dim=6)
    pruned = recurrent_prune(model, 0.25, embedding=False)
    assert pruned.embedding.embedding_dim == 6 and pruned.rnn.hidden_size == 6


def test_pruned_recurrent_model_round_trips_through_both_file_formats(tmp_path):
    torch.manual_seed(0)
    model = create_model("lstm", TEXT, hidden=8, layers=2, embedding_dim=6).eval()
    pruned = recurrent_prune(model, 0.5)
    x = _tokens()
    save_compressed(pruned, TEXT, tmp_path / "pruned.safetensors")
    loaded, _ = load_compressed(tmp_path / "pruned.safetensors")
    assert torch.equal(loaded(x), pruned(x))
    save_model(pruned, TEXT, tmp_path / "run")  # an ordinary run: glassnet.load reads it
    again, _ = load_model(tmp_path / "run")
    assert torch.equal(again(x), pruned(x))


def test_file_with_the_original_hyper_parameters_still_loads(tmp_path):
    """The file's tensor shapes alone narrow the recurrent layers (resize_to), whatever its hparams say."""
    torch.manual_seed(0)
    model = create_model("gru", TEXT, hidden=8, layers=2, bidirectional=True, embedding_dim=6).eval()
    pruned = recurrent_prune(model, 0.5)
    pruned.glassnet_arch = model.glassnet_arch
    save_compressed(pruned, TEXT, tmp_path / "pruned.safetensors")
    loaded, _ = load_compressed(tmp_path / "pruned.safetensors")
    assert loaded.rnn.hidden_size == 4 and loaded.rnn.input_size == 3
    assert torch.equal(loaded(_tokens()), pruned(_tokens()))


def test_iterative_pruning_fine_tunes_after_each_equal_round():
    model = create_model("lstm", TEXT, hidden=12, embedding_dim=8)
    seen = []
    pruned = recurrent_prune(
        model, 0.5, steps=3, fine_tune=lambda m: seen.append((m.rnn.hidden_size, m.embedding.embedding_dim))
    )
    assert seen == [(10, 7), (8, 5), (6, 4)]
    assert pruned.rnn.hidden_size == 6


def test_channel_prune_sends_recurrent_models_to_the_unit_pruner():
    model = create_model("gru", SEQUENCE, hidden=8)
    pruned = channel_prune(model, torch.randn(2, 10, 4), 0.5)
    assert pruned.rnn.hidden_size == 4
    assert count_parameters(pruned) < 0.4 * count_parameters(model)


def test_bad_inputs_are_config_errors():
    model = create_model("lstm", TEXT, hidden=2)
    with pytest.raises(ConfigError, match="removes 0 and leaves 2"):
        recurrent_prune(model, 0.1)
    with pytest.raises(ConfigError, match="rnn / lstm / gru"):
        recurrent_prune(nn.Sequential(nn.Linear(2, 2)), 0.5)
    with pytest.raises(ConfigError, match="must be in"):
        recurrent_prune(model, 1.0)
    with pytest.raises(ConfigError, match="prune_steps"):
        recurrent_prune(create_model("lstm", TEXT, hidden=8), 0.5, steps=0)
    with pytest.raises(ConfigError, match="cannot grow"):
        shrink(create_model("lstm", TEXT, hidden=8), 9)


def test_compress_prunes_a_text_lstm_structurally_and_fine_tunes_it(token_lstm, tokens, tmp_path):
    result = compress(token_lstm, tokens, prune=0.5, fine_tune_epochs=3, lr=5e-3, repeats=5, threads=1, out=tmp_path)
    record = result.variant("pruned-structured")
    assert not result.skipped
    assert "hidden units" in record["method"] and "embedding" in record["method"]
    assert record["parameters"] < 0.4 * result.variant("fp32")["parameters"]
    assert record["size_bytes"] < 0.45 * result.variant("fp32")["size_bytes"]
    assert result.variant("fp32")["accuracy"] >= 0.9  # the task is learnt...
    assert record["accuracy"] >= result.variant("fp32")["accuracy"] - 0.05  # ...and survives pruning
    loaded, _ = load_compressed(tmp_path / "pruned-structured.safetensors")
    assert loaded.rnn.hidden_size == 8 and loaded.embedding.embedding_dim == 6


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("GLASSNET_DATA"), reason="needs GLASSNET_DATA (the sentiment corpus)")
def test_sentiment_lstm_keeps_its_accuracy_with_half_its_units():
    """Half the hidden units and embedding dimensions of a sentiment BiLSTM (12,000 training texts),
    2 epochs of fine-tuning: within 1.5 points of the original's test accuracy, half the parameters."""
    from torch.utils.data import TensorDataset

    from glassnet.data import DataBundle, load_dataset
    from glassnet.train import Trainer

    full = load_dataset("sentiment", max_length=32, vocab_size=5000)
    x, y = full.train.tensors
    chosen = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:12_000]  # train is sorted by class
    data = DataBundle(train=TensorDataset(x[chosen], y[chosen]), val=full.val, test=full.test, spec=full.spec)
    torch.manual_seed(0)  # one torch thread (the one_thread fixture)
    model = create_model("lstm", data.spec, hidden=64, embedding_dim=48)
    Trainer(task="classify", max_epochs=3, batch_size=64, device="cpu", seed=0).fit(model, data)
    result = compress(model.eval(), data, prune=0.5, fine_tune_epochs=2, lr=3e-3, repeats=5)
    base, pruned = result.variant("fp32"), result.variant("pruned-structured")
    assert base["accuracy"] >= 0.69
    assert pruned["accuracy"] >= base["accuracy"] - 0.015
    assert pruned["parameter_ratio"] >= 2  # half the embedding table, about a third of the LSTM
