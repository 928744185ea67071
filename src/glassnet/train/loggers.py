"""Metric loggers as callbacks: one CSV row, one TensorBoard point, or one MLflow or Weights & Biases
step per metric, per epoch.

All of them write on rank 0 only under ``torchrun`` and follow an exact resume: the epochs logged
after the checkpoint that training resumes from are dropped, as they are trained again. The
experiment trackers (``MLflowLogger``, ``WandbLogger``) also log the run's resolved configuration as
parameters, and MLflow receives the run's files once they are written (``log_run_files``).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from glassnet.errors import ConfigError
from glassnet.provenance import redact_passwords
from glassnet.runs import write_text
from glassnet.train import distributed
from glassnet.train.callbacks import Callback

if TYPE_CHECKING:
    from glassnet.config import RunConfig
    from glassnet.train.trainer import Trainer


def _writes(trainer: Trainer) -> bool:
    return getattr(trainer, "is_global_zero", True)


class CSVLogger(Callback):
    """Write the epoch records (``epoch``, ``step``, ``lr``, ``train/loss``, ``val/...``) to a CSV file.

    One row per epoch, appended and flushed at the end of each epoch. The columns are the union of
    the keys logged so far in order of appearance; when an epoch brings a new key, the file is
    rewritten atomically with the wider header (earlier rows leave the new column empty).

    Args:
        path: the CSV file (parent directories are created).

    Example:
        >>> trainer = Trainer(callbacks=[CSVLogger("runs/x/metrics.csv")])  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.columns, self.rows = [], []
        if _writes(trainer) and not getattr(trainer, "resuming", False):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, "")

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        row = {k: _cell(v) for k, v in logs.items()}
        self.rows.append(row)
        if not _writes(trainer):
            return
        new = [k for k in row if k not in self.columns]
        if new or not self.path.is_file() or self.path.stat().st_size == 0:
            self.columns += new
            self._rewrite()
            return
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns).writerow(row)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": len(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        kept = int(state.get("rows", 0))
        if self.path.is_file():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                self.rows = [dict(r) for r in reader][:kept]
        self.rows = self.rows[:kept]
        self._rewrite()

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buffer.getvalue())


def _cell(value: Any) -> Any:
    """Floats keep full precision; NaN and infinities are written as ``nan``/``inf``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class TensorBoardLogger(Callback):
    """Log every numeric value of the epoch record to TensorBoard (``torch.utils.tensorboard``).

    Each key (``train/loss``, ``val/accuracy``, ``lr`` ...) becomes a scalar series whose x axis is
    the optimiser step; view it with ``tensorboard --logdir LOG_DIR``.

    Args:
        log_dir: directory of the event files (e.g. ``RUN/tensorboard``).

    Raises:
        ConfigError: tensorboard is not installed (``pip install 'glassnet[tensorboard]'``).
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = Path(log_dir)
        self._summary_writer = _summary_writer_class()
        self.writer: Any = None
        self.last_step: int | None = None

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self.close()
        self.last_step = None

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        step = int(logs.get("step", logs.get("epoch", 0)))
        if _writes(trainer):
            if self.writer is None:
                # after a resume, events past the checkpoint's step are replaced, not duplicated
                purge = self.last_step + 1 if self.last_step is not None else None
                self.writer = self._summary_writer(log_dir=str(self.log_dir), purge_step=purge)
            for key, value in logs.items():
                if key not in ("step",) and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, float(value), global_step=step)
            self.writer.flush()
        self.last_step = step

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (``fit`` does this when it ends)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": -1 if self.last_step is None else self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        step = int(state.get("last_step", -1))
        self.last_step = None if step < 0 else step


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            "the TensorBoard logger needs the tensorboard package: pip install 'glassnet[tensorboard]' "
            "(or pip install tensorboard), or use the CSV logger"
        ) from exc
    return SummaryWriter


# --- experiment trackers ---------------------------------------------------------------------------

TRACK_EXTRA = "pip install 'glassnet[track]'"
# configuration keys spelled as on the command line (model.width=64) when they become parameters
_SPELLING = {"model_args": "model", "data_args": "data", "env_args": "env"}
# where to log rather than what was trained (a tracking URI may also hold a password)
_NOT_PARAMS = ("mlflow", "wandb")
_MLFLOW_BATCH = {"params": 100, "metrics": 1000}  # the most one MLflow request takes
_MLFLOW_PARAM_CHARS = 6000


