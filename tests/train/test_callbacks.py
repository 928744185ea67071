"""The engine's callbacks: clipping, EMA, NaN termination, time limit, model checkpoints, hooks."""

import math

import pytest
import torch
from safetensors.torch import load_file

from glassnet.errors import ConfigError
from glassnet.models import create_model
from glassnet.train import (
    EMA,
    BestModel,
    Callback,
    GradientClipping,
    MetricsLogger,
    ModelCheckpoint,
    TerminateOnNaN,
    TimeLimit,
    Trainer,
    seed_everything,
)


def fit(bundle, callbacks, name="mlp", **kwargs):
    seed_everything(0)
    model = create_model(name, bundle.spec)
    options = {"max_epochs": 3, "batch_size": 32} | kwargs
    trainer = Trainer(task=bundle.spec.task, callbacks=callbacks, **options)
    return model, trainer, trainer.fit(model, bundle)


class Recorder(Callback):
    """Records the hooks in the order the trainer calls them, and the gradient norms it sees."""

    def __init__(self):
        self.calls, self.norms = [], []

    def on_fit_start(self, trainer, model):
        self.calls.append("fit_start")

    def on_epoch_start(self, trainer, model):
        self.calls.append("epoch_start")

    def on_before_optimizer_step(self, trainer, model, optimizer):
        self.calls.append("before_step")
        grads = [p.grad.flatten() for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        self.norms.append(torch.cat(grads).norm().item())
        self.max_abs = max(getattr(self, "max_abs", 0.0), torch.cat(grads).abs().max().item())

    def on_batch_end(self, trainer, model, batch_size):
        self.calls.append("batch_end")

    def on_validation_start(self, trainer, model):
        self.calls.append("validation_start")

    def on_epoch_end(self, trainer, model, logs):
        self.calls.append("epoch_end")

    def on_validation_end(self, trainer, model):
        self.calls.append("validation_end")

    def on_fit_end(self, trainer, model):
        self.calls.append("fit_end")


def test_hooks_run_in_the_documented_order(tabular_bundle):
    recorder = Recorder()
    _, _, result = fit(tabular_bundle, [recorder], max_epochs=1, batch_size=84)  # 168 examples: 2 steps
    assert recorder.calls == [
        "fit_start",
        "epoch_start",
        *["before_step", "batch_end"] * 2,
        "validation_start",
        "epoch_end",
        "validation_end",
        "fit_end",
    ]


def test_gradient_clipping_by_norm_bounds_the_norm_the_optimizer_sees(tabular_bundle):
    unclipped, clipped = Recorder(), Recorder()
    fit(tabular_bundle, [unclipped], max_epochs=1, lr=1e-3)
    fit(tabular_bundle, [GradientClipping(max_norm=0.05), clipped], max_epochs=1, lr=1e-3)
    assert max(unclipped.norms) > 0.05
    assert max(clipped.norms) <= 0.05 * (1 + 1e-4)


def test_gradient_clipping_by_value_clamps_each_element(tabular_bundle):
    clipped = Recorder()
    fit(tabular_bundle, [GradientClipping(max_value=1e-3), clipped], max_epochs=1)
    assert clipped.max_abs == pytest.approx(1e-3)  # float32 of 1e-3: some gradients sat at the limit


@pytest.mark.parametrize(
    "kwargs,message",
    [({}, "exactly one"), ({"max_norm": 1.0, "max_value": 1.0}, "exactly one"), ({"max_norm": -1.0}, "> 0")],
)
def test_gradient_clipping_needs_one_positive_limit(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GradientClipping(**kwargs)


def test_ema_weights_are_validated_kept_and_differ_from_the_raw_weights(tabular_bundle):
    class RawWeights(Callback):
        def on_fit_end(self, trainer, model):
            self.raw = {k: v.clone() for k, v in model.state_dict().items()}

    raw = RawWeights()
    ema = EMA(decay=0.9)
    model, trainer, result = fit(tabular_bundle, [raw, ema], max_epochs=2, batch_size=16)
    # the model ends with the averaged weights, not the last raw ones
    assert ema.updates == result.steps
    final = model.state_dict()
    assert any(not torch.equal(final[k], raw.raw[k]) for k in final if final[k].is_floating_point())
    for key, value in ema.shadow.items():
        assert torch.equal(final[key], value)
    # the last epoch's validation ran on those averaged weights
    assert trainer.evaluate(model, tabular_bundle.val)["loss"] == pytest.approx(result.history[-1]["val/loss"])


def test_best_model_after_ema_keeps_the_best_averaged_weights(tabular_bundle):
    best = BestModel("val/loss")
    model, trainer, result = fit(tabular_bundle, [EMA(0.9), best], max_epochs=3, batch_size=16)
    losses = [h["val/loss"] for h in result.history]
    assert trainer.evaluate(model, tabular_bundle.val)["loss"] == pytest.approx(min(losses), rel=1e-5)


def test_ema_decay_must_be_a_fraction():
    with pytest.raises(ConfigError, match=r"decay must be in \(0, 1\)"):
        EMA(decay=1.0)


def test_terminate_on_nan_stops_at_the_first_bad_step_and_keeps_the_last_good_checkpoint(tabular_bundle, tmp_path):
    class PoisonAt(Callback):
        """Makes the weights NaN after optimiser step 9 (epoch 2 of 6-step epochs): the next loss is NaN."""

        def on_batch_end(self, trainer, model, batch_size):
            if trainer.global_step == 9:
                with torch.no_grad():
                    next(model.parameters()).fill_(float("nan"))

    stop = TerminateOnNaN(check_every=4)
    model, trainer, result = fit(
        tabular_bundle, [PoisonAt(), stop], max_epochs=5, checkpoint_dir=tmp_path, checkpoint_every=2
    )
    assert result.diverged == stop.diverged == {"step": 10, "epoch": 2}
    assert result.steps == 12 and len(result.history) == 1  # read at step 12; the bad epoch is not logged
    from glassnet.train.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "last.pt")
    assert state["global_step"] == 8  # the checkpoints after the poisoned step were not written
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_time_limit_stops_mid_epoch_and_leaves_a_resumable_checkpoint(tabular_bundle, tmp_path):
    class SlowSteps(Callback):
        def on_batch_end(self, trainer, model, batch_size):
            import time

            time.sleep(0.05)

    limit = TimeLimit(seconds=0.3)
    _, _, result = fit(tabular_bundle, [SlowSteps(), limit], max_epochs=50, checkpoint_dir=tmp_path)
    assert limit.stopped and result.steps < 50 * 6
    from glassnet.train.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "last.pt")
    assert state["global_step"] == result.steps and not state["progress"]["finished"]


