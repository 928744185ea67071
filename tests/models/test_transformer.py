import re

import pytest
import torch
from torch.utils.data import TensorDataset

import glassnet.models.transformer  # noqa: F401  (registers "transformer" before the package imports it)
from glassnet.data import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.models import create_model
from glassnet.models.layers import Standardize
from glassnet.models.transformer import CausalTransformer, EncoderLayer, sinusoidal_table
from glassnet.train import Trainer

VOCAB = ["<pad>", "<unk>"] + [f"w{i}" for i in range(20)]
TEXT = DataSpec(modality="text", input_shape=(10,), task="classify", num_outputs=3, extra={"vocab": VOCAB})
SEQ = DataSpec(modality="sequence", input_shape=(8, 2), task="regress", num_outputs=1, input_mean=(5.0, 0.0),
               input_std=(2.0, 1.0), target_mean=(100.0,), target_std=(10.0,))  # fmt: skip
SMALL = {"d_model": 16, "heads": 2, "layers": 2}
VARIANTS = [(pool, positional) for pool in ("mean", "cls") for positional in ("sinusoidal", "learned")]


def text_model(pool="mean", positional="sinusoidal", **hparams):
    torch.manual_seed(0)
    return create_model("transformer", TEXT, pool=pool, positional=positional, **{**SMALL, **hparams}).eval()


@pytest.mark.parametrize("pool,positional", VARIANTS)
def test_output_shapes_for_text_and_sequences(pool, positional):
    tokens = torch.tensor([[2, 3, 4, 0, 0, 0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]])
    assert text_model(pool, positional)(tokens).shape == (2, 3)
    model = create_model("transformer", SEQ, pool=pool, positional=positional, **SMALL)
    out = model(torch.randn(5, 8, 2))
    assert out.shape == (5, 1)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("pool,positional", VARIANTS)
def test_padding_never_changes_the_output(pool, positional):
    model = text_model(pool, positional)
    short = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0, 0]])
    longer = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12, 13, 14]])
    alone = model(short)
    torch.testing.assert_close(model(torch.cat([short, longer]))[:1], alone)  # batched with a longer text
    torch.testing.assert_close(model(short[:, :4]), alone)  # less padding
    # the padded positions are really ignored: real tokens there change the result
    assert not torch.allclose(model(longer), alone, atol=1e-4)
    with torch.inference_mode():  # how Trainer.evaluate runs it: PyTorch may take its fused fast path
        torch.testing.assert_close(model(torch.cat([short, longer]))[:1], alone)


@pytest.mark.parametrize("pool,positional", VARIANTS)
def test_what_lies_under_the_padding_is_ignored(pool, positional):
    model = text_model(pool, positional)
    short = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0, 0]])
    before = model(short)
    with torch.no_grad():
        model.embed.table.weight[0].normal_(std=10.0)  # the vector that padded steps carry
    torch.testing.assert_close(model(short), before)
    with torch.no_grad():
        model.embed.table.weight[5].normal_(std=10.0)  # a real token's vector: must matter
    assert not torch.allclose(model(short), before, atol=1e-4)


def test_all_padding_text_is_read_as_one_padding_token():
    model = text_model()
    out = model(torch.zeros(2, 10, dtype=torch.long))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], out[1])


def test_sequences_are_standardised_then_projected():
    model = create_model("transformer", SEQ, **SMALL)
    assert isinstance(model.normalize, Standardize)
    x = torch.randn(64, 8, 2) * torch.tensor([2.0, 1.0]) + torch.tensor([5.0, 0.0])
    torch.testing.assert_close(model.normalize(x).mean(dim=(0, 1)), torch.zeros(2), atol=0.3, rtol=0)
    assert model.project.in_features == 2


def test_sinusoidal_positions_are_the_published_formula():
    table = sinusoidal_table(50, 6)
    assert table.shape == (50, 6)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0] * 3))
    torch.testing.assert_close(table[7, 2], torch.sin(torch.tensor(7 / 10000 ** (2 / 6))))
    assert sinusoidal_table(4, 5).shape == (4, 5)  # odd widths work too


def test_inputs_longer_than_the_spec_are_refused():
    with pytest.raises(DataError, match="11 steps"):
        text_model(positional="learned")(torch.ones(1, 11, dtype=torch.long))


def test_d_model_must_divide_into_heads():
    with pytest.raises(ConfigError, match=r"d_model=30, heads=4"):
        create_model("transformer", TEXT, d_model=30, heads=4)


