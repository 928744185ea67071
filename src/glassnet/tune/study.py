"""``tune``: hyper-parameter search with Optuna, every trial an ordinary run.

Each trial draws its values from the search space, trains through ``glassnet.pipeline.train`` into
``OUT/trial-NNNN/`` and reports the validation metric after every epoch; Optuna's pruner may stop it
early, after which the run is finished as any other (evaluated, saved) and marked pruned in its
``results/tune.json``. The study lives in Optuna's RDB storage (``OUT/study.db``, SQLite, by default),
so running the same command again resumes it and several workers, on one machine (SQLite) or on
several (``--storage postgresql://...``), share it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from glassnet.config import RunConfig, load_config
from glassnet.errors import ConfigError, GlassnetError, RunError
from glassnet.runs import RunDir
from glassnet.train.callbacks import Callback
from glassnet.train.loggers import data_name
from glassnet.tune.space import SearchSpace, parse_space

if TYPE_CHECKING:
    from torch import nn

    from glassnet.train.trainer import Trainer

TUNE_EXTRA = "pip install 'glassnet[tune]'"
HEARTBEAT_S, GRACE_S = 10, 30  # a worker's trial with no heartbeat for GRACE_S is failed (its worker died)
FAILED_IN_A_ROW = 3  # a worker stops after this many failed trials in a row
PRUNE_STARTUP_TRIALS, PRUNE_WARMUP_EPOCHS = 5, 2
STORAGE_ATTEMPTS = 5


def tune(
    data: str | None = None,
    model: str | None = None,
    space: dict[str, Any] | list[str] | None = None,
    trials: int = 20,
    out: str | os.PathLike[str] | None = None,
    storage: str | None = None,
    study: str | None = None,
    timeout: float | None = None,
    metric: str | None = None,
    config: str | os.PathLike[str] | RunConfig | None = None,
    prune: bool = True,
    sampler: Any = None,
    pruner: Any = None,
    log: IO[str] | None = None,
) -> dict[str, Any]:
    """Search hyper-parameters with Optuna; every trial trains an ordinary run into ``out/trial-NNNN``.

    The study is resumable: called again with the same arguments it adds trials until ``trials`` are
    complete, pruned or under way (failed trials do not count). Workers started with the same
    arguments share the study and its trials. At the end ``out/study.json`` and the self-contained
    ``out/study.html`` (trials, importance, parallel coordinates, history) describe the study.

    Args:
        data: a dataset name or path (or in ``config``).
        model: a model name (or in ``config``).
        space: ``{"lr": "log(1e-4,1e-2)", "model.width": [64, 128], "epochs": 5}`` or the same as
            ``["lr=log(1e-4,1e-2)", ...]``: ``log(a,b)``, ``uniform(a,b)``, ``int(a,b)`` and lists are
            searched, other values fixed for every trial.
        trials: the study's number of trials (across runs of this command and all workers).
        out: the study's directory (default ``runs/tune-<model>-<data>``).
        storage: an Optuna RDB URL (default ``sqlite:///OUT/study.db``; ``postgresql://...`` for workers
            on several machines).
        study: the study's name (default ``<model>-<data>``).
        timeout: stop starting trials after this many seconds (a trial under way finishes).
        metric: the validation metric to optimise (default: the configuration's ``monitor``,
            ``val/loss``); its direction comes from the task. Trials keep their best epoch on it.
        config: a YAML configuration file or ``RunConfig`` that the trials start from.
        prune: stop unpromising trials early (Optuna's ``MedianPruner``: after 5 trials, from epoch 2).
        sampler: an Optuna sampler (default: TPE, with the constant liar for parallel workers).
        pruner: an Optuna pruner instead of the median pruner.
        log: where to print one line per trial (None: silent).

    Returns:
        The study's summary (what ``study.json`` holds): ``best`` (``number``, ``value``, ``params``,
        ``run_dir``), ``trials`` (one record per trial), ``counts``, ``importance`` and the paths written.

    Raises:
        ConfigError: Optuna is missing, a bad search space, a key that is not a configuration key, an
            unknown metric, a storage that cannot be opened, or a study started with another search.
        RunError: a worker's trials failed ``3`` times in a row (the last error is quoted).
    """
    optuna = _optuna()
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a number of trials >= 1. Received: {trials!r}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ConfigError(f"--timeout must be a number of seconds > 0. Received: {timeout!r}")
    search = parse_space(space or {})
    base = _base_config(config, data, model, search)
    spec = _spec(base)
    metric = metric or base.monitor
    direction = _direction(spec, metric)
    if "monitor" not in search.fixed and not any(d.key == "monitor" for d in search.dimensions):
        base = base.with_overrides({"monitor": metric})  # each trial keeps its best epoch on the metric
    _check_space(base, search, spec)

    default = f"{base.model}-{data_name(base)}".replace("/", "-")  # ALE/Pong-v5 is one folder
    out = Path(out) if out is not None else Path("runs") / f"tune-{default}"
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    name = study or default
    if pruner is None:
        pruner = (
            optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=PRUNE_WARMUP_EPOCHS)
            if prune
            else optuna.pruners.NopPruner()
        )
    with _optuna_quiet(optuna):
        if sampler is None:
            sampler = optuna.samplers.TPESampler(constant_liar=True)
        handle = _open_study(optuna, storage, name, direction, sampler, pruner)
        _check_same_search(handle, name, storage, _description(base, metric, search))
        objective = _Objective(optuna, base, search, out, metric, direction, name, storage, trials, log)
        optuna.storages.fail_stale_trials(handle)  # trials of workers that died
        if _counted(optuna, handle) < trials:
            handle.optimize(objective, timeout=timeout, catch=(RunError,), callbacks=[objective.after])
        elif log is not None:
            print(f"study {name!r} already has {trials} trials; raise --trials to add more", file=log)
    from glassnet.tune.report import write_study

    summary = write_study(handle, out, metric, direction, storage)
    if objective.failed_in_a_row >= FAILED_IN_A_ROW:
        raise RunError(
            f"{FAILED_IN_A_ROW} trials in a row failed, so this worker stopped; the last: {objective.last_error}"
        )
    return summary


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError(f"glassnet tune needs Optuna: {TUNE_EXTRA}") from exc
    return optuna


@contextlib.contextmanager
def _optuna_quiet(optuna: Any) -> Iterator[None]:
    """Optuna's own log lines (one per trial, with tracebacks of failed trials) and its experimental-feature
    warnings kept off the command line: ``tune`` prints its own line per trial."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _base_config(
    config: str | os.PathLike[str] | RunConfig | None, data: str | None, model: str | None, search: SearchSpace
) -> RunConfig:
    """The configuration every trial starts from: the file (or object), ``data`` and ``model``, the fixed values."""
    searched = {d.key for d in search.dimensions}
    given = {"data": data, "model": model}
    for key, value in given.items():
        if value is not None and (key in search.fixed or key in searched):
            raise ConfigError(f"--{key} {value} and {key}= are both given; give the setting once")
    if config is None and (data is None or model is None):
        raise ConfigError("tune needs --data and --model (or a --config file that names them)")
    base = config if isinstance(config, RunConfig) else load_config(config)
    return base.with_overrides({k: v for k, v in given.items() if v is not None}).with_overrides(search.fixed)