def build_loggers(config: RunConfig, run_dir: str | os.PathLike[str]) -> list[Callback]:
    """The loggers that ``config.loggers`` names, for the run in ``run_dir``.

    ``csv`` writes ``RUN/metrics.csv``, ``tensorboard`` ``RUN/tensorboard/``, ``mlflow`` logs to the
    tracking store of ``config.mlflow`` (experiment: the data's name unless ``mlflow.experiment``),
    ``wandb`` to Weights & Biases with its files in ``RUN/wandb/`` (offline unless ``wandb.mode`` or
    ``WANDB_MODE`` says otherwise). The trackers take the resolved configuration as parameters.

    Raises:
        ConfigError: a logger's package is not installed (the message says how to install it).
    """
    run_dir = Path(run_dir)
    name = run_dir.resolve().name
    made = {
        "csv": lambda: CSVLogger(run_dir / "metrics.csv"),
        "tensorboard": lambda: TensorBoardLogger(run_dir / "tensorboard"),
        "mlflow": lambda: MLflowLogger(
            tracking_uri=config.mlflow.get("tracking_uri"),
            experiment=config.mlflow.get("experiment") or data_name(config),
            run_name=config.mlflow.get("run_name") or name,
            params=config_params(config.to_dict()),
            run_dir=run_dir,
        ),
        "wandb": lambda: WandbLogger(
            project=config.wandb.get("project") or data_name(config),
            entity=config.wandb.get("entity"),
            mode=config.wandb.get("mode"),
            run_name=config.wandb.get("run_name") or name,
            params=config_params(config.to_dict()),
            dir=run_dir,
        ),
    }
    return [made[logger]() for logger in config.loggers]


def track_run_files(callbacks: Iterable[Any], run_dir: str | os.PathLike[str]) -> None:
    """Hand the files of a finished run (model.json, config.yaml, results, figures) to the
    trackers among ``callbacks`` that keep files (``MLflowLogger``); the training pipeline calls this once
    ``results/train.json`` is written."""
    for callback in callbacks:
        if isinstance(callback, MLflowLogger):
            callback.log_run_files(run_dir)


def data_name(config: RunConfig) -> str:
    """What a run learnt from, as a short name: the dataset (``breast-cancer``, a file's stem) or the environment."""
    return config.env or Path(config.data).stem or "glassnet"


def config_params(values: dict[str, Any]) -> dict[str, Any]:
    """A configuration (``RunConfig.to_dict()``) as flat parameters spelled as overrides: ``lr``,
    ``model.width``, ``data.val_fraction``, ``step.name`` ... (the trackers' own options left out)."""
    flat: dict[str, Any] = {}

    def add(key: str, value: Any) -> None:
        if isinstance(value, dict):  # an empty mapping adds nothing (model_args={} is not model={})
            for sub, item in value.items():
                add(f"{key}.{sub}", item)
        else:
            flat[key] = value

    for key, value in values.items():
        if key not in _NOT_PARAMS:
            add(_SPELLING.get(key, key), value)
    return flat


def _import_tracker(module: str, logger: str, product: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"loggers=[{logger}] needs {product}: {TRACK_EXTRA}") from exc