def test_time_limit_reached_during_validation_starts_no_new_epoch(tabular_bundle, tmp_path):
    """Bug: the limit was only checked after optimiser steps, so a limit passed while an epoch was being
    validated started the next epoch, took one step and validated again (a ddpm run spent 60 s more)."""

    class SlowValidation(Callback):
        def on_epoch_end(self, trainer, model, logs):
            import time

            time.sleep(1.2)

    limit = TimeLimit(seconds=1.0)
    _, _, result = fit(tabular_bundle, [SlowValidation(), limit], max_epochs=5, checkpoint_dir=tmp_path)
    per_epoch = -(-len(tabular_bundle.train) // 32)
    assert limit.stopped and result.epochs_run == 1 and result.steps == per_epoch
    from glassnet.train.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "last.pt")
    assert state["global_step"] == per_epoch and not state["progress"]["finished"]  # a resume goes on


def test_model_checkpoint_keeps_the_top_k_epochs_and_the_best(tabular_bundle, tmp_path):
    checkpoint = ModelCheckpoint(tmp_path, monitor="val/accuracy", save_top_k=2, save_last=True)
    model, trainer, result = fit(tabular_bundle, [checkpoint], max_epochs=4, lr=1e-3)
    scores = [h["val/accuracy"] for h in result.history]
    kept = sorted(p.name for p in tmp_path.glob("epoch=*.safetensors"))
    assert len(kept) == 2
    expected_best = sorted(scores, reverse=True)[:2]
    assert sorted(float(name.split("=")[-1].removesuffix(".safetensors")) for name in kept) == pytest.approx(
        sorted(round(s, 4) for s in expected_best)
    )
    assert (tmp_path / "best.safetensors").is_file() and (tmp_path / "last.safetensors").is_file()
    last = load_file(tmp_path / "last.safetensors")
    for key, value in model.state_dict().items():
        assert torch.equal(last[key], value)
    best = create_model("mlp", tabular_bundle.spec)
    best.load_state_dict(load_file(tmp_path / "best.safetensors"))
    assert trainer.evaluate(best, tabular_bundle.val)["accuracy"] == pytest.approx(max(scores))


def test_callbacks_state_round_trips(tabular_bundle, tmp_path):
    ema, best, checkpoint = EMA(0.9), BestModel(), ModelCheckpoint(tmp_path, save_top_k=1)
    fit(tabular_bundle, [ema, best, checkpoint], max_epochs=2)
    copies = [EMA(0.9), BestModel(), ModelCheckpoint(tmp_path, save_top_k=1)]
    fit(tabular_bundle, copies, max_epochs=1)
    for original, copy in zip([ema, best, checkpoint], copies):
        copy.load_state_dict(original.state_dict())
    assert copies[1].best_epoch == best.best_epoch and copies[2].top_k == checkpoint.top_k
    assert all(torch.equal(copies[0].shadow[k], v) for k, v in ema.shadow.items())


def test_metrics_logger_resume_drops_epochs_logged_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3}\n')
    logger = MetricsLogger(path)
    logger.load_state_dict({"lines": 2})
    assert path.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: TimeLimit(0), "time limit"),
        (lambda: TimeLimit(math.inf), "time limit"),
        (lambda: TerminateOnNaN(check_every=0), "check_every"),
        (lambda: ModelCheckpoint("x", save_top_k=-1), "save_top_k"),
    ],
)
def test_bad_callback_arguments(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
