"""The ``diffusion`` step on the ordinary ``Trainer``: it learns, the average follows, resume is exact."""

import copy

import pytest
import torch
from torch.utils.data import TensorDataset

from glassnet.data import DataSpec
from glassnet.errors import ConfigError
from glassnet.models import create_model
from glassnet.train import Callback, Trainer, make_step

SPEC = DataSpec(modality="image", input_shape=(1, 8, 8), task="generate", num_outputs=1,
                class_names=("a", "b", "c"), name="tiny")  # fmt: skip


def tiny_data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = (torch.rand(n, 1, 8, 8, generator=g) * 0.3 + labels.view(-1, 1, 1, 1) * 0.3).clamp(0, 1)
    return TensorDataset(images, labels)


def model(seed=0, **hparams):
    torch.manual_seed(seed)
    return create_model("ddpm", SPEC, **{"width": 8, "timesteps": 50, "sample_steps": 4, **hparams})


def trainer(**settings):
    return Trainer(task="generate", batch_size=32, device="cpu", seed=0, **settings)


def test_without_a_step_the_trainer_trains_ddpm_with_diffusion_and_updates_the_average():
    net = model()
    before = copy.deepcopy(net.state_dict())
    fit = trainer(max_epochs=1, max_steps=2)
    result = fit.fit(net, tiny_data())
    assert fit.step.name == "diffusion" and result.steps == 2
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("net.") for k in changed) and any(k.startswith("net_ema.") for k in changed)
    assert fit.step.state_dict() == {"ema_updates": 2}
    assert result.history[0]["train/loss"] > 0


def test_the_denoising_loss_falls_on_a_learnable_distribution():
    net = model()
    result = trainer(max_epochs=8, step=make_step("diffusion", SPEC, lr=3e-3)).fit(net, tiny_data(192))
    losses = [h["train/loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0], losses


def test_labels_are_dropped_for_guidance_at_the_asked_rate():
    net = model()
    seen = []
    original = net.denoise

    def spy(noisy, t, labels=None, ema=False):
        seen.append(labels.clone())
        return original(noisy, t, labels, ema)

    net.denoise = spy
    trainer(max_epochs=1, step=make_step("diffusion", SPEC, drop_label=0.5)).fit(net, tiny_data(480))
    labels = torch.cat(seen)
    dropped = float((labels == 3).float().mean())  # 3: the "no class" label of three classes
    assert 0.4 < dropped < 0.6
    seen.clear()
    trainer(max_epochs=1, step=make_step("diffusion", SPEC, drop_label=0.0)).fit(net, tiny_data(96))
    assert not bool((torch.cat(seen) == 3).any())


class StopAt(Callback):
    """Stops (resumably, like TimeLimit) after a given optimiser step."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, model, batch_size):
        if trainer.global_step == self.step:
            trainer.should_stop = trainer.paused = True


def test_an_interrupted_run_resumes_bitwise_equal(tmp_path):
    data = tiny_data()
    whole = model()
    trainer(max_epochs=2, checkpoint_dir=tmp_path / "a").fit(whole, data)
    parted = model()
    trainer(max_epochs=2, checkpoint_dir=tmp_path / "b", callbacks=[StopAt(4)]).fit(parted, data)
    resumed = model()
    again = trainer(max_epochs=2, checkpoint_dir=tmp_path / "b")
    result = again.fit(resumed, data, resume_from=tmp_path / "b" / "last.pt")
    assert result.steps == 6 and again.step.state_dict() == {"ema_updates": 6}
    for key, value in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key


def test_bf16_and_channels_last_train_with_finite_losses():
    net = model()
    result = trainer(max_epochs=1, precision="bf16", channels_last=True).fit(net, tiny_data())
    assert torch.isfinite(torch.tensor(result.history[0]["train/loss"]))
    assert net.sample(2).dtype == torch.float32


def test_the_step_refuses_other_models_augmentation_other_tasks_and_bad_options():
    gan = create_model("cgan", SPEC, latent=8, width=8)
    with pytest.raises(ConfigError, match="step diffusion trains a denoising diffusion model"):
        trainer(max_epochs=1, step=make_step("diffusion", SPEC)).fit(gan, tiny_data())
    with pytest.raises(ConfigError, match="augment does not apply to diffusion"):
        make_step("diffusion", SPEC, augment=object())
    with pytest.raises(ConfigError, match="generate task"):
        make_step("diffusion", DataSpec(modality="image", input_shape=(1, 8, 8), task="classify", num_outputs=3))
    for key, value in (("lr", 0), ("ema", 1.0), ("drop_label", -0.1), ("clip", -1)):
        with pytest.raises(ConfigError, match=key):
            make_step("diffusion", SPEC, **{key: value})