def _spec(config: RunConfig) -> Any:
    """The data's ``DataSpec`` (loading the data once, as every trial will)."""
    from glassnet.train.run import load_run_data

    return getattr(load_run_data(config), "spec", None)


def _direction(spec: Any, metric: str) -> str:
    """``minimize`` or ``maximize`` for a validation metric of the task.

    Raises:
        ConfigError: ``metric`` is not a validation metric of the task.
    """
    from glassnet.train.tasks import get_task

    if not metric.startswith("val/"):
        raise ConfigError(
            f"--metric must name a validation metric such as val/loss or val/accuracy. Received: {metric!r}"
        )
    task = get_task(spec.task if spec is not None else "classify")
    try:
        mode = task.mode(metric)
    except GlassnetError as exc:
        raise ConfigError(f"--metric {metric}: {exc}") from None
    return "minimize" if mode == "min" else "maximize"


def _check_space(base: RunConfig, search: SearchSpace, spec: Any) -> None:
    """Every searched key is a configuration key that takes both ends of its range (or every choice), and
    model hyper-parameters are ones the model knows, before any trial starts.

    Raises:
        ConfigError: quoting the dimension and what is wrong with it.
    """
    from glassnet.models.registry import check_model

    for dimension in search.dimensions:
        for value in dimension.extremes():
            try:
                config = base.with_overrides({dimension.key: value})
                if spec is not None and (dimension.key.startswith("model.") or dimension.key == "model"):
                    check_model(config.model, spec, dict(config.model_args))
            except GlassnetError as exc:
                raise ConfigError(f"search space {dimension.key}={dimension.text}: {exc}") from None