@pytest.mark.parametrize(
    "hparams,message",
    [
        ({"pool": "max"}, "pool must be one of mean, cls. Received: pool='max'"),
        ({"positional": "rotary"}, "Received: positional='rotary'"),
        ({"layers": 0}, "Received: layers=0"),
        ({"dropout": 1.5}, "Received: dropout=1.5"),
    ],
)
def test_bad_hyperparameters_are_quoted(hparams, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_model("transformer", TEXT, **hparams)


@pytest.mark.parametrize(
    "spec,suits",
    [
        (DataSpec(modality="image", input_shape=(1, 8, 8), task="classify", num_outputs=2), "cnn"),
        (DataSpec(modality="tabular", input_shape=(5,), task="classify", num_outputs=2), "mlp"),
    ],
)
def test_images_and_tables_are_refused_with_the_models_that_fit(spec, suits):
    with pytest.raises(ConfigError, match="'transformer'") as error:
        create_model("transformer", spec)
    assert "Models that fit it" in str(error.value) and suits in str(error.value)
    assert "transformer" not in str(error.value).split("Models that fit it")[1]


@pytest.mark.parametrize(
    "spec,message",
    [
        (DataSpec(modality="sequence", input_shape=(12,), task="forecast", num_outputs=1), r"T x C .*\(12,\)"),
        (DataSpec(modality="text", input_shape=(10,), task="classify", num_outputs=2), "vocabulary"),
        (
            DataSpec(
                modality="text",
                input_shape=(10,),
                task="classify",
                num_outputs=2,
                extra={"vocab": VOCAB, "pad_index": 99},
            ),
            "pad_index=99",
        ),  # fmt: skip
    ],
)
def test_specs_that_do_not_suit_a_transformer(spec, message):
    with pytest.raises(ConfigError, match=message):
        create_model("transformer", spec)


def token_five_task(n, generator):
    """Texts of 2-10 tokens from w0..w19; the label says whether token id 5 occurs."""
    tokens = torch.randint(2, len(VOCAB), (n, 10), generator=generator)
    lengths = torch.randint(2, 11, (n,), generator=generator)
    tokens = tokens.masked_fill(torch.arange(10)[None, :] >= lengths[:, None], 0)
    return TensorDataset(tokens, (tokens == 5).any(dim=1).long())


def test_learns_whether_a_token_occurs():
    generator = torch.Generator().manual_seed(0)
    train, test = token_five_task(512, generator), token_five_task(512, generator)
    spec = DataSpec(modality="text", input_shape=(10,), task="classify", num_outputs=2, extra={"vocab": VOCAB})
    torch.manual_seed(0)
    model = create_model("transformer", spec, d_model=32, heads=2, layers=1)
    trainer = Trainer(max_epochs=4, batch_size=32, lr=1e-2, device="cpu")  # about 1 s on one CPU thread
    assert trainer.evaluate(model, test)["accuracy"] < 0.8  # about half the texts hold token 5
    trainer.fit(model, train)
    assert trainer.evaluate(model, test)["accuracy"] >= 0.95


# --------------------------------------------------------------------------- causal decoder


def decoder(**hparams):
    torch.manual_seed(0)
    return CausalTransformer(vocab_size=12, **{"context": 16, "d_model": 16, "heads": 2, "layers": 2, **hparams})


def test_decoder_gives_next_token_logits_and_ties_its_projection():
    model = decoder()
    assert model(torch.randint(0, 12, (3, 9))).shape == (3, 9, 12)
    assert sum(p.numel() for p in model.parameters() if p.shape == (12, 16)) == 12 * 16  # one shared table


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_later_tokens_never_change_earlier_logits(positional):
    model = decoder(positional=positional).eval()
    tokens = torch.randint(0, 12, (2, 10), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 12
    before, after = model(tokens), model(changed)
    torch.testing.assert_close(after[:, :6], before[:, :6])
    assert not torch.allclose(after[:, 6:], before[:, 6:], atol=1e-4)


def test_generate_appends_the_requested_tokens_beyond_the_context():
    model = decoder().train()
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = model.generate(prompt, max_new_tokens=20, top_k=3)
    assert out.shape == (2, 23)  # 23 > context 16: the prompt window slides
    assert torch.equal(out[:, :3], prompt)
    assert ((out >= 0) & (out < 12)).all()
    assert model.training  # the mode is restored
    assert model.generate(torch.tensor([7]), max_new_tokens=4).shape == (5,)


def test_generation_is_reproducible_with_a_seeded_generator():
    model = decoder()
    prompt = torch.tensor([[3, 1, 4]])

    def sample(seed):
        return model.generate(prompt, 24, temperature=1.5, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(7), sample(7))
    assert not torch.equal(sample(7), sample(8))


def test_greedy_decoding_equals_top_1_sampling():
    model = decoder()
    prompt = torch.tensor([[3, 1, 4]])
    greedy = model.generate(prompt, 10, temperature=0.0)
    assert torch.equal(model.generate(prompt, 10, top_k=1, generator=torch.Generator().manual_seed(0)), greedy)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"max_new_tokens": -1}, "max_new_tokens=-1"),
        ({"max_new_tokens": 2, "temperature": -0.5}, "temperature=-0.5"),
        ({"max_new_tokens": 2, "top_k": 0}, "top_k=0"),
    ],
)
def test_bad_sampling_options_are_quoted(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        decoder().generate(torch.tensor([[1]]), **kwargs)


def test_decoder_sizes_are_checked():
    with pytest.raises(ConfigError, match="d_model=10, heads=4"):
        CausalTransformer(vocab_size=12, d_model=10, heads=4)


def test_decoder_learns_to_continue_a_repeating_pattern():
    pattern = torch.arange(2, 10).repeat(8)  # 2 3 ... 9 2 3 ... 9
    windows = pattern.unfold(0, 17, 1)
    model = decoder(dropout=0.0, layers=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        logits = model(windows[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 12), windows[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    continued = model.generate(torch.tensor([5, 6, 7]), max_new_tokens=12, temperature=0.0)
    assert continued.tolist() == [5, 6, 7, 8, 9, 2, 3, 4, 5, 6, 7, 8, 9, 2, 3]


def attention_case(kind):
    """A small classifier (with padding) or decoder (causal) that drops attention weights, and inputs."""
    torch.manual_seed(0)
    if kind == "classifier":
        model = create_model("transformer", TEXT, dropout=0.3, **SMALL)
        x = torch.tensor([[2, 3, 4, 0, 0, 0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]])
    else:
        model = CausalTransformer(vocab_size=12, context=8, d_model=16, heads=2, layers=2, dropout=0.3)
        x = torch.randint(0, 12, (3, 8))
    return model, x


def use_torch_s_layer(monkeypatch):
    """torch's own ``TransformerEncoderLayer`` forward (inference fast path included) in glassnet's."""
    monkeypatch.setattr(EncoderLayer, "forward", torch.nn.TransformerEncoderLayer.forward)
    monkeypatch.setattr(EncoderLayer, "_sa_block", torch.nn.TransformerEncoderLayer._sa_block)


@pytest.mark.parametrize("kind", ["classifier", "decoder"])
def test_attention_computed_on_a_cpu_to_drop_weights_is_torch_s_attention(kind, monkeypatch):
    """Training on a CPU with dropout, a layer computes attention itself to draw its mask with
    ``fast_dropout``; with every mask replaced by the identity it must give torch's attention, the
    padding (classifier) and the causal mask (decoder) applied."""
    import glassnet.models.layers as layers_module

    model, x = attention_case(kind)
    layer = (model.encoder if kind == "classifier" else model.decoder).layers[0]
    assert layer.self_attn.dropout == 0.3 and layer.dropout1.p == 0.3
    with torch.no_grad():
        use_torch_s_layer(monkeypatch)
        reference = model.eval()(x)
        monkeypatch.undo()
        monkeypatch.setattr(layers_module, "fast_dropout", lambda values, p, training=True: values)
        assert torch.allclose(model.train()(x), reference, atol=1e-5)
        monkeypatch.undo()
        torch.manual_seed(1)
        assert not torch.allclose(model(x), reference, atol=1e-3)  # training drops


@pytest.mark.parametrize("kind", ["classifier", "decoder"])
@pytest.mark.parametrize("bf16", [False, True])
def test_evaluation_on_a_cpu_matches_torch_without_its_fast_path(kind, bf16, monkeypatch):
    """torch's inference fast path (``_transformer_encoder_layer_fwd``) ignores CPU autocast and was 2-3x
    slower than the layer's own blocks; a CPU never takes it, and the outputs are torch's."""
    model, x = attention_case(kind)
    model.eval()
    with torch.inference_mode():
        use_torch_s_layer(monkeypatch)
        reference = model(x)
        monkeypatch.undo()

        def refuse(*args, **kwargs):
            raise AssertionError("torch's inference fast path ran")

        monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", refuse)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            out = model(x)
    assert out.dtype == (torch.bfloat16 if bf16 else torch.float32)
    torch.testing.assert_close(out.float(), reference, atol=0.1 if bf16 else 1e-5, rtol=0.05 if bf16 else 1e-5)


def test_a_model_summary_still_sees_each_attention_layer():
    """Review bug: evaluation on a CPU computed attention without calling ``self_attn``, so the summary's
    hooks missed it and the layer rows no longer added up to the totals."""
    from glassnet.models.summary import summarize

    summary = summarize(text_model(), TEXT)
    names = [row["name"] for row in summary["layers"]]
    assert "encoder.layers.0.self_attn" in names and "encoder.layers.1.self_attn" in names
    assert sum(row["parameters"] for row in summary["layers"]) == summary["parameters"]
    assert sum(row["flops"] for row in summary["layers"]) == summary["flops"]


def test_an_unbatched_sequence_goes_through_a_layer_as_in_torch():
    layer = text_model().encoder.layers[0]
    steps = torch.randn(1, 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(layer(steps[0]), layer(steps)[0])
