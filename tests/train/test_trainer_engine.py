"""Loop mechanics: gradient accumulation, schedules, precision, channels_last, torch.compile fallback."""

import warnings

import pytest
import torch

from glassnet.errors import ConfigError
from glassnet.models import create_model
from glassnet.train import Callback, Trainer, seed_everything
from glassnet.train.optim import build_optimizer, build_scheduler, warmup_steps


def fit(bundle, name="mlp", callbacks=(), **kwargs):
    seed_everything(0)
    model = create_model(name, bundle.spec, **({"dropout": 0.0} if name == "mlp" else {}))
    options = {"max_epochs": 2, "batch_size": 32} | kwargs
    trainer = Trainer(task=bundle.spec.task, callbacks=callbacks, **options)
    return model, trainer, trainer.fit(model, bundle)


def test_accumulating_two_half_batches_matches_one_full_batch(tabular_bundle):
    # SGD without momentum or dropout: one step on 2 x 42 examples equals one step on 84 (up to rounding)
    options = {"optimizer": "sgd", "momentum": 0.0, "schedule": "none", "lr": 0.1, "max_epochs": 1}
    full, _, one = fit(tabular_bundle, batch_size=84, **options)
    accumulated, _, two = fit(tabular_bundle, batch_size=42, accumulate=2, **options)
    assert one.steps == two.steps == 2
    for a, b in zip(full.parameters(), accumulated.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_accumulation_counts_optimizer_steps_and_examples(tabular_bundle):
    seen = []

    class Count(Callback):
        def on_batch_end(self, trainer, model, batch_size):
            seen.append(batch_size)

    _, trainer, result = fit(tabular_bundle, batch_size=16, accumulate=4, max_epochs=1, callbacks=[Count()])
    # 168 examples: 11 micro-batches (the last of 8) -> steps of 64, 64, 40
    assert result.steps == trainer.steps_per_epoch == 3 and seen == [64, 64, 40]


def lrs(schedule, total, **kwargs):
    optimizer = build_optimizer(torch.nn.Linear(2, 1), "adamw", lr=1.0, weight_decay=0.0)
    scheduler = build_scheduler(optimizer, schedule, total, **kwargs)
    values = []
    for _ in range(total):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_cosine_with_warmup_rises_linearly_then_decays():
    values = lrs("cosine", 100, warmup=10)
    assert values[:10] == pytest.approx([(i + 1) / 11 for i in range(10)])
    assert values[10] == pytest.approx(1.0) and values[-1] < 1e-3
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert lrs("cosine", 100, warmup=0.2).index(1.0) == 20  # a float is a fraction of the run


@pytest.mark.parametrize("warmup", [-1, 1.0, 1.5, True])
def test_bad_warmup_is_a_config_error(warmup):
    with pytest.raises(ConfigError, match="warmup must be"):
        warmup_steps(warmup, 100, 0.0)


def test_plateau_halves_the_lr_when_the_monitored_metric_stalls(tabular_bundle):
    # validation accuracy reaches 1.0 in the first epoch and cannot improve: the schedule must cut the lr
    _, _, result = fit(
        tabular_bundle,
        max_epochs=8,
        optimizer="sgd",
        lr=0.5,
        schedule="plateau",
        plateau_patience=1,
        plateau_factor=0.5,
        monitor="val/accuracy",
    )
    assert [h["val/accuracy"] for h in result.history] == [1.0] * 8
    # logged at each epoch end, before that epoch's cut: patience 1 means a cut every second stalled epoch
    assert [h["lr"] for h in result.history] == [0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625]


def test_plateau_needs_a_logged_monitor(tabular_bundle):
    seed_everything(0)
    model = create_model("mlp", tabular_bundle.spec)
    trainer = Trainer(max_epochs=1, schedule="plateau")
    with pytest.raises(ConfigError, match="plateau follows 'val/loss', which is not logged"):
        trainer.fit(model, tabular_bundle.train)  # no validation split


def test_bf16_trains_to_the_same_accuracy(image_bundle):
    model, trainer, _ = fit(image_bundle, name="cnn", max_epochs=8, batch_size=16, precision="bf16")
    assert trainer.evaluate(model, image_bundle.test)["accuracy"] >= 0.9
    assert next(model.parameters()).dtype == torch.float32  # autocast: the weights stay fp32


def test_fp16_on_cpu_is_refused_with_a_hint():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device.*precision=bf16"):
        Trainer(precision="fp16", device="cpu")
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, fp16"):
        Trainer(precision="half")


def test_channels_last_converts_the_model_and_trains(image_bundle):
    model, trainer, _ = fit(image_bundle, name="cnn", max_epochs=8, batch_size=16, channels_last=True)
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert trainer.evaluate(model, image_bundle.test)["accuracy"] >= 0.9


def test_compile_that_fails_falls_back_to_eager_with_a_warning(tabular_bundle, monkeypatch):
    compiled = []

    def broken_compile(module, **kwargs):
        compiled.append(module)

        def fail(*args, **kwargs):
            raise RuntimeError("inductor: no C++ compiler found")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*no C\\+\\+ compiler.*without compilation"):
        eager_model, trainer, result = fit(tabular_bundle, compile=True, max_epochs=3)
    assert len(compiled) == 1 and result.steps == 3 * 6
    reference, _, _ = fit(tabular_bundle, max_epochs=3)
    for a, b in zip(eager_model.parameters(), reference.parameters()):
        assert torch.equal(a, b)  # the failed attempt left no trace in the training


def test_compile_that_cannot_start_warns_and_trains(tabular_bundle, monkeypatch):
    def unavailable(module, **kwargs):
        raise RuntimeError("Dynamo is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unavailable)
    with pytest.warns(RuntimeWarning, match="torch.compile is unavailable"):
        model, trainer, _ = fit(tabular_bundle, compile=True, max_epochs=3)
    assert trainer.evaluate(model, tabular_bundle.test)["accuracy"] >= 0.9


def test_working_compile_trains_without_warnings(tabular_bundle, monkeypatch):
    calls = []

    def identity_compile(module, **kwargs):  # stands in for a compiler that works
        calls.append(module)
        return module

    monkeypatch.setattr(torch, "compile", identity_compile)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fit(tabular_bundle, compile=True, max_epochs=1)
    assert len(calls) == 1


@pytest.mark.parametrize("kwargs", [{"accumulate": 0}, {"checkpoint_every": -1}])
def test_bad_loop_arguments(kwargs):
    with pytest.raises(ConfigError):
        Trainer(**kwargs)


def test_plain_datasets_resume_at_the_same_position(tabular_bundle, tmp_path):
    class Plain(torch.utils.data.Dataset):  # not in-memory tensors: batches come from a DataLoader
        def __init__(self, wrapped):
            self.wrapped = wrapped

        def __len__(self):
            return len(self.wrapped)

        def __getitem__(self, i):
            return self.wrapped[i]

    class Stop(Callback):
        def on_batch_end(self, trainer, model, batch_size):
            if trainer.global_step == 8:
                raise KeyboardInterrupt

    train, val = Plain(tabular_bundle.train), Plain(tabular_bundle.val)

    def run(extra=(), resume=None):
        seed_everything(0)
        model = create_model("mlp", tabular_bundle.spec)
        trainer = Trainer(max_epochs=2, batch_size=32, callbacks=extra, checkpoint_dir=tmp_path, checkpoint_every=1)
        trainer.fit(model, train, val=val, resume_from=resume)
        return model

    reference = run()
    with pytest.raises(KeyboardInterrupt):
        run([Stop()])
    resumed = run(resume=tmp_path / "last.pt")
    for a, b in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
