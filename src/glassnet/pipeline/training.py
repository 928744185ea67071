"""The train and evaluate stages over one run directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from glassnet.config import RunConfig, save_config
from glassnet.data import DataBundle, DataSpec, load_dataset
from glassnet.errors import DataError, RunError
from glassnet.models import create_model, save_model, summarize
from glassnet.report import figures
from glassnet.runs import RunDir
from glassnet.train import (
    BestModel,
    EarlyStopping,
    MetricsLogger,
    ProgressBar,
    Trainer,
    seed_everything,
)
from glassnet.train.tasks import Classification, get_task

GRID_SIZE = 24


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

    What a failed training attempt leaves behind (its ``metrics.jsonl``) does not count as a run,
    so the corrected command can reuse the directory; anything else that is not ours does.
    """
    run = RunDir(out)
    if run.path.exists() and not run.path.is_dir():
        raise RunError(f"--out '{run.path}' is a file; choose a directory")
    if run.path.exists() and not overwrite:
        if any(p.exists() for p in (run.model_json, run.weights, run.results_dir, run.report)):
            raise RunError(f"'{run.path}' already holds a run; pass --overwrite to replace it or choose another --out")
        foreign = sorted(p.name for p in run.path.iterdir() if p != run.metrics)
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
    config: RunConfig, spec: DataSpec, run: RunDir | None = None, progress: IO[str] | None = None
) -> tuple[Trainer, BestModel]:
    """A ``Trainer`` configured from ``config`` with augmentation, best-on-validation selection
    and logging."""
    best = BestModel(monitor=config.monitor)
    callbacks: list[Any] = [best]
    if config.early_stopping:
        callbacks.append(EarlyStopping(monitor=config.monitor, patience=config.early_stopping))
    if run is not None:
        callbacks.append(MetricsLogger(run.metrics))
    if progress is not None:
        callbacks.append(ProgressBar(progress))
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
        step=get_task(spec.task).make_step(_augmentation(config, spec)),
        num_workers=config.num_workers,
    )
    return trainer, best


def _augmentation(config: RunConfig, spec: DataSpec) -> Any:
    if not config.augment:
        return None
    from glassnet.data.augment import build_augmentation

    return build_augmentation(spec, config.augment)


def train(
    config: RunConfig,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: IO[str] | None = None,
) -> RunDir:
    """Train a model as ``config`` says and write the run directory.

    Writes ``config.yaml``, ``metrics.jsonl``, ``model.json``, ``model.safetensors``,
    ``results/train.json`` (``test.accuracy`` or ``test.mae``/``test.rmse``) and the figures.

    Args:
        config: the run configuration.
        out: run directory (default ``runs/<model>-<data>`` with a free suffix).
        overwrite: replace a run already in ``out``.
        progress: stream for the progress bar (None: silent).

    Returns:
        The ``RunDir`` written.
    """
    bundle = load_dataset(config.data, **config.data_args)
    seed_everything(config.seed)
    model = create_model(config.model, bundle.spec, **config.model_args)
    run = RunDir(out if out is not None else default_run_dir(config))
    # every mistake that can be found before training is found before anything is written
    trainer, best = make_trainer(config, bundle.spec, run, progress)
    trainer.task.mode(config.monitor)
    prepare_run_dir(run.path, overwrite)
    fit = trainer.fit(model, bundle)
    # a run being overwritten keeps its previous model and results until training has succeeded
    clear_stage_outputs(run)
    save_config(config, run.config)
    save_model(model, bundle.spec, run.path)

    test_predictions = trainer.predict(model, bundle.test)
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
            "augment": trainer.step.augment.describe() if trainer.step.augment is not None else {},
        },
        "data": bundle.summary(),
        "model": {"name": config.model, "hparams": model.glassnet_arch["hparams"], **summarize(model, bundle.spec)},
    }
    _test_details(run, bundle, test_predictions, results)
    if fit.history:
        figures.training_curves(fit.history, run.figure("training_curves"))
    run.write_result("train", results)
    return run


def evaluate(run_dir: str | os.PathLike[str], data: str | None = None, split: str = "test") -> dict[str, Any]:
    """Evaluate a saved run on a split of its dataset (or of ``data``); writes ``results/evaluate.json``."""
    from glassnet.config import read_yaml
    from glassnet.models import load_model

    run = RunDir(run_dir)
    model, spec = load_model(run.path)
    config = RunConfig.from_dict(read_yaml(run.config)) if run.config.is_file() else RunConfig(data=spec.name)
    name = data or config.data
    bundle = load_dataset(name, **(config.data_args if data is None else {}))
    check_compatible(spec, bundle)
    trainer = Trainer(task=spec.task, device=config.device)
    metrics = trainer.evaluate(model, bundle.split(split))
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


def _metrics(trainer: Trainer, model: torch.nn.Module, data: Dataset) -> dict[str, float]:
    return {k: round(v, 6) for k, v in trainer.evaluate(model, data).items()}


def _test_details(run: RunDir, bundle: DataBundle, predictions: Any, results: dict[str, Any]) -> None:
    """Confusion matrix, example predictions and their figures for the report."""
    spec = bundle.spec
    targets = _targets(bundle.test)
    task = get_task(spec.task)
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