def _description(base: RunConfig, metric: str, search: SearchSpace) -> dict[str, Any]:
    """What a study was started with; a resumed study must match it."""
    described = {"data": base.data, "model": base.model, "metric": metric, **search.describe()}
    return json.loads(json.dumps(described))


def _open_study(optuna: Any, url: str, name: str, direction: str, sampler: Any, pruner: Any) -> Any:
    """The study ``name`` in the RDB storage ``url``, created if missing.

    Raises:
        ConfigError: the storage cannot be opened.
    """
    from glassnet.train.loggers import redact_uri

    try:
        storage = _rdb_storage(optuna, url)
        return optuna.create_study(
            storage=storage,
            study_name=name,
            direction=direction,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
    except Exception as exc:  # the user's URL: a wrong scheme, a missing driver, a server that is down
        first = (str(exc).splitlines()[0] if str(exc) else "").replace(url, redact_uri(url))
        raise ConfigError(
            f"cannot open the study storage {redact_uri(url)!r} ({type(exc).__name__}: {first}); --storage "
            "takes an RDB URL such as sqlite:///study.db or postgresql://user:password@host/database"
        ) from exc


def _rdb_storage(optuna: Any, url: str) -> Any:
    """Optuna's RDB storage at ``url``. Workers that start together race to create its tables: on one
    machine (SQLite) they take turns; on a database server the loser of the race tries again, when the
    tables are there."""
    from sqlalchemy.exc import DBAPIError

    from glassnet.train.loggers import sqlite_setup_lock

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(1, STORAGE_ATTEMPTS + 1):
        try:
            with sqlite_setup_lock(url):
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
                )
        except DBAPIError:
            if attempt == STORAGE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt + random.random() * 0.2)
    raise AssertionError("unreachable")


def _check_same_search(study: Any, name: str, url: str, description: dict[str, Any]) -> None:
    """Record what the study searches, or check that a resumed study searches the same.

    Raises:
        ConfigError: the study was started with other data, model, metric, search or fixed values.
    """
    from glassnet.train.loggers import redact_uri

    stored = study.user_attrs.get("glassnet")
    if stored is None:
        study.set_user_attr("glassnet", description)
        return
    changes = []
    for key in sorted(set(stored) | set(description)):
        before, now = stored.get(key), description.get(key)
        if isinstance(before, dict) and isinstance(now, dict):
            changes += [
                f"{sub}: {before.get(sub)} -> {now.get(sub)}"
                for sub in sorted(set(before) | set(now))
                if before.get(sub) != now.get(sub)
            ]
        elif before != now:
            changes.append(f"{key}: {before} -> {now}")
    if changes:
        raise ConfigError(
            f"study {name!r} in {redact_uri(url)} was started with another search ({'; '.join(changes)}); "
            "repeat its command to resume it, or give a new --study NAME or --out DIR"
        )


