"""The train and evaluate stages over one run directory.

``train(config)`` builds the data, the model and a ``Trainer`` from the configuration, fits, and
writes the run directory; what the results and figures hold beyond the metrics is the task's to say
(``Task.details``). It returns the ``Run`` with the trained model and its data in memory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from glassnet.config import RunConfig, check_finetune, load_config, save_config
from glassnet.data import DataBundle, DataSpec, load_dataset, split_targets
from glassnet.data.text import subword_file
from glassnet.errors import CheckpointError, ConfigError, DataError, RunError
from glassnet.figures import training as figures
from glassnet.models import create_model, save_model, summarize
from glassnet.models.bert import encoder_for, encoder_hparams
from glassnet.models.registry import model_info
from glassnet.pipeline.recipes import RecipeChoices, with_recipe
from glassnet.provenance import capture
from glassnet.rl.evaluation import AGENT_THREADS, cpu_threads
from glassnet.runs import (
    CHECKPOINTS_DIR,
    LOCK_FILE,
    RunDir,
    discard_previous,
    lock_run,
    replace_run,
    restore_previous,
    writes_run,
)
from glassnet.train import (
    EMA,
    BestModel,
    Callback,
    EarlyStopping,
    GradientClipping,
    MetricsLogger,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
    TimeLimit,
    Trainer,
    distributed,
    load_checkpoint,
    seed_everything,
)
from glassnet.train.baselines import fit_baselines
from glassnet.train.checkpoint import LAST
from glassnet.train.finetune import FineTune, load_pretrained
from glassnet.train.loggers import track_run_files
from glassnet.train.reconstruction import reconstruction_bundle
from glassnet.train.run import Run, check_compatible, load_run_data
from glassnet.train.semi import semi_supervised_callbacks, semi_supervised_summary
from glassnet.train.steps import Step, step_from_options
from glassnet.train.tasks import TaskContext, get_task, make_task


def default_run_dir(config: RunConfig, root: str | os.PathLike[str] = "runs") -> Path:
    """``runs/<model>-<data>``, or the first ``-2``, ``-3`` ... suffix not taken yet."""
    base = Path(root) / f"{config.model}-{Path(config.data).stem}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def prepare_run_dir(out: str | os.PathLike[str], overwrite: bool) -> RunDir:
    """Create ``out``; refuse to replace a run already there unless ``overwrite``.

    What a failed training attempt leaves behind (its ``metrics.jsonl``, ``metrics.csv`` and
    ``tensorboard/`` logs, a ``checkpoints/`` folder without a resumable ``last.pt``) does not count
    as a run, so the corrected command can
    reuse the directory; anything else that is not ours does. An interrupted training (one with
    ``checkpoints/last.pt``) is pointed to ``--resume``. With ``overwrite``, the run already there
    moves into ``RUN/.previous`` (``replace_run``) and stays there until the new run is complete.
    """
    run = RunDir(out)
    if run.path.exists() and not run.path.is_dir():
        raise RunError(f"--out '{run.path}' is a file; choose a directory")
    if run.path.is_dir() and overwrite and any(p.name != LOCK_FILE for p in run.path.iterdir()):
        replace_run(run.path)
    if run.path.exists() and not overwrite:
        if any(p.exists() for p in (run.model_json, run.weights, run.results_dir, run.report)):
            raise RunError(f"'{run.path}' already holds a run; pass --overwrite to replace it or choose another --out")
        if (_checkpoints(run) / LAST).is_file():
            raise RunError(
                f"'{run.path}' holds an interrupted training (checkpoints/{LAST}): continue it with "
                f"`glassnet train --resume {run.path}`, or pass --overwrite to start afresh"
            )
        # the loggers' files of a failed attempt too (metrics.csv is rewritten by the next fit)
        leftovers = (run.metrics, _checkpoints(run), run.path / "metrics.csv", run.path / "tensorboard")
        leftovers += (run.path / "wandb", run.path / LOCK_FILE)
        foreign = sorted(p.name for p in run.path.iterdir() if p not in leftovers)
        if foreign:
            raise RunError(
                f"--out '{run.path}' is not empty ({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); "
                "choose a new or empty directory, or pass --overwrite"
            )
    run.path.mkdir(parents=True, exist_ok=True)
    return run


def clear_stage_outputs(run: RunDir) -> None:
    """Remove the results, figures and report of the model a run is about to stop holding."""
    for stale in (run.results_dir, run.figures_dir):
        shutil.rmtree(stale, ignore_errors=True)
    run.report.unlink(missing_ok=True)


def make_trainer(
    config: RunConfig,
    bundle: DataBundle,
    run: RunDir | None = None,
    progress: IO[str] | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> tuple[Trainer, BestModel]:
    """A ``Trainer`` configured from ``config`` for ``bundle``: the task with its loss options (class
    weights counted on the training split), the step, augmentation, precision, schedules,
    best-on-validation selection, the engine's callbacks, logging and (with a run) resumable checkpoints."""
    spec = bundle.spec
    monitor = config.monitor
    step = _training_step(config, spec)
    best = BestModel(monitor=monitor)
    # EMA first: validation, BestModel and ModelCheckpoint then see (and keep) the averaged weights
    callbacks: list[Any] = [EMA(config.ema)] if config.ema else []
    callbacks.append(best)
    callbacks += semi_supervised_callbacks(bundle, config.seed)  # pseudo-labels measured on an unlabelled pool
    recipe = check_finetune(config.finetune) if config.pretrained or config.finetune else None
    if recipe is not None:
        callbacks.append(
            FineTune(
                recipe["probe_epochs"],
                recipe["unfreeze_every"],
                recipe["bn"],
                data=bundle.train,
                bn_batches=recipe["bn_batches"],
                batch_size=config.batch_size,
            )
        )
    if config.early_stopping:
        callbacks.append(EarlyStopping(monitor=monitor, patience=config.early_stopping))
    if config.terminate_on_nan:
        callbacks.append(TerminateOnNaN())
    if config.clip_grad_norm or config.clip_grad_value:
        callbacks.append(
            GradientClipping(max_norm=config.clip_grad_norm or None, max_value=config.clip_grad_value or None)
        )
    if config.time_limit:
        callbacks.append(TimeLimit(config.time_limit))
    if run is not None:
        if config.save_top_k:
            callbacks.append(ModelCheckpoint(_checkpoints(run), monitor=monitor, save_top_k=config.save_top_k))
        callbacks.append(MetricsLogger(run.metrics))
        callbacks += _loggers(config, run)
    if progress is not None:
        callbacks.append(ProgressBar(progress))
    callbacks += list(extra_callbacks)
    trainer = Trainer(
        task=spec.task,
        max_epochs=config.epochs,
        batch_size=config.batch_size,
        optimizer=config.optimizer,
        lr=config.lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        schedule=config.schedule,
        lr_decay=recipe["lr_decay"] if recipe is not None else 1.0,
        callbacks=callbacks,
        seed=config.seed,
        device=config.device,
        step=step,
        num_workers=config.num_workers,
        accumulate=config.accumulate,
        precision=config.precision,
        channels_last=config.channels_last,
        compile=config.compile,
        warmup=config.warmup,
        monitor=monitor,
        plateau_factor=config.plateau_factor,
        plateau_patience=config.plateau_patience,
        checkpoint_dir=_checkpoints(run) if run is not None else None,
        checkpoint_every=config.checkpoint_every,
        checkpoint_meta={"config": config.to_dict()},
        **_budget(config, step),
    )
    counted = split_targets(bundle.train) if config.class_weights == "balanced" else None
    trainer.task = make_task(spec.task, config.class_weights, config.label_smoothing, counted, spec.num_outputs)
    if config.env:
        trainer.task.episodes, trainer.task.test_episodes = config.eval_episodes, config.test_episodes
    trainer.task.mode(monitor)
    return trainer, best


