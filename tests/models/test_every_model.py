"""The registry-driven test: every registered model, on every kind of data it accepts."""

import pytest
import torch
from torch import nn

from glassnet.data import DataSpec
from glassnet.models import create_model, list_models, load_model, model_info, save_model
from glassnet.models.outputs import prediction

SPECS = {
    "image": DataSpec(
        modality="image", input_shape=(1, 8, 8), task="classify", num_outputs=4,
        input_mean=(0.3,), input_std=(0.2,), name="img",
    ),
    "image-rgb": DataSpec(modality="image", input_shape=(3, 12, 10), task="classify", num_outputs=3, name="rgb"),
    "tabular": DataSpec(
        modality="tabular", input_shape=(5,), task="classify", num_outputs=2,
        input_mean=(1.0,) * 5, input_std=(2.0,) * 5, name="tab",
    ),
    "tabular-regress": DataSpec(
        modality="tabular", input_shape=(5,), task="regress", num_outputs=2,
        target_mean=(10.0, -3.0), target_std=(4.0, 0.5), name="reg",
    ),
    "text": DataSpec(
        modality="text", input_shape=(7,), task="classify", num_outputs=3,
        extra={"vocab": ["<pad>", "<unk>", "a", "b", "c", "d"], "pad_index": 0}, name="txt",
    ),
    "sequence-forecast": DataSpec(
        modality="sequence", input_shape=(12, 3), task="forecast", num_outputs=4,
        input_mean=(0.0, 1.0, 2.0), input_std=(1.0, 2.0, 3.0), target_mean=(0.0,) * 4, target_std=(1.0,) * 4,
        name="seq",
    ),
    "audio": DataSpec(
        modality="audio", input_shape=(1, 16, 20), task="classify", num_outputs=3,
        input_mean=(-4.0,), input_std=(2.0,), name="mel",
    ),
    "audio-transcribe": DataSpec(
        modality="audio", input_shape=(1, 16, 21), task="transcribe", num_outputs=5,
        class_names=("<blank>", "<space>", "a", "b", "c"), input_mean=(-4.0,), input_std=(2.0,), name="speech",
        extra={"alphabet": ["<blank>", " ", "a", "b", "c"], "max_transcript": 6},
    ),
    "audio-synthesize": DataSpec(
        modality="audio", input_shape=(2, 6), task="synthesize", num_outputs=9, name="voice",
        extra={"symbols": ["<pad>", "^", "$", " ", "a", "b"], "n_mels": 8, "max_frames": 30, "mel_mean": -5.0},
    ),
    "sequence-classify": DataSpec(
        modality="sequence", input_shape=(16, 2), task="classify", num_outputs=3,
        input_mean=(0.0, 5.0), input_std=(1.0, 2.0), name="seqc",
    ),
    "image-reconstruct": DataSpec(
        modality="image", input_shape=(1, 8, 8), task="reconstruct", num_outputs=64,
        input_mean=(0.3,), input_std=(0.2,), name="imgrec",
    ),
    "tabular-reconstruct": DataSpec(
        modality="tabular", input_shape=(5,), task="reconstruct", num_outputs=5,
        input_mean=(1.0,) * 5, input_std=(2.0,) * 5, name="tabrec",
    ),
    "text-seq2seq": DataSpec(
        modality="text", input_shape=(7,), task="seq2seq", num_outputs=7, name="s2s",
        extra={"vocab": ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"],
               "target_vocab": ["<pad>", "<unk>", "<bos>", "<eos>", "x", "y", "z"],
               "pad_index": 0, "bos_index": 2, "eos_index": 3, "max_target_length": 5},
    ),
    "text-language_model": DataSpec(
        modality="text", input_shape=(7,), task="language_model", num_outputs=6, name="chars",
        extra={"vocab": ["<pad>", "<unk>", "a", "b", "c", "d"], "pad_index": 0, "unk_index": 1, "context": 7},
    ),
    "image-generate": DataSpec(
        modality="image", input_shape=(3, 12, 10), task="generate", num_outputs=1, class_names=("a", "b", "c"),
        input_mean=(0.5,) * 3, input_std=(0.25,) * 3, name="gen",
    ),
    "image-segment": DataSpec(
        modality="image", input_shape=(1, 12, 10), task="segment", num_outputs=3,
        class_names=("background", "a", "b"), input_mean=(0.3,), input_std=(0.2,), name="seg",
    ),
    "image-instances": DataSpec(
        modality="image", input_shape=(1, 12, 10), task="instances", num_outputs=3,
        class_names=("background", "a", "b"), input_mean=(0.3,), input_std=(0.2,), name="inst",
    ),
    "image-detect": DataSpec(
        modality="image", input_shape=(1, 20, 18), task="detect", num_outputs=3, class_names=("a", "b", "c"),
        input_mean=(0.3,), input_std=(0.2,), name="det", extra={"max_objects": 2},
    ),
    "control-discrete": DataSpec(
        modality="tabular", input_shape=(4,), task="control", num_outputs=2, name="cartpole-like",
        class_names=("left", "right"), extra={"action": {"kind": "discrete", "n": 2}},
    ),
    "control-continuous": DataSpec(
        modality="tabular", input_shape=(3,), task="control", num_outputs=1, name="pendulum-like",
        extra={"action": {"kind": "continuous", "dim": 1, "low": [-2.0], "high": [2.0]}},
    ),
    "control-frames": DataSpec(
        modality="image", input_shape=(4, 84, 84), task="control", num_outputs=6, name="atari-like",
        extra={"action": {"kind": "discrete", "n": 6}},
    ),
}  # fmt: skip