def _counted(optuna: Any, study: Any) -> int:
    """Trials that count towards ``--trials``: finished (complete or pruned) or under way."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


class TrialReporter(Callback):
    """Report a validation metric to an Optuna trial after each epoch, and stop training when the trial's
    pruner says so (the run then finishes normally, and ``pruned_at`` holds the epoch).

    Args:
        trial: the Optuna trial.
        metric: the validation metric (``val/accuracy``).
    """

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.values: list[float] = []
        self.pruned_at: int | None = None

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.values, self.pruned_at = [], None

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        if self.metric not in logs:
            logged = ", ".join(k for k in logs if k.startswith("val/")) or "none (is there a validation split?)"
            raise ConfigError(f"--metric {self.metric} is not logged by this training; validation metrics: {logged}")
        value, epoch = float(logs[self.metric]), int(logs["epoch"])
        self.values.append(value)
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            trainer.should_stop = True

    def best(self, direction: str) -> float:
        """The best value reported (NaN when none is finite)."""
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite:
            return math.nan
        return min(finite) if direction == "minimize" else max(finite)


class _Objective:
    """One trial: draw, train the run, report; and what a worker prints and counts after each trial."""

    def __init__(
        self,
        optuna: Any,
        base: RunConfig,
        search: SearchSpace,
        out: Path,
        metric: str,
        direction: str,
        study: str,
        storage: str,
        trials: int,
        log: IO[str] | None,
    ) -> None:
        self.optuna, self.base, self.search, self.out = optuna, base, search, out
        self.metric, self.direction, self.study, self.storage = metric, direction, study, storage
        self.trials, self.log = trials, log
        self.failed_in_a_row, self.last_error = 0, ""

    def __call__(self, trial: Any) -> float:
        from glassnet.pipeline import train
        from glassnet.train.loggers import redact_uri

        run_dir = self.out / f"trial-{trial.number:04d}"
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(
                f"'{run_dir}' already exists: '{self.out}' holds the trials of another study; "
                "give this study its own --out DIR"
            )
        params = {dimension.key: dimension.suggest(trial) for dimension in self.search.dimensions}
        config = self.base.with_overrides(params)
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())  # which worker ran it
        reporter = TrialReporter(trial, self.metric)
        try:
            train(config, out=run_dir, callbacks=[reporter])
        except RunError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        value = reporter.best(self.direction)
        trial.set_user_attr("epochs", len(reporter.values))
        state = "pruned" if reporter.pruned_at is not None else "complete"
        record = {
            "study": self.study,
            "storage": redact_uri(self.storage),
            "trial": trial.number,
            "state": state,
            "metric": self.metric,
            "value": value if state == "complete" else (reporter.values[-1] if reporter.values else None),
            "params": params,
            "epochs": len(reporter.values),
        }
        if reporter.pruned_at is not None:
            record["pruned_at_epoch"] = reporter.pruned_at
            trial.set_user_attr("pruned_at_epoch", reporter.pruned_at)
        RunDir(run_dir).write_result("tune", record)
        if reporter.pruned_at is not None:
            raise self.optuna.TrialPruned(f"pruned at epoch {reporter.pruned_at}")
        return value

    def after(self, study: Any, trial: Any) -> None:
        """After each trial of this worker: print its line, count failures, stop once the study has its trials."""
        state = trial.state.name.lower()
        if state == "fail":
            self.failed_in_a_row += 1
            self.last_error = trial.user_attrs.get("error", "its metric was not a finite number")
        else:
            self.failed_in_a_row = 0
        if self.log is not None:
            print(_trial_line(trial, self.metric), file=self.log, flush=True)
        if self.failed_in_a_row >= FAILED_IN_A_ROW or _counted(self.optuna, study) >= self.trials:
            study.stop()


def _trial_line(trial: Any, metric: str) -> str:
    """``trial 3  complete  val/accuracy 0.9561  lr=0.00123 model.width=64  (4.2 s)  runs/x/trial-0003``."""
    state = trial.state.name.lower()
    params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    seconds = (
        f"({(trial.datetime_complete - trial.datetime_start).total_seconds():.1f} s)"
        if trial.datetime_complete and trial.datetime_start
        else ""
    )
    where = trial.user_attrs.get("run_dir", "")
    if state == "fail":
        return f"trial {trial.number:<3} failed: {trial.user_attrs.get('error', 'no finite metric')}  {params}"
    if state == "pruned":
        last = trial.intermediate_values.get(trial.user_attrs.get("pruned_at_epoch"))
        shown = f"pruned at epoch {trial.user_attrs.get('pruned_at_epoch')}"
        value = f"{metric} {last:.4f}" if last is not None else ""
        return f"trial {trial.number:<3} {shown}  {value}  {params}  {seconds}  {where}"
    return f"trial {trial.number:<3} {metric} {trial.value:.4f}  {params}  {seconds}  {where}"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
