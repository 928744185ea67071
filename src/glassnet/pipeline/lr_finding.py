"""The LR-finder stage: run the learning-rate range test for a configuration, before training."""

from __future__ import annotations

import os

from glassnet.config import RunConfig
from glassnet.figures import pyplot, save_figure
from glassnet.models import create_model
from glassnet.pipeline.recipes import with_recipe
from glassnet.pipeline.training import default_run_dir, for_encoder, make_trainer
from glassnet.runs import RunDir, lock_run, transaction
from glassnet.train import seed_everything
from glassnet.train.lr_finder import LRFinderResult, find_lr
from glassnet.train.run import load_training_data


def find_learning_rate(
    config: RunConfig,
    out: str | os.PathLike[str] | None = None,
    num_steps: int = 100,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
) -> tuple[RunDir, LRFinderResult]:
    """Run the LR range test on the training split of ``config``'s data, with its model and optimiser.

    Nothing is trained: the model is built as ``glassnet train`` would build it (same seed,
    augmentation, class weights, batch size and optimiser), the test runs, and the run directory
    receives ``results/lr_finder.json`` and ``figures/lr_finder.png`` only. A run directory that
    already holds a trained run keeps everything else.

    Args:
        config: the run configuration (``lr`` and ``epochs`` are not used).
        out: run directory (default ``runs/<model>-<data>`` with a free suffix).
        num_steps: batches of the test.
        min_lr: first learning rate.
        max_lr: last learning rate.

    Returns:
        The run directory and the ``LRFinderResult`` (``suggestion`` is the suggested ``lr``).
    """
    config = for_encoder(config)
    bundle = load_training_data(config)
    config, _ = with_recipe(config, bundle)
    seed_everything(config.seed)
    model = create_model(config.model, bundle.spec, **config.model_args)
    trainer, _ = make_trainer(config, bundle)
    result = find_lr(trainer, model, bundle, min_lr=min_lr, max_lr=max_lr, num_steps=num_steps)
    run = RunDir(out if out is not None else default_run_dir(config))
    if run.path.exists() and not run.path.is_dir():
        from glassnet.errors import RunError

        raise RunError(f"--out '{run.path}' is a file; choose a directory")
    record = {"data": config.data, "model": config.model, **result.to_dict()}
    with lock_run(run.path, "train --find-lr", create=True), transaction(run.path, "train --find-lr"):
        run.write_result("lr_finder", record)
        plot_lr_finder(result, run.figure("lr_finder"))
    return run, result


def plot_lr_finder(result: LRFinderResult, path: str | os.PathLike[str]) -> None:
    """Loss against learning rate (log scale): raw steps, the smoothed curve and the suggestion."""
    plt = pyplot()
    finite = [(lr, raw, s) for lr, raw, s in zip(result.lrs, result.losses, result.smoothed) if s != float("inf")]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if finite:
        lrs, raw, smoothed = zip(*finite)
        ax.plot(lrs, raw, color="0.75", linewidth=0.8, label="loss per batch")
        ax.plot(lrs, smoothed, color="C0", label="smoothed")
        low, high = min(min(raw), min(smoothed)), max(smoothed[0], min(smoothed) * 2.5)
        ax.set_ylim(low - 0.05 * (high - low), high + 0.1 * (high - low))
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="C3", linestyle="--", label=f"suggested lr {result.suggestion:.2g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="Learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    save_figure(fig, path)
