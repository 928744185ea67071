"""The train and evaluate stages over one run directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from glassnet.config import RunConfig, save_config
from glassnet.data import DataBundle, DataSpec, load_dataset
from glassnet.errors import CheckpointError, ConfigError, DataError, RunError
from glassnet.models import create_model, list_models, model_info, save_model, summarize
from glassnet.models.autoencoder import anomaly_scores
from glassnet.report import figures
from glassnet.report import reconstruction as reconstruction_figures
from glassnet.runs import CHECKPOINTS_DIR, RunDir
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
from glassnet.train.checkpoint import LAST
from glassnet.train.reconstruction import evaluate_reconstruction, reconstruction_bundle
from glassnet.train.tasks import Classification, MultiLabel, get_task, make_task

GRID_SIZE = 24
RECONSTRUCTION_EXAMPLES = 8
VAE_SAMPLES = 32
THRESHOLD_PERCENTILE = 95


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
    ``checkpoints/last.pt``) is pointed to ``--resume``.
    """
    run = RunDir(out)
    if run.path.exists() and not run.path.is_dir():
        raise RunError(f"--out '{run.path}' is a file; choose a directory")
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
    spec: DataSpec,
    run: RunDir | None = None,
    progress: IO[str] | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> tuple[Trainer, BestModel]:
    """A ``Trainer`` configured from ``config``: augmentation, precision, schedules, best-on-validation
    selection, the engine's callbacks, logging and (with a run) resumable checkpoints."""
    best = BestModel(monitor=config.monitor)
    # EMA first: validation, BestModel and ModelCheckpoint then see (and keep) the averaged weights
    callbacks: list[Any] = [EMA(config.ema)] if config.ema else []
    callbacks.append(best)
    if config.early_stopping:
        callbacks.append(EarlyStopping(monitor=config.monitor, patience=config.early_stopping))
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
            callbacks.append(ModelCheckpoint(_checkpoints(run), monitor=config.monitor, save_top_k=config.save_top_k))
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
        callbacks=callbacks,
        seed=config.seed,
        device=config.device,
        step=_training_step(config, spec),
        num_workers=config.num_workers,
        accumulate=config.accumulate,
        precision=config.precision,
        channels_last=config.channels_last,
        compile=config.compile,
        warmup=config.warmup,
        monitor=config.monitor,
        plateau_factor=config.plateau_factor,
        plateau_patience=config.plateau_patience,
        checkpoint_dir=_checkpoints(run) if run is not None else None,
        checkpoint_every=config.checkpoint_every,
        checkpoint_meta={"config": config.to_dict()},
    )
    return trainer, best


def _checkpoints(run: RunDir) -> Path:
    return run.path / CHECKPOINTS_DIR


def _loggers(config: RunConfig, run: RunDir) -> list[Any]:
    """The ``loggers`` of the config: ``csv`` writes RUN/metrics.csv, ``tensorboard`` RUN/tensorboard/."""
    from glassnet.train.loggers import CSVLogger, TensorBoardLogger

    made = {
        "csv": lambda: CSVLogger(run.path / "metrics.csv"),
        "tensorboard": lambda: TensorBoardLogger(run.path / "tensorboard"),
    }
    return [made[name]() for name in config.loggers]


def _training_step(config: RunConfig, spec: DataSpec) -> Any:
    """The task's own step, or an adversarial-training step around it when ``adversarial`` is set."""
    augment = _augmentation(config, spec)
    if not config.adversarial:
        return get_task(spec.task).make_step(augment)
    from glassnet.robust.training import adversarial_step

    return adversarial_step(config.adversarial, spec, augment=augment)


def _augmentation(config: RunConfig, spec: DataSpec) -> Any:
    if not config.augment:
        return None
    from glassnet.data.augment import build_augmentation

    return build_augmentation(spec, config.augment)


