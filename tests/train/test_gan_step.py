"""The ``gan`` step on the ordinary ``Trainer``: both networks learn, the average follows, resume is exact."""

import copy

import pytest
import torch
from torch.utils.data import TensorDataset

from glassnet.data import DataSpec
from glassnet.errors import ConfigError
from glassnet.models import create_model
from glassnet.train import Callback, Trainer, make_step
from glassnet.train.steps.gan import GANStep, discriminator_loss, generator_loss

SPEC = DataSpec(modality="image", input_shape=(1, 8, 8), task="generate", num_outputs=1,
                class_names=("a", "b", "c"), input_mean=(0.3,), input_std=(0.3,), name="tiny")  # fmt: skip


def tiny_data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = (torch.rand(n, 1, 8, 8, generator=g) * 0.3 + labels.view(-1, 1, 1, 1) * 0.3).clamp(0, 1)
    return TensorDataset(images, labels)


def model(name="cgan", seed=0):
    torch.manual_seed(seed)
    return create_model(name, SPEC, latent=8, width=8)


def trainer(**settings):
    step = settings.pop("step", None) or make_step("gan", SPEC, ema=0.9)
    return Trainer(task="generate", step=step, batch_size=32, device="cpu", seed=0, **settings)


def test_one_step_updates_the_generator_the_discriminator_and_the_average():
    net = model()
    before = copy.deepcopy(net.state_dict())
    result = trainer(max_epochs=1, max_steps=1).fit(net, tiny_data())
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("generator.") and "running" not in k for k in changed)
    assert any(k.startswith("discriminator.") for k in changed)
    assert any(k.startswith("generator_ema.") for k in changed)
    logs = result.history[0]
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "train/loss"} <= set(logs)
    assert logs["train/loss"] == pytest.approx(logs["train/d_loss"] + logs["train/g_loss"], rel=1e-5)
    assert result.steps == 1


def test_the_average_follows_the_generator_with_a_ramped_decay():
    net = model()
    start = {k: v.clone() for k, v in net.generator_ema.state_dict().items()}
    step = make_step("gan", SPEC, ema=0.999)
    trainer(max_epochs=1, max_steps=1, step=step).fit(net, tiny_data())
    decay = 2 / 11  # min(0.999, (1 + n) / (10 + n)) after the first update
    for name, live in net.generator.named_parameters():
        expected = decay * start[name] + (1 - decay) * live.detach()
        torch.testing.assert_close(net.generator_ema.state_dict()[name], expected)
    assert step.state_dict() == {"ema_updates": 1}
    copying = model()
    trainer(max_epochs=1, max_steps=2, step=make_step("gan", SPEC, ema=0.0)).fit(copying, tiny_data())
    for name, live in copying.generator.state_dict().items():
        assert torch.equal(copying.generator_ema.state_dict()[name], live)  # ema=0: a copy, buffers too


class StopAt(Callback):
    """Stops (resumably, like TimeLimit) after a given optimiser step."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, model, batch_size):
        if trainer.global_step == self.step:
            trainer.should_stop = trainer.paused = True


@pytest.mark.parametrize("name", ["cgan", "dcgan"])
def test_an_interrupted_run_resumes_bitwise_equal(tmp_path, name):
    data = tiny_data()
    whole = model(name)
    trainer(max_epochs=2, checkpoint_dir=tmp_path / "a").fit(whole, data)
    parted = model(name)
    trainer(max_epochs=2, checkpoint_dir=tmp_path / "b", callbacks=[StopAt(4)]).fit(parted, data)
    resumed = model(name)
    first = trainer(max_epochs=2, checkpoint_dir=tmp_path / "b")
    result = first.fit(resumed, data, resume_from=tmp_path / "b" / "last.pt")
    assert result.steps == 6
    assert first.step.ema_updates == 6  # the average's update count came back with the step's state
    for key, value in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key


def test_bf16_and_channels_last_train_with_finite_losses():
    net = model()
    result = trainer(max_epochs=1, precision="bf16", channels_last=True).fit(net, tiny_data())
    logs = result.history[0]
    assert all(torch.isfinite(torch.tensor(logs[k])) for k in ("train/d_loss", "train/g_loss"))
    assert net.sample(4).dtype == torch.float32


def test_both_losses_push_the_right_way():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    assert discriminator_loss("hinge", real, fake) == pytest.approx((0 + 0.5) / 2 + (0 + 1.5) / 2)
    assert generator_loss("hinge", fake) == pytest.approx(0.75)
    assert discriminator_loss("bce", torch.tensor([9.0]), torch.tensor([-9.0])) < 1e-3
    assert generator_loss("bce", torch.tensor([9.0])) < generator_loss("bce", torch.tensor([-9.0]))


def test_options_and_models_the_step_refuses():
    with pytest.raises(ConfigError, match="lr_g must be a positive number"):
        make_step("gan", SPEC, lr_g=0)
    with pytest.raises(ConfigError, match="d_steps must be an integer >= 1"):
        make_step("gan", SPEC, d_steps=0)
    with pytest.raises(ConfigError, match="ema must be in"):
        make_step("gan", SPEC, ema=1.0)
    with pytest.raises(ConfigError, match="augment does not apply"):
        make_step("gan", SPEC, augment=lambda x, y: (x, y))
    classify = DataSpec(modality="image", input_shape=(1, 8, 8), task="classify", num_outputs=3, name="c")
    with pytest.raises(ConfigError, match="generate task"):
        make_step("gan", classify)
    with pytest.raises(ConfigError, match="is not such a model"):
        GANStep().check(create_model("cnn", classify))
    step = make_step("gan", SPEC, lr_d=4e-4, d_steps=2)
    assert step.describe() == {
        "name": "gan",
        "lr_g": 2e-4,
        "lr_d": 4e-4,
        "betas": [0.0, 0.9],
        "d_steps": 2,
        "ema": 0.999,
    }
    optimisers = step.configure_optimizers(model()).optimizers
    assert list(optimisers) == ["generator", "discriminator"]
    assert optimisers["discriminator"].param_groups[0]["betas"] == (0.0, 0.9)


@pytest.mark.slow
def test_cgan_learns_every_digit_class_and_beats_an_untrained_generator(tmp_path):
    """End to end through ``gn.train``: 12 epochs of cgan on scikit-learn's digits (about 15 s on one thread)."""
    import json

    import glassnet as gn

    config = gn.RunConfig(
        data="digits",
        model="cgan",
        epochs=12,
        step={"name": "gan", "lr_g": 2e-3, "lr_d": 2e-3},
        baseline=False,
        threads=1,  # one thread is fastest for these small convolutions on a shared machine
    )
    run = gn.train(config, out=tmp_path / "cgan")
    result = json.loads((run.path / "results" / "generate.json").read_text())
    quality, coverage = result["quality"], result["coverage"]
    assert result["features"]["inception"] is False and result["features"]["test_accuracy"] > 0.9
    assert coverage["covered"] >= 8 and coverage["agreement"] >= 0.8
    untrained = quality["reference"]["untrained_generator"]["fid"]
    assert quality["fid"] < untrained / 10
    assert result["memorisation"]["near_copy_share"] <= 0.05
    train = json.loads((run.path / "results" / "train.json").read_text())
    assert train["test"]["fid"] == quality["fid"] and train["training"]["step"]["name"] == "gan"
    for figure in ("generate_samples", "generate_progress", "generate_interpolation"):
        assert (run.path / "figures" / f"{figure}.png").is_file()
    assert gn.generate(run, 4, classes="3").shape == (4, 1, 8, 8)