# a policy's decision (forward) does not reach its critics: the value estimate is trained as well
CONTROL_FITS = {"q_network": ("discrete",), "sac_agent": ("continuous",), "actor_critic": ("discrete", "continuous")}


def example_inputs(spec, n=4):
    """Random inputs of the right kind: token ids with end padding for text, symbol ids and durations for speech
    synthesis, floats otherwise."""
    if spec.task == "synthesize":
        ids = torch.randint(1, len(spec.extra["symbols"]), (n, spec.input_shape[1]))
        ids[:, -1] = 0  # end padding
        return torch.stack([ids, torch.randint(0, 5, ids.shape) * (ids != 0)], dim=1)
    if spec.modality == "text":
        tokens = torch.randint(1, len(spec.extra["vocab"]), (n, *spec.input_shape))
        lengths = torch.tensor([7, 3, 1, 5][:n])
        return tokens.masked_fill(torch.arange(spec.input_shape[0])[None, :] >= lengths[:, None], 0)
    return torch.rand(n, *spec.input_shape)


def cases():
    for name in list_models():
        for key, spec in SPECS.items():
            info = model_info(name)
            kind = spec.extra.get("action", {}).get("kind")
            if kind is not None and kind not in CONTROL_FITS.get(name, ()):
                continue  # DQN needs discrete actions, SAC continuous ones (each refuses the other)
            if spec.modality in info.modalities and spec.task in info.tasks:
                yield pytest.param(name, spec, id=f"{name}-{key}")


@pytest.mark.parametrize("name,spec", list(cases()))
def test_model_forward_backward_finite_and_round_trip(name, spec, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, spec)
    x = example_inputs(spec)
    out = prediction(model(x))  # the first field of a structured output (a VAE's reconstruction)
    expected = {
        "reconstruct": (4, *spec.input_shape),
        "seq2seq": (4, spec.extra.get("max_target_length"), spec.num_outputs),
        "language_model": (4, *spec.input_shape, spec.num_outputs),
        "segment": (4, spec.num_outputs, *spec.input_shape[1:]),
        "instances": (4, spec.num_outputs + 3, *spec.input_shape[1:]),  # class logits, centre, offsets
        "detect": (4, spec.num_outputs + 4, 12, 12),  # 20 x 18 stretched to 24 x 24 (a multiple of 8), stride 2
        "transcribe": (4, 7, spec.num_outputs),  # 21 frames at the default stride 3
        "synthesize": (4, spec.num_outputs, spec.extra.get("max_frames")),  # mel bands + durations, padded frames
    }.get(spec.task, (4, spec.num_outputs))
    assert out.shape == expected
    assert torch.isfinite(out).all()

    loss = out.float().pow(2).mean()
    if spec.task == "control":
        from glassnet.models.policies import ValueHead

        loss = loss + ValueHead(model)(x).pow(2).mean()
    if spec.task == "generate" and hasattr(model, "generator"):  # a GAN's forward pass is the discriminator's
        fake = model.generator(torch.randn(4, model.latent), torch.arange(4) % 3 if model.conditional else None)
        loss = loss + model(fake).pow(2).mean()
    if spec.task == "generate" and hasattr(model, "denoise"):  # a diffusion model's forward pass is unconditional
        t = torch.tensor([0, 10, 100, 900])
        loss = loss + model.denoise(x * 2 - 1, t, torch.arange(4) % 3 if model.conditional else None).pow(2).mean()
    loss.backward()
    # a GAN's generator_ema is an average the training step updates, never trained by gradients
    grads = [p.grad for name, p in model.named_parameters() if p.requires_grad and name not in UNUSED]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    save_model(model, spec, tmp_path)
    loaded, loaded_spec = load_model(tmp_path)
    assert loaded_spec == spec
    model.eval()
    torch.testing.assert_close(prediction(loaded(x)), prediction(model(x)), rtol=0, atol=0)


UNUSED = ("log_alpha", "log_std", "log_std.weight", "log_std.bias")  # trained by their algorithm's own losses


@pytest.mark.parametrize("name", list_models())
def test_dropout_takes_the_fast_cpu_mask(name):
    """Every family's element-wise dropout is ``layers.Dropout`` (16 random bits an element on a CPU), never a
    plain ``nn.Dropout``, whose ``bernoulli_`` mask costs about four times as much (docs/training.md)."""
    spec = next(spec for model, spec in (c.values for c in cases()) if model == name)
    plain = [layer for layer, module in create_model(name, spec).named_modules() if type(module) is nn.Dropout]
    assert not plain, f"{name} builds nn.Dropout at {plain}: use glassnet.models.layers.Dropout"


def test_every_model_fits_at_least_one_spec():
    covered = {name for name, *_ in (c.values for c in cases())}
    assert covered == set(list_models())