def load_training_data(config: RunConfig) -> DataBundle:
    """The dataset that ``config`` names, in the form its model trains on.

    A reconstruction model (registered for ``reconstruct`` only) given a classification dataset gets
    a reconstruction bundle: inputs as targets, trained on ``config.normal_classes`` (every class
    when empty), with the test split's classes kept in ``info["test_labels"]``.

    Raises:
        ConfigError: ``normal_classes`` is set for a model or dataset it does not apply to, names a
            class the dataset lacks, or names every class (leaving nothing to detect).
    """
    reconstructs = model_info(config.model).tasks == ("reconstruct",)
    if config.normal_classes and not reconstructs:
        raise ConfigError(
            f"normal_classes={config.normal_classes!r} applies to reconstruction models only "
            f"({', '.join(_reconstruction_models())}); model {config.model!r} does not reconstruct. "
            "Choose one of those models or remove normal_classes"
        )
    bundle = load_dataset(config.data, **config.data_args)
    if bundle.spec.task != "classify":
        if config.normal_classes:
            raise ConfigError(
                f"normal_classes={config.normal_classes!r} needs a classification dataset (its classes say what is "
                f"normal); dataset {bundle.spec.name or config.data!r} is for {bundle.spec.task}"
            )
        return bundle
    if not reconstructs:
        return bundle
    bundle = reconstruction_bundle(bundle, config.normal_classes or None)
    names = bundle.info["class_names"]
    if config.normal_classes and len(bundle.info["normal_classes"]) == len(names):
        raise ConfigError(
            f"normal_classes={config.normal_classes!r} names every class ({', '.join(names)}), so no test example "
            "is abnormal. Name fewer classes, or leave normal_classes empty for plain reconstruction"
        )
    return bundle