def _metrics(logs: dict[str, Any]) -> dict[str, float]:
    """The numeric values of an epoch record but the epoch itself (the trackers' step)."""
    return {
        key: float(value)
        for key, value in logs.items()
        if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _params_of(trainer: Trainer) -> dict[str, Any]:
    """A tracker's parameters when none were given: the configuration the trainer keeps with its checkpoints."""
    config = getattr(trainer, "checkpoint_meta", {}).get("config")
    return config_params(config) if isinstance(config, dict) else {}


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _MLFLOW_PARAM_CHARS else text[: _MLFLOW_PARAM_CHARS - 3] + "..."


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mlflow_tracking_uri(given: str | None = None) -> str:
    """The tracking store an ``MLflowLogger`` writes to: ``given``, else ``MLFLOW_TRACKING_URI``, else a
    SQLite store ``mlflow.db`` in the working directory (MLflow's own default, so ``mlflow ui`` started
    there shows the runs). A plain directory path means a file store; relative paths are made absolute
    so that a resumed run logs to the same store from any directory."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if "://" not in uri and not uri.startswith("file:"):
        return Path(uri).resolve().as_uri()
    database = _sqlite_file(uri)
    if database is not None and not database.is_absolute():
        query = uri.partition("?")[1:]
        return f"sqlite:///{database.resolve()}{''.join(query)}"
    return uri


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI (None for other stores and in-memory databases)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def sqlite_setup_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on the folder of a ``sqlite:///`` database while a library creates or migrates
    its tables (MLflow's and Optuna's stores break when two processes set one up at the same moment, as
    parallel workers started together do). Other URIs, and systems without ``flock``, take no lock."""
    database = _sqlite_file(uri)
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        fcntl = None  # type: ignore[assignment]
    if database is None or fcntl is None or not database.parent.is_dir():
        yield
        return
    handle = os.open(database.parent, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def redact_uri(uri: str) -> str:
    """``uri`` without the password of its ``user:password@`` part, to quote in messages and files."""
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        credentials, _, host = rest.partition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else uri
    return uri


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's informative logs and deprecation warnings of its dependencies, kept off the command line."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


class _Tracker(Callback):
    """What the experiment-tracker loggers share: the epoch records kept for an exact resume, the
    parameters taken from the trainer, and the tracker's run opened on rank 0 when training starts
    (or, on a resume, at the first epoch, with the kept records logged first)."""

    params: dict[str, Any] | None
    run_id: str | None
    records: list[dict[str, float]]

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        self._reset()
        self.run_id, self.records = None, []
        if self.params is None:
            self.params = _params_of(trainer)
        if _writes(trainer) and not getattr(trainer, "resuming", False):
            self._open()

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        if _writes(trainer):
            self._open()  # first, so that a resumed run's kept history goes in before this epoch
        record = {"epoch": int(logs.get("epoch", len(self.records) + 1)), **_metrics(logs)}
        self.records.append(record)
        if _writes(trainer):
            self._log([record])

    def _reset(self) -> None:
        """Forget the previous fit's tracker run (``on_fit_start``)."""

    def _open(self) -> None:
        """Start (or continue) the tracker's run, once."""
        raise NotImplementedError

    def _log(self, records: Sequence[dict[str, float]]) -> None:
        """Send epoch records to the open run."""
        raise NotImplementedError


class MLflowLogger(_Tracker):
    """Log a training run to MLflow: the configuration as parameters, every numeric value of the epoch
    record as a metric with ``step=epoch``, and the run's files as artifacts once written.

    The tracking store is any that MLflow takes: a SQLite database (``sqlite:///path/mlflow.db``, the
    default in the working directory), a directory (a file store, which MLflow keeps in maintenance
    mode), or a tracking server (``http://host:5000``). For a new experiment in a SQLite store, the
    artifacts go beside the database (``mlartifacts/<experiment>/``).

    A resumed training continues the same MLflow run when nothing was logged past its checkpoint;
    otherwise it starts a new run holding the kept epochs and deletes the old one (MLflow's deletion
    is reversible: ``mlflow gc`` removes it for good), so the history is the uninterrupted run's.

    Args:
        tracking_uri: the tracking store (default: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
        experiment: the experiment's name (created if missing).
        run_name: the MLflow run's name.
        params: the parameters to log (default: the configuration stored with the trainer's checkpoints).
        run_dir: the glassnet run directory, recorded as the tag ``glassnet.run_dir``.

    Raises:
        ConfigError: MLflow is not installed (``pip install 'glassnet[track]'``), or the tracking store
            cannot be opened.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str = "glassnet",
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        _import_tracker("mlflow", "mlflow", "MLflow")
        self.tracking_uri = mlflow_tracking_uri(tracking_uri)
        self.experiment, self.run_name = experiment, run_name
        self.params = dict(params) if params is not None else None
        self.run_dir = Path(run_dir).resolve() if run_dir is not None else None
        self.run_id: str | None = None
        self.records: list[dict[str, float]] = []
        self._resume: dict[str, Any] | None = None
        self._client_handle: Any = None
        if distributed.is_global_zero():
            self._client()  # a store that cannot be opened is found before anything is written

    def _reset(self) -> None:
        self._resume = None

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        if _writes(trainer):
            self._open()
            with _quiet():
                self._client().set_terminated(self.run_id, "FINISHED")

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id or "", "tracking_uri": self.tracking_uri, "records": list(self.records)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = [dict(record) for record in state.get("records", [])]
        self.tracking_uri = state.get("tracking_uri") or self.tracking_uri
        self._client_handle = None
        self._resume = dict(state)

    def log_run_files(self, run_dir: str | os.PathLike[str]) -> None:
        """Log the files of the finished run as artifacts (``config.yaml`` with any password in a URI
        masked, ``model.json``, ``results/``, ``figures/``) and its test figures as ``test/<metric>``."""
        if self.run_id is None:
            return  # not rank 0, or never trained
        from glassnet.runs import RunDir

        run = RunDir(run_dir)
        client = self._client()
        with _quiet():
            if run.config_file.is_file():  # it holds mlflow.tracking_uri, which may carry a password
                config = redact_passwords(run.config_file.read_text(encoding="utf-8"))
                client.log_text(self.run_id, config, run.config_file.name)
            if run.model_json.is_file():
                client.log_artifact(self.run_id, str(run.model_json))
            for folder in (run.results_dir, run.figures_dir):
                if folder.is_dir():
                    client.log_artifacts(self.run_id, str(folder), artifact_path=folder.name)
        train = run.results_dir / "train.json"
        if train.is_file():
            test = json.loads(train.read_text()).get("test", {})
            last = self.records[-1]["epoch"] if self.records else 0
            self._log([{"epoch": last, **_metrics({f"test/{k}": v for k, v in test.items()})}])

    # -- MLflow --------------------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._client_handle is None:
            from mlflow.tracking import MlflowClient

            if self.tracking_uri.startswith("file:"):
                # a file store named on purpose: MLflow 3 refuses new ones unless told otherwise
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            try:
                # the client creates and migrates a new SQLite store's tables: one process at a time
                with _quiet(), sqlite_setup_lock(self.tracking_uri):
                    self._client_handle = MlflowClient(tracking_uri=self.tracking_uri)
            except Exception as exc:  # the user's URI: a wrong scheme, an unwritable path, a server that is down
                shown = redact_uri(self.tracking_uri)
                first = (str(exc).splitlines()[0] if str(exc) else "").replace(self.tracking_uri, shown)
                raise ConfigError(
                    f"cannot open the MLflow tracking store {shown!r} "
                    f"({type(exc).__name__}: {first}); "
                    "check mlflow.tracking_uri or MLFLOW_TRACKING_URI (e.g. sqlite:///mlflow.db)"
                ) from exc
        return self._client_handle

    def _open(self) -> None:
        """Start (or continue) the MLflow run, once."""
        if self.run_id is not None:
            return
        client = self._client()
        resume, self._resume = self._resume, None
        old = (resume or {}).get("run_id") or None
        with _quiet():
            if old is not None and self._continues(client, old):
                return
            self._start(client)
            self._log(self.records)  # the epochs kept from before the checkpoint
            if old is not None:
                self._retire(client, old)

    def _continues(self, client: Any, run_id: str) -> bool:
        """Reopen ``run_id`` if it logged nothing past the checkpoint's epochs."""
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(run_id)
        except MlflowException:
            return False
        if run.info.lifecycle_stage != "active":
            return False
        last = max((int(r["epoch"]) for r in self.records), default=0)
        for key in run.data.metrics:
            if any(m.step > last for m in client.get_metric_history(run_id, key)):
                return False
        client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        return True

    def _retire(self, client: Any, run_id: str) -> None:
        """Delete the run a resume replaced (it holds epochs that were trained again)."""
        from mlflow.exceptions import MlflowException

        try:
            client.set_tag(run_id, "glassnet.replaced_by", self.run_id)
            client.delete_run(run_id)
        except MlflowException:
            pass  # gone already

    def _start(self, client: Any) -> None:
        from mlflow.entities import Param

        from glassnet.version import __version__

        tags = {"glassnet.version": __version__, "mlflow.source.name": "glassnet"}
        if self.run_dir is not None:
            tags["glassnet.run_dir"] = str(self.run_dir)
        run = client.create_run(self._experiment_id(client), run_name=self.run_name, tags=tags)
        self.run_id = run.info.run_id
        params = [Param(key, _param_text(value)) for key, value in (self.params or {}).items()]
        for chunk in _chunks(params, _MLFLOW_BATCH["params"]):
            client.log_batch(self.run_id, params=list(chunk))

    def _experiment_id(self, client: Any) -> str:
        from mlflow.exceptions import MlflowException

        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return client.create_experiment(self.experiment, artifact_location=self._artifact_location())
            except MlflowException:  # another process created it meanwhile
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise ConfigError(
                f"the MLflow experiment {self.experiment!r} is deleted; restore it (mlflow experiments restore "
                f"--experiment-id {found.experiment_id}) or choose another name with mlflow.experiment=NAME"
            )
        return found.experiment_id

    def _artifact_location(self) -> str | None:
        """Beside a SQLite database: ``mlartifacts/<experiment>/`` (MLflow's default is ``./mlruns`` of
        whichever directory the process happens to run in)."""
        database = _sqlite_file(self.tracking_uri)
        if database is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.experiment) or "experiment"
        return str(database.parent / "mlartifacts" / safe)

    def _log(self, records: Sequence[dict[str, float]]) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(key, value, stamp, int(record["epoch"]))
            for record in records
            for key, value in record.items()
            if key != "epoch"
        ]
        client = self._client()
        with _quiet():
            for chunk in _chunks(metrics, _MLFLOW_BATCH["metrics"]):
                client.log_batch(self.run_id, metrics=list(chunk))