def _create_model(config: RunConfig, spec: DataSpec) -> tuple[nn.Module, dict[str, Any] | None]:
    """The configured model, with its pretrained weights loaded (and what was loaded, for the results).

    Raises:
        ConfigError: ``pretrained=imagenet`` for a model that ships no ImageNet weights.
        DataError: the weights file is missing, unreadable or does not fit the model.
    """
    if config.pretrained != "imagenet":
        model = create_model(config.model, spec, **config.model_args)
        if not config.pretrained:
            return model, None
        return model, load_pretrained(model, config.pretrained).to_dict()
    if "pretrained" not in model_info(config.model).defaults():
        raise ConfigError(
            f"pretrained=imagenet: {config.model} ships no ImageNet weights (mobilenet_v2 does); give a weights "
            "file instead, e.g. pretrained=path/to/weights.safetensors"
        )
    model = create_model(config.model, spec, **{**config.model_args, "pretrained": "imagenet"})
    return model, {"file": "imagenet", "builder": f"{config.model}(pretrained='imagenet')"}


def _budget(config: RunConfig, step: Step) -> dict[str, Any]:
    """``max_steps`` (and ``eval_every``): an environment run's budget in environment steps becomes training
    steps of its algorithm, evaluated ten times over the run.

    Raises:
        ConfigError: an environment run without ``env_steps``.
    """
    if not config.env:
        return {"max_steps": config.max_steps or None}
    if not config.env_steps:
        raise ConfigError("an environment run needs a budget in environment steps (a positive number): --steps N")
    per_step = step.env_steps_per_step() if hasattr(step, "env_steps_per_step") else 1
    steps = max(1, math.ceil(config.env_steps / per_step))
    return {"max_steps": steps, "eval_every": max(1, steps // 10)}


def _checkpoints(run: RunDir) -> Path:
    return run.path / CHECKPOINTS_DIR


def _loggers(config: RunConfig, run: RunDir) -> list[Any]:
    """The ``loggers`` of the config: ``csv`` writes RUN/metrics.csv, ``tensorboard`` RUN/tensorboard/,
    ``mlflow`` and ``wandb`` log to the experiment trackers (docs/tracking.md)."""
    from glassnet.train.loggers import build_loggers

    return build_loggers(config, run.path)


def _training_step(config: RunConfig, spec: DataSpec) -> Step:
    """The step ``config.step`` names (with its options), else the model family's own step, else the task's."""
    preferred = model_info(config.model).step if config.model else None  # ddpm trains with diffusion
    return step_from_options(
        config.step, spec, _augmentation(config, spec), preferred or get_task(spec.task).default_step
    )


def _augmentation(config: RunConfig, spec: DataSpec) -> Any:
    if not config.augment:
        return None
    from glassnet.data.augment import build_augmentation

    return build_augmentation(spec, config.augment)


def train(
    config: RunConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: IO[str] | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> Run:
    """Train a model as ``config`` says and write the run directory.

    Writes ``config.yaml``, ``metrics.jsonl``, ``model.json``, ``model.safetensors``,
    ``checkpoints/last.pt`` (the resumable training state), ``results/train.json`` and the figures.
    ``train.json`` holds ``test.accuracy`` for classification, ``test.mae``/``test.rmse`` for
    regression, and ``test.loss``/``test.mae`` for reconstruction (plus ``test.elbo``/``test.kl``
    for a VAE, and ``test.auroc``, ``test.threshold``, ``test.precision``, ``test.recall`` when
    ``config.normal_classes`` is set); ``training.diverged`` says where the loss became NaN, if it did.

    A reconstruction model (``autoencoder``, ``conv_autoencoder``, ``vae``) given a classification
    dataset trains on its inputs alone: on every class, or on ``config.normal_classes`` only, in
    which case the other classes of the test split are the anomalies to detect.

    Under ``torchrun`` every process trains (DDP) and only rank 0 writes files; a worker restarted
    by ``torchrun --max-restarts`` continues from ``checkpoints/last.pt``.

    Args:
        config: the run configuration (None with ``resume``: the one saved in the checkpoint).
        out: run directory (default ``runs/<model>-<data>`` with a free suffix; required to resume).
        overwrite: replace a run already in ``out``.
        progress: stream for the progress bar (None: silent).
        resume: continue the interrupted training in ``out`` from ``checkpoints/last.pt``, with
            the configuration saved there; the result is the same as an uninterrupted run.
        callbacks: extra callbacks, run after the configured ones.

    Returns:
        The ``Run`` written, holding the trained model (CPU, eval mode) and the data it trained on.

    Raises:
        CheckpointError: ``resume`` and the checkpoint is missing, corrupt or does not fit.
        RunError: ``out`` holds another run (without ``overwrite``), or training diverged before
            any good weights were kept.
    """
    resume_from = _resume_checkpoint(out, resume)
    if resume_from is not None:
        config = _saved_config(resume_from, config)
    if config is None:
        raise ConfigError("train needs a configuration (or resume=True with the run directory as out)")
    config = for_encoder(config)
    bundle = load_run_data(config)
    config = _for_task(_for_environment(config, bundle.spec), bundle.spec)
    choices = None
    if resume_from is None:  # a resumed run keeps what its recipe chose at the start
        config, choices = with_recipe(config, bundle, progress)
    out = Path(out if out is not None else default_run_dir(config))
    created = not out.exists()
    try:
        # one writer per run; a killed overwrite is undone first, unless this resumes the replacement
        with (
            cpu_threads(config.threads or (AGENT_THREADS if config.env else 0)),
            lock_run(out, "train --resume" if resume else "train", create=True, recover=resume_from is None),
        ):
            try:
                run = _train(config, bundle, out, overwrite, progress, resume_from, callbacks, choices)
            except BaseException:
                if resume_from is None and distributed.is_global_zero():
                    restore_previous(out)  # the run that --overwrite was replacing comes back as it was
                raise
            if distributed.is_global_zero():
                discard_previous(out)
            return run
    except BaseException:
        if created and distributed.is_global_zero():
            _remove_if_untouched(out)
        raise


def _remove_if_untouched(out: Path) -> None:
    """Remove the directory a failed ``train`` created when nothing but its lock file was written to it."""
    try:
        if {p.name for p in out.iterdir()} <= {LOCK_FILE}:
            (out / LOCK_FILE).unlink(missing_ok=True)
            out.rmdir()
    except OSError:
        pass


def _train(
    config: RunConfig,
    bundle: Any,
    out: str | os.PathLike[str] | None,
    overwrite: bool,
    progress: IO[str] | None,
    resume_from: Path | None,
    callbacks: Sequence[Callback],
    choices: RecipeChoices | None = None,
) -> Run:
    """``train`` once the configuration and the data are known (``choices``: what its recipe set)."""
    seed_everything(config.seed)
    run = RunDir(out if out is not None else default_run_dir(config))
    # every mistake that can be found before training is found before anything is written
    trainer, best = make_trainer(config, bundle, run, progress, callbacks)
    model, pretrained = _create_model(config, bundle.spec)
    check = getattr(trainer.step, "check", None)  # a step that trains one kind of model (an RL algorithm)
    if callable(check):
        check(model)
    data, val = _fit_data(config, bundle, trainer)
    provenance = capture(seed=config.seed, device=trainer.device)  # when training starts, for the report
    if resume_from is None and distributed.is_global_zero():
        prepare_run_dir(run.path, overwrite)  # an overwritten run moves aside, its checkpoints with it
    try:
        fit = trainer.fit(model, data, val=val, resume_from=resume_from)
    finally:
        trainer.close()  # rank 0 evaluates the whole test split alone; the others are done
    if not distributed.is_global_zero():
        return Run(run.path)
    if fit.diverged is not None and best.best_epoch is None:
        _restore_last_good(model, trainer, fit.diverged, config)
    # a run being overwritten keeps its previous model and results until training has succeeded
    clear_stage_outputs(run)
    save_config(config, run.config_file)
    save_model(model, bundle.spec, run.path)

    task = trainer.task
    results: dict[str, Any] = {
        "task": bundle.spec.task,
        "test": _rounded(task.evaluate(trainer, model, bundle, "test")),
        "val": _rounded(task.evaluate(trainer, model, bundle, "val")) if _has_val(bundle) else {},
        "training": {
            "epochs_run": fit.epochs_run,
            "max_epochs": config.epochs if not config.env else None,
            "env_steps": getattr(trainer.source, "env_steps", None),
            "steps": fit.steps,
            "best_epoch": best.best_epoch,
            "monitor": config.monitor,
            "best_score": best.best_score,
            "train_time_s": round(fit.train_time_s, 3),
            "samples_per_s": round(fit.samples_per_s, 1),
            "device": str(trainer.device),
            "processes": trainer.world_size,
            "precision": config.precision,
            "stopped_by": _stopped_by(trainer),
            "diverged": fit.diverged,
            "resumed": resume_from is not None,
            "step": trainer.step.describe(),
            "augment": trainer.step.augment.describe() if trainer.step.augment is not None else {},
            "adversarial": trainer.step.describe() if trainer.step.name == "adversarial" else {},
            "recipe": choices.as_dict() if choices is not None else ({"name": config.recipe} if config.recipe else {}),
        },
        "data": _data_summary(bundle),
        "model": {"name": config.model, "hparams": model.glassnet_arch["hparams"], **summarize(model, bundle.spec)},
        "provenance": provenance,
    }
    if pretrained is not None:
        results["pretrained"] = pretrained
    finetune = next((c for c in trainer.callbacks if isinstance(c, FineTune)), None)
    if finetune is not None:
        results["finetune"] = finetune.describe()
    semi = semi_supervised_summary(bundle, trainer.callbacks, trainer.step)
    if semi is not None:
        results["semi_supervised"] = semi
    if config.baseline:
        results["baseline"] = fit_baselines(task, bundle, results["test"], config.seed)
    task.details(TaskContext(run, bundle, model, trainer, results, config.seed, fit.history))
    if fit.history:
        figures.training_curves(
            fit.history, run.figure("training_curves"), kept_epoch=best.best_epoch, monitor=config.monitor
        )
    run.write_result("train", results)
    track_run_files(trainer.callbacks, run.path)  # MLflow keeps the run's files as artifacts
    model.cpu().eval()
    return Run(run.path, model=model, spec=bundle.spec, config=config, bundle=bundle)


def _resume_checkpoint(out: str | os.PathLike[str] | None, resume: bool) -> Path | None:
    """The ``last.pt`` to continue from: asked for with ``resume``, or after a ``torchrun`` restart."""
    if resume:
        if out is None:
            raise ConfigError("resume needs the run directory to continue (out=RUN, or `glassnet train --resume RUN`)")
        run = RunDir(out)
        if not run.path.is_dir():
            raise RunError(f"cannot resume '{run.path}': no such run directory")
        return _checkpoints(run) / LAST
    if out is not None and distributed.restart_count() > 0 and (_checkpoints(RunDir(out)) / LAST).is_file():
        return _checkpoints(RunDir(out)) / LAST  # torchrun restarted the workers after a failure
    return None


def _saved_config(checkpoint: Path, given: RunConfig | None) -> RunConfig:
    """The configuration stored in a training checkpoint (which must agree with ``given``, if any)."""
    saved = load_checkpoint(checkpoint).get("meta", {}).get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"'{checkpoint}' holds no run configuration; it was not written by `glassnet train`")
    config = RunConfig.from_dict(saved, source=f"checkpoint '{checkpoint}'")
    if given is not None and given != config:
        changed = sorted(k for k, v in given.to_dict().items() if saved.get(k) != v)
        raise ConfigError(
            f"resuming continues with the run's saved configuration, but a different one was given "
            f"(differs in: {', '.join(changed)}); drop the configuration, or start a new run"
        )
    return config


def _restore_last_good(model: torch.nn.Module, trainer: Trainer, diverged: dict[str, int], config: RunConfig) -> None:
    """After divergence with no best epoch kept: load the weights of the last good checkpoint."""
    where = f"step {diverged['step']} of epoch {diverged['epoch']}"
    last = trainer.last_checkpoint
    if last is None or not last.is_file():
        raise RunError(
            f"training diverged (the loss became NaN or infinite) at {where}, before any good weights were kept. "
            f"Lower the learning rate (lr={config.lr}), set clip_grad_norm=1.0, or use precision=fp32"
        )
    model.load_state_dict(load_checkpoint(last)["model"])


def _stopped_by(trainer: Trainer) -> str | None:
    """Which callback ended training before ``max_epochs``, if one did."""
    for callback in trainer.callbacks:
        if isinstance(callback, TerminateOnNaN) and callback.diverged is not None:
            return "terminate_on_nan"
        if isinstance(callback, TimeLimit) and callback.stopped:
            return "time_limit"
        if isinstance(callback, EarlyStopping) and callback.stopped_epoch is not None:
            return "early_stopping"
    return None


@writes_run("evaluate")
def evaluate(
    run: Run | str | os.PathLike[str],
    data: str | None = None,
    split: str = "test",
    baseline: bool | None = None,
    episodes: int | None = None,
    seed: int | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Evaluate a saved run on a split of its own data (or of dataset ``data``); writes ``results/evaluate.json``.

    The classical baselines are fitted again on the run's own training split (nothing is unpickled)
    and scored on the same examples as the model, under ``baseline`` in the result. An agent (a run
    trained with ``--env``) plays ``episodes`` seeded episodes with its deterministic policy instead,
    against a random policy on the same seeds.

    Args:
        run: a ``Run`` or a run directory.
        data: another dataset to score the model on (default: the run's own data, as trained).
        split: ``train``, ``val`` or ``test``.
        baseline: score the baselines too (default: as the run's configuration says).
        episodes: an agent's evaluation episodes (default: the run's ``test_episodes``).
        seed: the seed of an agent's first evaluation episode (default: the test seeds, 20000 on).
        progress: a bar over an agent's episodes (True, a stream or ``"auto"``; default none); a
            dataset's split is scored in one pass, in seconds.

    A model whose weights or predictions are NaN or infinite (a diverged training) is still scored,
    but with a ``RuntimeWarning`` that says so, kept under ``warnings`` in the result.

    Raises:
        ConfigError: ``episodes`` or ``seed`` given for a run trained on a dataset, or ``data`` for an agent.
    """
    import warnings

    from glassnet.train.finite import describe_weights, nonfinite_predictions, nonfinite_weights

    run = Run.open(run)
    spec = run.spec
    weights = nonfinite_weights(run.model)
    diverged = f"{run.weights} holds {describe_weights(weights)}: the model diverged; retrain with a lower lr"
    if spec.task == "control":
        result = _evaluate_agent(run, data, baseline, episodes, seed, progress)
        if weights:
            warnings.warn(diverged, RuntimeWarning, stacklevel=3)  # past writes_run, to the caller
            result["warnings"] = [diverged]
            run.write_result("evaluate", result)
        return result
    if episodes is not None or seed is not None:
        raise ConfigError(
            "--episodes and --seed evaluate an agent (a run trained with --env); this run learnt from data"
        )
    if data is None:
        bundle, name = run.data(), run.config.data if run.config is not None else spec.name
    else:
        bundle, name = load_dataset(data), data
        if spec.task == "reconstruct" and bundle.spec.task == "classify":
            bundle = reconstruction_bundle(bundle, run.config.normal_classes or None if run.config else None)
        check_compatible(spec, bundle)
    trainer = Trainer(task=spec.task, device=run.config.device if run.config is not None else "auto")
    metrics = _rounded(trainer.task.evaluate(trainer, run.model, bundle, split))
    generation = _generation_quality(run, bundle, split) if spec.task == "generate" else None
    if generation is not None:  # the headline of results/generate.json, measured on this split
        metrics.update({k: generation[k] for k in GENERATION_HEADLINE if isinstance(generation.get(k), float)})
    result = {"task": spec.task, "data": name, "split": split, "size": len(bundle.split(split)), split: metrics}
    if generation is not None:
        result["generation"] = generation
    if baseline if baseline is not None else (run.config is None or run.config.baseline):
        result["baseline"] = _baseline_on(run, trainer.task, bundle, split, metrics)
    # a non-finite metric may be an overflowing loss; the predictions tell whether the model itself is broken
    if weights or not all(math.isfinite(v) for v in metrics.values() if isinstance(v, float)):
        bad = nonfinite_predictions(trainer.predict(run.model, bundle.split(split)).outputs)
        if bad or weights:
            warning = f"the model's outputs are not finite: {bad:,} of {result['size']:,} {split} predictions are NaN"
            result["warnings"] = [f"{warning} or infinite" + (f"; {diverged}" if weights else "")]
            warnings.warn(result["warnings"][0], RuntimeWarning, stacklevel=3)  # past writes_run, to the caller
    run.write_result("evaluate", result)
    return result


GENERATION_HEADLINE = ("fid", "kid", "coverage", "agreement")


def _generation_quality(run: Run, bundle: DataBundle, split: str) -> dict[str, Any]:
    """A generative run's FID, KID, precision/recall and coverage on ``split``, in its own feature space."""
    from glassnet.generate.evaluation import run_feature_classifier, split_quality

    seed = run.config.seed if run.config is not None else 0
    return split_quality(run.model, bundle, split, lambda: run_feature_classifier(run.path, bundle, seed), seed)


def _evaluate_agent(
    run: Run, data: str | None, baseline: bool | None, episodes: int | None, seed: int | None, progress: Any = None
) -> dict[str, Any]:
    """``evaluate`` for an agent: seeded episodes of the deterministic policy, and the random policy's."""
    if data is not None:
        raise ConfigError(f"an agent is evaluated in its own environment ({run.spec.name}); drop --data")
    config = run.config or RunConfig(env=run.spec.name)
    environment = run.data()
    task = get_task("control")
    task.test_episodes = episodes if episodes is not None else config.test_episodes
    if seed is not None:
        task.test_seed = seed
    task.progress = progress
    scores = task.evaluate(None, run.model, environment, "test")
    result: dict[str, Any] = {"task": "control", "data": run.spec.name, "split": "test", "size": scores["episodes"]}
    result["test"] = _rounded(scores)
    if baseline if baseline is not None else config.baseline:
        result["baseline"] = task.baselines(environment, result["test"], config.seed)
    run.write_result("evaluate", result)
    return result


def _baseline_on(run: Run, task: Any, bundle: DataBundle, split: str, metrics: dict[str, float]) -> dict[str, Any]:
    """The baselines fitted on the run's training split and scored on ``bundle``'s ``split``."""
    try:
        trained = run.data()
    except (RunError, DataError) as exc:
        return {"skipped": f"the run's training data cannot be rebuilt ({exc})"}
    # the anomaly labels (test_labels) describe the test split only
    info = bundle.info if split == "test" else {k: v for k, v in bundle.info.items() if k != "test_labels"}
    scored = DataBundle(trained.train, trained.val, bundle.split(split), trained.spec, info)
    seed = run.config.seed if run.config is not None else 0
    return fit_baselines(task, scored, metrics, seed)


def _for_task(config: RunConfig, spec: DataSpec) -> RunConfig:
    """The task's own validation metric as the monitor where the run leaves the default (``val/loss``)
    and the task names one (``Task.default_monitor``: mean IoU for segmentation, mAP for detection,
    whose losses keep falling or rising apart from the score that users read), saved so."""
    if config.env or config.monitor != RunConfig().monitor:
        return config
    from glassnet.train.tasks import get_task

    monitor = getattr(get_task(spec.task), "default_monitor", None)
    return dataclasses.replace(config, monitor=monitor) if monitor else config


def _for_environment(config: RunConfig, spec: DataSpec) -> RunConfig:
    """An environment run's defaults made explicit (and saved so): the model its algorithm trains
    (``actor_critic`` for PPO, ``q_network`` for DQN, ``sac_agent`` for SAC) and the evaluation
    return as the validation metric that keeps the best weights."""
    if not config.env:
        return config
    changes: dict[str, Any] = {}
    default = getattr(_training_step(config, spec), "model", None)
    if default and config.model == RunConfig().model:
        changes["model"] = default
    if config.monitor == RunConfig().monitor:
        changes["monitor"] = "val/return_mean"
    return dataclasses.replace(config, **changes)


# a pretrained text encoder's fine-tuning, where the run leaves these at RunConfig's defaults: every
# layer trains from the first epoch at a small peak rate, each layer 0.9x the one above it
ENCODER_LR = 1e-4
ENCODER_FINETUNE = {"probe_epochs": 0, "unfreeze_every": 0, "lr_decay": 0.9}


def for_encoder(config: RunConfig) -> RunConfig:
    """A run that fine-tunes a pretrained text encoder (``--model bert pretrained=minilm``) with the
    encoder's choices made explicit (and saved so): its tokenizer for the data, its sizes for the
    model, and the fine-tuning rate and recipe unless the run sets them.

    Raises:
        ConfigError: the run names another tokenizer, or the encoder is not one ``bert`` can take.
    """
    files = encoder_for(config.model, config.pretrained)
    if files is None:
        return _for_encoder_run(config)
    given = config.data_args.get("tokenizer")
    if given is not None and given != config.pretrained and subword_file(str(given)) != files.tokenizer:
        raise ConfigError(
            f"data.tokenizer={given} does not fit pretrained={config.pretrained}: the encoder reads the ids of its own "
            f"tokenizer ({files.tokenizer}); leave data.tokenizer out"
        )
    return _with_encoder(config, config.pretrained if given is None else given, encoder_hparams(files))


def _for_encoder_run(config: RunConfig) -> RunConfig:
    """``pretrained=RUN`` where RUN fine-tuned a pretrained encoder (``bert`` on a subword tokenizer): that run is
    an encoder too, so its tokenizer and sizes carry over as ``for_encoder`` carries an encoder's."""
    source = Path(config.pretrained).expanduser() if config.pretrained and config.model == "bert" else None
    if source is None or not (source / "model.json").is_file() or not (source / "config.yaml").is_file():
        return config
    try:
        arch = json.loads((source / "model.json").read_text())
        tokenizer = load_config(source / "config.yaml").data_args.get("tokenizer")
    except (OSError, ValueError, ConfigError):
        return config  # not a readable run: load_pretrained says what is wrong with it
    if arch.get("name") != "bert" or tokenizer in (None, "word", "char"):
        return config
    return _with_encoder(config, config.data_args.get("tokenizer", tokenizer), arch.get("hparams", {}))


def _with_encoder(config: RunConfig, tokenizer: str, hparams: dict[str, Any]) -> RunConfig:
    """``config`` with an encoder's tokenizer and sizes, and the fine-tuning defaults where the run has none."""
    changes: dict[str, Any] = {
        "data_args": {**config.data_args, "tokenizer": tokenizer},
        "model_args": {**hparams, **config.model_args},
        "finetune": {**ENCODER_FINETUNE, **config.finetune},
    }
    if config.lr == RunConfig().lr:
        changes["lr"] = ENCODER_LR
    return dataclasses.replace(config, **changes)


def _fit_data(config: RunConfig, data: Any, trainer: Trainer) -> tuple[Any, Any]:
    """What ``Trainer.fit`` takes: a bundle (its own validation split), a generative task's training images
    with its sample-scoring validation, the batch source of a step that has one (the semi-supervised steps:
    labelled batches and an unlabelled pool), or an algorithm's rollouts of an environment with episodes of
    the deterministic policy as the validation."""
    if not config.env:
        validation = getattr(trainer.task, "validation", None)  # a task that scores samples (generate), not a split
        if callable(validation):
            return data.train, validation(data)
        make_source = getattr(trainer.step, "source", None)  # a step that mixes in an unlabelled pool
        return (make_source(data), data.val) if callable(make_source) else (data, None)
    task = trainer.task
    source = trainer.step.source(data)

    def evaluate(_: Trainer, model: torch.nn.Module) -> dict[str, float]:
        result = task.evaluate(trainer, model, data, "val")
        scores = {k: v for k, v in result.items() if isinstance(v, float)}
        return {**scores, "env_steps": float(source.env_steps)}

    return source, evaluate


def _has_val(data: Any) -> bool:
    return isinstance(data, DataBundle) and len(data.val) > 0


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}


def _data_summary(bundle: DataBundle) -> dict[str, Any]:
    """``bundle.summary()`` without the per-example test labels of a reconstruction bundle."""
    return {key: value for key, value in bundle.summary().items() if key != "test_labels"}