def train(
    config: RunConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: IO[str] | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> RunDir:
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
        The ``RunDir`` written.

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
    bundle = load_training_data(config)
    seed_everything(config.seed)
    model = create_model(config.model, bundle.spec, **config.model_args)
    run = RunDir(out if out is not None else default_run_dir(config))
    # every mistake that can be found before training is found before anything is written
    trainer, best = make_trainer(config, bundle.spec, run, progress, callbacks)
    counted = _targets(bundle.train) if config.class_weights == "balanced" else None
    trainer.task = make_task(
        bundle.spec.task, config.class_weights, config.label_smoothing, counted, bundle.spec.num_outputs
    )
    trainer.task.mode(config.monitor)
    if resume_from is None and distributed.is_global_zero():
        prepare_run_dir(run.path, overwrite)
        shutil.rmtree(_checkpoints(run), ignore_errors=True)  # an overwritten run's states do not resume this one
    try:
        fit = trainer.fit(model, bundle, resume_from=resume_from)
    finally:
        distributed.cleanup()  # rank 0 evaluates the whole test split alone; the others are done
    if not distributed.is_global_zero():
        return run
    if fit.diverged is not None and best.best_epoch is None:
        _restore_last_good(model, trainer, fit.diverged, config)
    # a run being overwritten keeps its previous model and results until training has succeeded
    clear_stage_outputs(run)
    save_config(config, run.config)
    save_model(model, bundle.spec, run.path)

    results: dict[str, Any] = {
        "task": bundle.spec.task,
        "test": _metrics(trainer, model, bundle.test),
        "val": _metrics(trainer, model, bundle.val) if len(bundle.val) else {},
        "training": {
            "epochs_run": fit.epochs_run,
            "max_epochs": config.epochs,
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
            "augment": trainer.step.augment.describe() if trainer.step.augment is not None else {},
            "adversarial": trainer.step.describe() if config.adversarial else {},
        },
        "data": _data_summary(bundle),
        "model": {"name": config.model, "hparams": model.glassnet_arch["hparams"], **summarize(model, bundle.spec)},
    }
    if bundle.spec.task == "reconstruct":
        _reconstruction_details(run, bundle, model, results, config.seed)
    elif bundle.spec.task == "language_model":
        from glassnet.train.language_model import sample_text

        results["sample"] = {"prompt": "the ", "temperature": 0.8, "seed": config.seed}
        results["sample"]["text"] = sample_text(model, bundle.spec, "the ", 200, 0.8, config.seed)
    elif bundle.spec.task == "tag":  # one class per step: per-tag scores, baselines, example texts
        from glassnet.pipeline.tagging import tagging_details

        tagging_details(run, bundle, trainer.predict(model, bundle.test), results)
    elif bundle.spec.task != "seq2seq":  # sequence outputs have no confusion matrix or scatter plot
        _test_details(run, bundle, trainer.predict(model, bundle.test), results)
    if fit.history:
        figures.training_curves(fit.history, run.figure("training_curves"))
    run.write_result("train", results)
    return run


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


def evaluate(run_dir: str | os.PathLike[str], data: str | None = None, split: str = "test") -> dict[str, Any]:
    """Evaluate a saved run on a split of its dataset (or of ``data``); writes ``results/evaluate.json``."""
    from glassnet.config import read_yaml
    from glassnet.models import load_model

    run = RunDir(run_dir)
    model, spec = load_model(run.path)
    config = RunConfig.from_dict(read_yaml(run.config)) if run.config.is_file() else RunConfig(data=spec.name)
    name = data or config.data
    bundle = load_dataset(name, **(config.data_args if data is None else {}))
    if spec.task == "reconstruct" and bundle.spec.task == "classify":
        bundle = reconstruction_bundle(bundle, config.normal_classes or None)
    check_compatible(spec, bundle)
    trainer = Trainer(task=spec.task, device=config.device)
    metrics = _metrics(trainer, model, bundle.split(split))
    if split == "test" and _has_anomalies(bundle):
        metrics.update(anomaly_detection(model, bundle)[0])
    result = {"task": spec.task, "data": name, "split": split, "size": len(bundle.split(split)), split: metrics}
    run.write_result("evaluate", result)
    return result


def check_compatible(spec: DataSpec, bundle: DataBundle) -> None:
    """Raise ``DataError`` unless ``bundle`` has the inputs and outputs the model was built for."""
    other = bundle.spec
    if (other.input_shape, other.task, other.num_outputs) != (spec.input_shape, spec.task, spec.num_outputs):
        raise DataError(
            f"dataset {other.name!r} ({other.task}, inputs {other.input_shape}, {other.num_outputs} outputs) "
            f"does not match the model ({spec.task}, inputs {spec.input_shape}, {spec.num_outputs} outputs)"
        )
    if spec.class_names and other.class_names and list(spec.class_names) != list(other.class_names):
        raise DataError(
            f"dataset {other.name!r} has the classes {list(other.class_names)}, but the model was trained on "
            f"{list(spec.class_names)}: the scores would compare different classes"
        )
    mine, theirs = spec.extra.get("vocab"), other.extra.get("vocab")
    if mine is not None and theirs is not None and list(mine) != list(theirs):
        raise DataError(
            f"dataset {other.name!r} was encoded with a different vocabulary ({len(theirs):,} tokens) than the "
            f"model ({len(mine):,} tokens), so its token ids mean other words; evaluate a text run on the dataset "
            "and data options it was trained with"
        )


def _metrics(trainer: Trainer, model: torch.nn.Module, data: Dataset) -> dict[str, float]:
    if trainer.task.name == "reconstruct":  # batch by batch, so a VAE's ELBO and KL survive
        values = evaluate_reconstruction(model, data, device=trainer.device)
    else:
        values = trainer.evaluate(model, data)
    return {k: round(v, 6) for k, v in values.items()}


def _test_details(run: RunDir, bundle: DataBundle, predictions: Any, results: dict[str, Any]) -> None:
    """Confusion matrix, example predictions and their figures for the report."""
    spec = bundle.spec
    targets = _targets(bundle.test)
    task = get_task(spec.task)
    if isinstance(task, MultiLabel):
        names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
        results["test"]["per_label"] = dict(zip(names, task.per_label(predictions.outputs, targets)))
        return
    if isinstance(task, Classification):
        matrix = task.confusion_matrix(predictions.outputs, targets)
        results["test"]["confusion_matrix"] = matrix
        names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
        figures.confusion_matrix(matrix, names, run.figure("confusion_matrix"))
        chosen = _grid_indices(targets, predictions.prediction)
        results["test"]["examples"] = [
            {
                "index": int(i),
                "true": int(targets[i]),
                "predicted": int(predictions.prediction[i]),
                "confidence": round(float(predictions.confidence[i]), 4),
            }
            for i in chosen
        ]
        if spec.modality == "image":
            figures.prediction_grid(
                torch.stack([torch.as_tensor(bundle.test[i][0]) for i in chosen]).numpy(),
                [int(targets[i]) for i in chosen],
                [int(predictions.prediction[i]) for i in chosen],
                [float(predictions.confidence[i]) for i in chosen],
                names,
                run.figure("predictions"),
            )
    else:
        figures.predicted_vs_true(targets.numpy(), predictions.prediction.numpy(), run.figure("predicted_vs_true"))


def anomaly_detection(model: torch.nn.Module, bundle: DataBundle) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """How well an autoencoder's reconstruction error tells the normal classes from the others.

    On the test split, examples whose class is not in ``bundle.info["normal_classes"]`` are the
    anomalies. The threshold is the 95th percentile of the scores of the validation split (normal
    classes only; the training split when there is no validation split), so about one normal
    example in twenty is flagged; precision and recall are those of ``score > threshold``.

    Args:
        model: a trained autoencoder.
        bundle: a reconstruction bundle made with normal classes (``reconstruction_bundle``).

    Returns:
        ``(metrics, scores, abnormal)``: ``auroc`` (when the test split holds both kinds),
        ``threshold``, ``precision`` and ``recall``; the test scores; the test examples' abnormal mask.
    """
    from sklearn.metrics import roc_auc_score

    labels = torch.as_tensor(bundle.info["test_labels"])
    abnormal = (~torch.isin(labels, torch.as_tensor(bundle.info["normal_classes"]))).numpy()
    scores = anomaly_scores(model, bundle.test.tensors[0]).numpy()
    reference = bundle.val if len(bundle.val) else bundle.train
    threshold = float(np.percentile(anomaly_scores(model, reference.tensors[0]).numpy(), THRESHOLD_PERCENTILE))
    flagged = scores > threshold
    hits = int((flagged & abnormal).sum())
    metrics: dict[str, float] = {}
    if abnormal.any() and not abnormal.all():
        metrics["auroc"] = round(float(roc_auc_score(abnormal, scores)), 6)
    metrics["threshold"] = float(f"{threshold:.6g}")  # significant digits: scores can be tiny
    metrics["precision"] = round(hits / max(int(flagged.sum()), 1), 6)
    metrics["recall"] = round(hits / max(int(abnormal.sum()), 1), 6)
    return metrics, scores, abnormal


def _reconstruction_models() -> list[str]:
    return [name for name in list_models() if model_info(name).tasks == ("reconstruct",)]


def _has_anomalies(bundle: DataBundle) -> bool:
    """Whether ``bundle`` is a reconstruction bundle trained on some classes only."""
    return bundle.info.get("normal_classes") is not None and "test_labels" in bundle.info


def _data_summary(bundle: DataBundle) -> dict[str, Any]:
    """``bundle.summary()`` without the per-example test labels of a reconstruction bundle."""
    return {key: value for key, value in bundle.summary().items() if key != "test_labels"}


def _reconstruction_details(
    run: RunDir, bundle: DataBundle, model: torch.nn.Module, results: dict[str, Any], seed: int
) -> None:
    """Anomaly-detection metrics and figures, example reconstructions and VAE samples (drawn with ``seed``)."""
    inputs = bundle.test.tensors[0]
    names = bundle.info.get("class_names") or []
    labels = bundle.info.get("test_labels")
    scores = abnormal = None
    if _has_anomalies(bundle):
        metrics, scores, abnormal = anomaly_detection(model, bundle)
        results["test"].update(metrics)
        results["anomaly"] = {
            "normal_classes": [names[i] for i in bundle.info["normal_classes"]],
            "threshold_percentile": THRESHOLD_PERCENTILE,
            "threshold_from": "val" if len(bundle.val) else "train",
            "test_normal": int((~abnormal).sum()),
            "test_abnormal": int(abnormal.sum()),
        }
        reconstruction_figures.score_histogram(
            scores[~abnormal], scores[abnormal], metrics["threshold"], run.figure("anomaly_scores")
        )
    chosen = _reconstruction_indices(len(inputs), abnormal)
    titles = [
        (names[labels[i]] if names and labels else f"test #{i}")
        + (f"\nscore {scores[i]:.3g}" if scores is not None else "")
        for i in chosen
    ]
    originals, outputs = _display_units(bundle.spec, inputs[chosen], _reconstruct(model, inputs[chosen]))
    reconstruction_figures.reconstruction_pairs(
        originals,
        outputs,
        bundle.spec.modality,
        run.figure("reconstructions"),
        titles=titles,
        ylabel="standardised value" if bundle.spec.modality == "tabular" else "value",
    )
    if callable(getattr(model, "sample", None)) and bundle.spec.modality == "image":
        generator = torch.Generator().manual_seed(seed)
        samples = model.sample(VAE_SAMPLES, generator=generator)
        reconstruction_figures.sample_grid(samples.cpu().numpy(), run.figure("vae_samples"))


def _reconstruction_indices(count: int, abnormal: np.ndarray | None) -> list[int]:
    """The first test examples; half of them normal and half abnormal when there are anomalies."""
    if abnormal is None:
        return list(range(min(count, RECONSTRUCTION_EXAMPLES)))
    half = RECONSTRUCTION_EXAMPLES // 2
    picked = np.concatenate([np.flatnonzero(~abnormal)[:half], np.flatnonzero(abnormal)[:half]])
    return sorted(int(i) for i in picked)


def _reconstruct(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Reconstructions on the CPU, in eval mode without gradients (the model's mode is restored)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return model(inputs.to(device)).float().cpu()
    finally:
        model.train(was_training)


def _display_units(spec: DataSpec, originals: torch.Tensor, outputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Natural units, except table columns, standardised so that columns of any scale share one axis."""
    if spec.modality == "tabular" and spec.input_mean is not None and spec.input_std is not None:
        mean, std = torch.tensor(spec.input_mean), torch.tensor(spec.input_std)
        originals, outputs = (originals - mean) / std, (outputs - mean) / std
    return originals.numpy(), outputs.numpy()


def _targets(data: Dataset) -> torch.Tensor:
    """The targets of a split without decoding its inputs where the dataset can say them."""
    if isinstance(data, TensorDataset):
        return data.tensors[1]
    if isinstance(getattr(data, "targets", None), torch.Tensor):
        return data.targets
    return torch.stack([torch.as_tensor(data[i][1]) for i in range(len(data))])


def _grid_indices(targets: torch.Tensor, predicted: torch.Tensor) -> list[int]:
    """Up to a third of the grid for mistakes, the rest for correct predictions, in test order."""
    wrong = np.flatnonzero((targets != predicted).numpy())[: GRID_SIZE // 3]
    right = np.flatnonzero((targets == predicted).numpy())[: GRID_SIZE - len(wrong)]
    return sorted(int(i) for i in np.concatenate([wrong, right]))