class WandbLogger(_Tracker):
    """Log a training run to Weights & Biases: the configuration as the run's config, every numeric value
    of the epoch record with ``step=epoch``.

    Offline by default (``WANDB_MODE`` or ``mode`` may say ``online``): the run's files go to
    ``DIR/wandb/offline-run-*`` and ``wandb sync DIR/wandb/offline-run-*`` uploads them later. A resumed
    training starts a new W&B run holding the kept epochs; offline, the replaced run's files are
    removed, so the history is the uninterrupted run's.

    Args:
        project: the W&B project (characters W&B refuses in a name become ``-``).
        entity: the W&B user or team (default: yours).
        mode: ``offline``, ``online`` or ``disabled`` (default: ``WANDB_MODE``, else ``offline``).
        run_name: the run's display name.
        params: the run's config (default: the configuration stored with the trainer's checkpoints).
        dir: where W&B writes its ``wandb/`` folder (glassnet: the run directory).

    Raises:
        ConfigError: wandb is not installed (``pip install 'glassnet[track]'``).
    """

    def __init__(
        self,
        project: str = "glassnet",
        entity: str | None = None,
        mode: str | None = None,
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
        dir: str | os.PathLike[str] | None = None,
    ) -> None:
        _import_tracker("wandb", "wandb", "Weights & Biases (wandb)")
        self.project = "".join("-" if c in "/\\#?%:" else c for c in project) or "glassnet"
        self.entity, self.run_name = entity, run_name
        self.mode = mode or os.environ.get("WANDB_MODE") or "offline"
        self.params = dict(params) if params is not None else None
        self.dir = Path(dir) if dir is not None else Path.cwd()
        self.run: Any = None
        self.run_id: str | None = None
        self.records: list[dict[str, float]] = []
        self._replaces: str | None = None

    def _reset(self) -> None:
        self.close()
        self._replaces = None

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        if _writes(trainer):
            self._open()
        self.close()

    def close(self) -> None:
        """Finish the W&B run (``fit`` does this when it ends)."""
        if self.run is not None:
            self.run.finish()
            self.run = None

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id or "", "records": list(self.records)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = [dict(record) for record in state.get("records", [])]
        self._replaces = state.get("run_id") or None

    def _open(self) -> None:
        if self.run is not None or self.run_id is not None:
            return
        wandb = _import_tracker("wandb", "wandb", "Weights & Biases (wandb)")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.run_name,
            dir=str(self.dir),
            config=self.params or {},
            mode=self.mode,
            reinit="create_new",  # beside a run the user has open, not instead of it
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )
        self.run_id = self.run.id
        self._log(self.records)  # the epochs kept from before the checkpoint
        if self._replaces is not None:
            for stale in (self.dir / "wandb").glob(f"offline-run-*-{self._replaces}"):
                shutil.rmtree(stale, ignore_errors=True)
            self._replaces = None

    def _log(self, records: Sequence[dict[str, float]]) -> None:
        for record in records:
            self.run.log(_metrics(record), step=record["epoch"])
