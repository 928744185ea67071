"""The robustness stage over a run: ``robustness_run`` writes ``results/robustness.json`` and its figures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from glassnet.errors import ConfigError, DataError
from glassnet.explain.names import DENSE_TASKS
from glassnet.progress import Progress
from glassnet.robustness.evaluate import DEFAULT_ATTACKS, robustness
from glassnet.robustness.record import write_record
from glassnet.runs import writes_run
from glassnet.train.finite import require_finite_weights
from glassnet.train.run import Run

DEFAULT_LIMIT = 1000


@writes_run("attack")
def robustness_run(
    run: Run | str | os.PathLike[str],
    attack: str | Sequence[str] = DEFAULT_ATTACKS,
    eps: Sequence[float] | None = None,
    norm: str = "linf",
    worst_case: bool = True,
    limit: int | None = DEFAULT_LIMIT,
    split: str = "test",
    seed: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
    apgd_steps: int = 100,
    target_classes: int = 3,
    square_queries: int = 1000,
    precision: str = "fp32",
    episodes: int = 10,
    progress: Progress = None,
) -> dict[str, Any]:
    """Attack a trained run on a split of its dataset; writes ``results/robustness.json`` and figures.

    ``robustness.json`` holds ``clean_accuracy``, ``robust_accuracy`` (worst case per eps, keyed by
    eps), ``curves``, ``worst_case``, ``checks``, ``warnings`` and ``adversarial_training`` (the
    run's adversarial-training settings, or None). Figures: ``robustness_curves.png`` and
    ``adversarial_examples.png``.

    Args:
        run: a trained classifier's ``Run``, or its directory.
        attack: attacks drawn as accuracy-against-eps curves.
        eps: budgets (see ``robustness`` for the defaults and units).
        norm: ``linf`` or ``l2``.
        worst_case: run the AutoAttack-style worst case as well.
        limit: attack ``limit`` examples of the split, sampled with a fixed seed (None: all).
        split: ``test``, ``val`` or ``train``.
        seed: random starts and the Square attack.
        options: per-attack keyword arguments.
        apgd_steps: iterations of each APGD run in the worst case.
        target_classes: target classes of the targeted APGD-DLR.
        square_queries: query budget of the Square attack.
        precision: ``fp32``, or ``bf16`` to run the attacks under bf16 autocast (faster, slightly weaker).
        episodes: an agent's run (``--env``): seeded test episodes per point of its return-against-eps
            curves (``glassnet.robustness.policy``; ``random`` noise is always attacked as the reference).
        progress: a bar over the (attack, eps) points with elapsed time and time left: True on stderr, or
            a text stream; None (default) or False draws nothing.

    Returns:
        The dict written to ``robustness.json``.

    Raises:
        RunError: the run has no saved model, or its weights are NaN or infinite (it diverged).
        DataError: the run is not a classifier.
        ConfigError: bad attack, eps or norm.
    """
    run = Run.open(run)
    model, spec = run.model, run.spec
    require_finite_weights(model, run.weights)
    if spec.task == "control":
        from glassnet.robustness.policy import attack_policy

        if norm != "linf":
            raise ConfigError("an agent's observations are attacked in the linf norm; drop --norm l2")
        methods = [attack] if isinstance(attack, str) else list(attack)
        methods = ["random", *(m for m in methods if m != "random")]
        return attack_policy(run, methods, eps, episodes, seed=seed, progress=progress)
    if spec.task in (*DENSE_TASKS, "transcribe"):
        from glassnet.robustness.dense import METHODS, attack_dense

        if norm != "linf":
            raise ConfigError(f"{spec.task} models are attacked in the linf norm; drop --norm l2")
        methods = [attack] if isinstance(attack, str) else list(attack)
        methods = ["random", *(m for m in methods if m != "random")]
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"{spec.task} models take the attacks {', '.join(METHODS)}; not {', '.join(unknown)}")
        return attack_dense(run, methods, eps, limit, split, seed, progress=progress)
    if spec.task != "classify":
        raise DataError(f"glassnet robustness evaluates classifiers; the run at '{run.path}' is a {spec.task} model")
    config, bundle = run.config, run.data()
    split_data = bundle.split(split)
    train_inputs = bundle.train.tensors[0] if hasattr(bundle.train, "tensors") else None
    result = robustness(
        model,
        split_data,
        eps=eps,
        attack=attack,
        norm=norm,
        worst_case=worst_case,
        spec=spec,
        limit=limit,
        seed=seed,
        options=options,
        apgd_steps=apgd_steps,
        target_classes=target_classes,
        square_queries=square_queries,
        reference=train_inputs,
        precision=precision,
        progress=progress,
    )
    return write_record(run, result, bundle.spec.name or (config.data if config else ""), split)


attack_run = robustness_run  # the stage's former name
