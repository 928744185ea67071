"""Run configuration: defaults, YAML files, ``key=value`` overrides and validation.

The resolved configuration is saved as ``config.yaml`` in every run, so the same file (or the same
command line) reproduces the run.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from glassnet.errors import ConfigError, closest

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "plateau", "none")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
LOGGERS = ("csv", "tensorboard", "mlflow", "wandb")
# the options of the experiment trackers (docs/tracking.md)
TRACKER_OPTIONS = {
    "mlflow": ("tracking_uri", "experiment", "run_name"),
    "wandb": ("project", "entity", "mode", "run_name"),
}
BN_MODES = ("train", "freeze", "reestimate")
# named sets of settings chosen for the data and the hardware (glassnet.pipeline.recipes)
RECIPES = ("fast",)
# the fine-tuning recipe of a ``pretrained`` run unless finetune.<key> says otherwise (docs/transfer.md)
FINETUNE_DEFAULTS: dict[str, Any] = {
    "probe_epochs": 1,
    "unfreeze_every": 1,
    "lr_decay": 0.5,
    "bn": "reestimate",
    "bn_batches": 50,
}


@dataclass
class RunConfig:
    """Everything needed to reproduce a training run.

    Attributes:
        data: built-in dataset name (``glassnet datasets``) or a path to user data.
        model: registered model name (``glassnet models``).
        model_args: hyper-parameters passed to the model builder (``model.width=64``).
        data_args: options of the dataset loader, e.g. ``val_fraction`` (``data.val_fraction=0.2``).
        augment: on-the-fly augmentation of training batches, e.g. ``{"hflip": 0.5, "crop": 2}``
            (``augment.hflip=0.5``); empty for none.
        epochs: maximum number of passes over the training split.
        batch_size: examples per optimisation step.
        optimizer: ``adamw`` or ``sgd``.
        lr: peak learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 penalty (SGD).
        momentum: SGD momentum (ignored by AdamW).
        schedule: ``onecycle`` (warm-up then cosine decay), ``cosine`` (optional warm-up, then cosine
            decay), ``plateau`` (lr times ``plateau_factor`` after ``plateau_patience`` epochs without
            improvement of ``monitor``) or ``none``.
        warmup: warm-up of ``onecycle`` and ``cosine``: a number of optimiser steps (integer) or a
            fraction of the run (float in [0, 1)); None: 10% for ``onecycle``, none for ``cosine``.
        plateau_factor: lr multiplier of ``schedule=plateau``, in (0, 1).
        plateau_patience: epochs without improvement before ``schedule=plateau`` lowers the lr.
        accumulate: micro-batches of ``batch_size`` whose gradients add up before each optimiser step.
        clip_grad_norm: rescale gradients to at most this global L2 norm before each step; 0 disables.
        clip_grad_value: clamp each gradient element to [-v, v] before each step; 0 disables.
        ema: decay of an exponential moving average of the weights (e.g. 0.999), used for validation
            and saved as the model's weights; 0 disables.
        precision: ``fp32``, ``bf16`` (autocast; CPU and CUDA) or ``fp16`` (autocast with a gradient
            scaler; CUDA only).
        channels_last: NHWC memory layout for image models (faster convolutions, esp. with bf16).
        compile: ``torch.compile`` the training step (falls back to eager with a warning).
        terminate_on_nan: stop at the first NaN or infinite loss and record where it happened.
        time_limit: stop training after this many seconds (a resumable checkpoint is kept); 0: no limit.
        max_steps: stop training after this many optimiser steps, even mid-epoch; 0: the epochs decide.
        env: a gymnasium environment id (``CartPole-v1``, ``Pendulum-v1``, ``ALE/Pong-v5`` ...) to learn
            from by reinforcement learning instead of ``data`` (``glassnet train --env ID --algo ppo``).
        env_args: environment options: ``max_episode_steps``; Atari's ``frame_stack``, ``screen_size``.
        env_steps: the budget of an environment run in environment steps (``--steps``).
        eval_episodes: seeded episodes of each validation of an environment run (deterministic policy);
            they pick the best weights.
        test_episodes: episodes of the final evaluation, on other seeds than the validation's.
        threads: torch's CPU threads during the run; 0: torch's default, or 1 for an environment run
            (small networks acting on a few observations gain nothing from more threads, and slow
            down badly when other processes share the cores).
        baseline: fit classical baselines (logistic regression, TF-IDF + a linear model, persistence,
            PCA ...) on the same training split and compare the network with the best of them on the
            test split (``results/train.json``: ``baseline``); false skips them.
        pretrained: start from pretrained weights: a ``.safetensors`` file, a ``torch.save`` state
            dict (read with ``weights_only=True``), a glassnet run directory, or ``imagenet`` for
            ``mobilenet_v2``; the head stays new when the data has other classes. The run then
            fine-tunes with the recipe of ``finetune``; empty: trained from scratch.
        finetune: the fine-tuning recipe (docs/transfer.md), by default for a ``pretrained`` run
            ``{probe_epochs: 1, unfreeze_every: 1, lr_decay: 0.5, bn: reestimate, bn_batches: 50}``:
            batch-norm statistics re-measured on the new data, the head alone first, then one more
            layer group from the top per epoch, each group at half the lr of the one above; ``bn``
            is ``reestimate``, ``train`` or ``freeze`` (``finetune.bn=train``).
        recipe: ``fast`` (``glassnet train --fast``): settings chosen for the data and the hardware
            (batch size, label smoothing, memory layout, bf16 where the device has bf16 units, the
            best epoch by ``val/accuracy``) for every key the run leaves at its default; the
            resolved values are saved (docs/training.md, "The fast recipe"); empty: none.
        checkpoint_every: write the resumable state ``checkpoints/last.pt`` every N optimiser steps
            as well as at every epoch end; 0: at epoch ends only.
        save_top_k: keep the weights of the k best epochs on ``monitor`` in ``checkpoints/``
            (and ``checkpoints/best.safetensors``); 0: none.
        early_stopping: stop after this many epochs without improvement of ``monitor``; 0 disables.
        monitor: validation metric that selects the best epoch and drives early stopping.
        seed: drives Python, NumPy and torch (initialisation, shuffling, dropout).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        num_workers: DataLoader workers for data streamed from disk (in-memory data uses none).
        normal_classes: for reconstruction models (``autoencoder``, ``conv_autoencoder``, ``vae``) on
            a classification dataset: the class names (or indices) to train on; the test split keeps
            every class and the run reports how well the reconstruction error detects the others
            (AUROC, threshold, precision, recall). Empty: train on every class (plain reconstruction).
        step: the training step (the learning scheme), by registered name and options, e.g.
            ``{"name": "adversarial", "method": "pgd", "eps": 0.1}`` (``step.name=adversarial
            step.eps=0.1``); empty: the task's own step (``supervised`` for most tasks). The
            ``adversarial.<option>`` keys and ``glassnet train --adversarial METHOD`` are short for the
            ``adversarial`` step (docs/robustness.md); ``distillation`` takes ``step.teacher=RUN``.
        class_weights: loss weights of a classification (``classify``) or multi-label dataset:
            ``balanced`` (rare classes weigh more, counted on the training split) or one number per
            class (per label for multi-label, where they weigh the positive examples); None: equal.
        label_smoothing: share of each target spread over the other classes, in [0, 1); 0 disables.
        loggers: extra per-epoch loggers besides ``metrics.jsonl``: ``csv`` (``metrics.csv``),
            ``tensorboard`` (event files in ``tensorboard/``; needs ``pip install 'glassnet[tensorboard]'``),
            ``mlflow`` and ``wandb`` (experiment trackers, docs/tracking.md; ``pip install 'glassnet[track]'``).
        mlflow: options of the ``mlflow`` logger: ``tracking_uri`` (default ``MLFLOW_TRACKING_URI``, else
            ``sqlite:///mlflow.db`` in the working directory), ``experiment`` (default: the data's name),
            ``run_name`` (default: the run directory's name); e.g. ``mlflow.tracking_uri=sqlite:///mlflow.db``.
        wandb: options of the ``wandb`` logger: ``project`` (default: the data's name), ``entity``, ``mode``
            (default ``WANDB_MODE``, else ``offline``), ``run_name`` (default: the run directory's name).
    """

    data: str = "digits"
    model: str = "cnn"
    model_args: dict[str, Any] = field(default_factory=dict)
    data_args: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-2
    momentum: float = 0.9
    schedule: str = "onecycle"
    early_stopping: int = 0
    monitor: str = "val/loss"
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    normal_classes: list[str | int] = field(default_factory=list)
    step: dict[str, Any] = field(default_factory=dict)
    class_weights: str | list[float] | None = None
    label_smoothing: float = 0.0
    loggers: list[str] = field(default_factory=list)
    mlflow: dict[str, Any] = field(default_factory=dict)
    wandb: dict[str, Any] = field(default_factory=dict)
    warmup: int | float | None = None
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    accumulate: int = 1
    clip_grad_norm: float = 0.0
    clip_grad_value: float = 0.0
    ema: float = 0.0
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    terminate_on_nan: bool = True
    time_limit: float = 0.0
    checkpoint_every: int = 0
    save_top_k: int = 0
    max_steps: int = 0
    env: str = ""
    env_args: dict[str, Any] = field(default_factory=dict)
    env_steps: int = 0
    eval_episodes: int = 10
    test_episodes: int = 100
    threads: int = 0
    baseline: bool = True
    pretrained: str = ""
    finetune: dict[str, Any] = field(default_factory=dict)
    recipe: str = ""
    adversarial: InitVar[dict[str, Any] | None] = None  # older spelling of the adversarial step's options

    def __post_init__(self, adversarial: dict[str, Any] | None = None) -> None:
        if adversarial:
            self.step = _legacy_adversarial({"adversarial": adversarial, "step": self.step}, "adversarial=")["step"]
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` quoting the first bad value and what is allowed."""
        _check_type(self, "data", str)
        _check_type(self, "model", str)
        _check_type(self, "model_args", dict)
        _check_type(self, "data_args", dict)
        _check_type(self, "augment", dict)
        _check_type(self, "step", dict)
        _check_type(self, "env", str)
        _check_type(self, "env_args", dict)
        _check_type(self, "pretrained", str)
        _check_type(self, "recipe", str)
        if self.recipe:
            _check_choice("recipe", self.recipe, RECIPES)
        _check_type(self, "finetune", dict)
        if self.pretrained or self.finetune:
            check_finetune(self.finetune)
        _check_type(self, "threads", int)
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0 (0: the default). Received: threads={self.threads}")
        for name in ("env_steps", "eval_episodes", "test_episodes"):
            _check_type(self, name, int)
        if self.env_steps < 0:
            raise ConfigError(
                f"the budget of an environment run (--steps, env_steps) must be a positive number of environment "
                f"steps. Received: env_steps={self.env_steps}"
            )
        if self.eval_episodes < 1 or self.test_episodes < 1:
            raise ConfigError(
                f"eval_episodes and test_episodes must be >= 1. Received: eval_episodes={self.eval_episodes}, "
                f"test_episodes={self.test_episodes}"
            )
        for name in ("epochs", "batch_size", "early_stopping", "seed", "num_workers"):
            _check_type(self, name, int)
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be an integer in [0, 2**63). Received: seed={self.seed}")
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
                raise ConfigError(f"{item.name} is too large for a 64-bit integer. Received: {item.name}={value}")
        for name in ("lr", "weight_decay", "momentum"):
            _check_type(self, name, float)
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1. Received: epochs={self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1. Received: batch_size={self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a finite number > 0. Received: lr={self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be a finite number >= 0. Received: weight_decay={self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1). Received: momentum={self.momentum}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0. Received: num_workers={self.num_workers}")
        if self.early_stopping < 0:
            raise ConfigError(
                f"early_stopping must be >= 0 (0 disables it). Received: early_stopping={self.early_stopping}"
            )
        _check_normal_classes(self.normal_classes)
        _check_class_weights(self.class_weights)
        if isinstance(self.loggers, str):  # loggers=csv on the command line
            self.loggers = [self.loggers]
        _check_loggers(self.loggers)
        for tracker in TRACKER_OPTIONS:
            _check_type(self, tracker, dict)
            _check_tracker(tracker, getattr(self, tracker))
        _check_type(self, "label_smoothing", float)
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1). Received: label_smoothing={self.label_smoothing}")
        _check_engine(self)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("device", self.device, DEVICES)
        _check_type(self, "monitor", str)
        if not self.monitor.startswith("val/"):
            raise ConfigError(
                f"monitor must name a validation metric such as 'val/loss' or 'val/accuracy'. "
                f"Received: monitor={self.monitor!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "configuration") -> RunConfig:
        """Build a config from a mapping, rejecting unknown keys with a suggestion."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source} must be a mapping of key: value, not {type(values).__name__}")
        values = _legacy_adversarial(bounded_copy(values, source), source)
        known = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in known:
                raise ConfigError(_unknown_key_message(key, known, source))
        return cls(**values)

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> RunConfig:
        """Return a copy with ``key=value`` overrides applied (``model.X``, ``data.X``, ``augment.X`` nest)."""
        if isinstance(overrides, list):
            overrides = parse_overrides(overrides)
        values = self.to_dict()
        values["model_args"] = dict(values["model_args"])
        values["data_args"] = dict(values["data_args"])
        values["augment"] = dict(values["augment"])
        values["step"] = dict(values["step"])
        values["env_args"] = dict(values["env_args"])
        values["finetune"] = dict(values["finetune"])
        values["mlflow"], values["wandb"] = dict(values["mlflow"]), dict(values["wandb"])
        nested = {
            "model": "model_args",
            "data": "data_args",
            "augment": "augment",
            "step": "step",
            "adversarial": "step",
            "env": "env_args",
            "mlflow": "mlflow",
            "wandb": "wandb",
            "finetune": "finetune",
        }
        for key, value in overrides.items():
            prefix, _, sub = key.partition(".")
            if sub and prefix in nested:
                values[nested[prefix]][sub] = value
                if prefix == "adversarial":  # adversarial.X is short for the adversarial step's option X
                    values["step"]["name"] = "adversarial"
            elif sub:
                raise ConfigError(
                    f"unknown configuration key {key!r}: only model.<arg>, data.<arg>, augment.<op>, step.<option> "
                    "and adversarial.<option> take a dot, as do env.<option>, finetune.<option>, mlflow.<option> and "
                    "wandb.<option> "
                    "(e.g. model.width=64, data.val_fraction=0.2, augment.hflip=0.5, adversarial.eps=0.1)"
                )
            elif key == "adversarial":
                values.update(_legacy_adversarial({"adversarial": value, "step": values["step"]}, "override"))
            else:
                values[key] = value
        return RunConfig.from_dict(values, source="override")


def check_finetune(options: dict[str, Any]) -> dict[str, Any]:
    """The fine-tuning recipe's settings: ``FINETUNE_DEFAULTS`` updated with ``options``, each checked.

    Raises:
        ConfigError: an unknown key or a value out of range, quoted.
    """
    unknown = sorted(set(options) - set(FINETUNE_DEFAULTS))
    if unknown:
        message = f"unknown finetune option {unknown[0]!r}; the options are: {', '.join(FINETUNE_DEFAULTS)}"
        raise ConfigError(message)
    settings = {**FINETUNE_DEFAULTS, **options}
    for key in ("probe_epochs", "unfreeze_every", "bn_batches"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"finetune.{key} must be an integer >= 0. Received: finetune.{key}={value!r}")
    value = settings["lr_decay"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"finetune.lr_decay must be in (0, 1]. Received: finetune.lr_decay={value!r}")
    if settings["bn"] not in BN_MODES:
        raise ConfigError(f"finetune.bn must be one of {', '.join(BN_MODES)}. Received: finetune.bn={settings['bn']!r}")
    return settings


def _legacy_adversarial(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Read the older ``adversarial: {method: ..., ...}`` key as the ``adversarial`` step."""
    if "adversarial" not in values:
        return values
    values = dict(values)
    legacy = values.pop("adversarial")
    if not isinstance(legacy, dict):
        raise ConfigError(f"adversarial must be a mapping of options, e.g. {{method: pgd, eps: 0.1}} ({source})")
    if legacy:
        step = values.get("step") or {}
        if step and step.get("name") not in (None, "adversarial"):
            raise ConfigError(
                f"{source} sets both adversarial options and step.name={step.get('name')!r}; a run has one step"
            )
        values["step"] = {**step, "name": "adversarial", **legacy}
    return values


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config file (optional) and apply ``key=value`` overrides.

    Raises:
        ConfigError: the file is missing or not valid YAML, or a key or value is wrong.
    """
    config = RunConfig()
    if path is not None:
        config = RunConfig.from_dict(read_yaml(path), source=f"config file '{path}'")
    return config.with_overrides(overrides or [])


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found")
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(
                f"config file '{path}' is {path.stat().st_size:,} bytes; a configuration is at most "
                f"{MAX_YAML_BYTES:,} bytes (is it the right file?)"
            )
        values = _safe_load(path.read_text(encoding="utf-8"), f"config file '{path}'")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc}") from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of key: value")
    return bounded_copy(values, f"config file '{path}'")


MAX_YAML_BYTES = 1_000_000
MAX_CONFIG_VALUES = 100_000  # values of a configuration once YAML aliases are expanded
MAX_CONFIG_DEPTH = 64  # nesting of lists and mappings; a real configuration uses a handful


@functools.cache
def _loader() -> type:
    """PyYAML's SafeLoader reading numbers as YAML 1.2 does: ``3e-3`` and ``1E5`` are floats (YAML 1.1, which
    PyYAML follows, needs a dot, ``3.0e-3``, and otherwise reads the string ``'3e-3'``)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    number = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", number, list("-+0123456789."))
    return Loader


def _safe_load(text: str, source: str) -> Any:
    """``yaml.safe_load`` with every failure as one ConfigError naming ``source`` (PyYAML recurses
    once per nesting level, so a deeply nested document exhausts Python's stack)."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 (a SafeLoader: plain YAML only)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} {yaml_problem(exc)}") from exc
    except RecursionError as exc:
        raise ConfigError(
            f"{source} nests lists or mappings too deeply to read; a configuration nests at most "
            f"{MAX_CONFIG_DEPTH} levels"
        ) from exc


def yaml_problem(exc: Exception) -> str:
    """One line for a YAML error: where, and what (a Python tag is named as the refusal it is)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    if "constructor for the tag" in problem:
        tag = problem.split("tag", 1)[1].strip(" '\"").replace("tag:yaml.org,2002:", "!!")
        return (
            f"uses the YAML tag {tag}{where}; glassnet reads plain YAML only (mappings, lists, numbers, "
            "strings) and never builds objects from a file: remove the tag"
        )
    return f"is not valid YAML{where}: {' '.join(problem.split())}"


def bounded_copy(value: Any, source: str, limit: int = MAX_CONFIG_VALUES) -> Any:
    """A plain copy of parsed YAML, refused when YAML aliases would expand it past ``limit`` values
    (a "billion laughs" file) or make it refer to itself.

    The size is counted on the graph that the parser built (each shared node once, memoised), so
    the check itself never expands anything.

    Raises:
        ConfigError: the expanded configuration would hold more than ``limit`` values, or loops.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{source} refers to itself through a YAML alias; write the values out")
        if len(active) >= MAX_CONFIG_DEPTH:
            raise ConfigError(f"{source} nests lists or mappings deeper than {MAX_CONFIG_DEPTH} levels")
        active.add(key)
        children = list(node.values()) if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                raise ConfigError(
                    f"{source} expands to more than {limit:,} values through YAML aliases (&anchor / *alias); "
                    "a configuration this large is refused (write the values out, or use fewer aliases)"
                )
        active.discard(key)
        sizes[key] = total
        return total

    size(value)

    def copy(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: copy(v) for k, v in node.items()}
        if isinstance(node, list):
            return [copy(v) for v in node]
        return node

    return copy(value)


def save_config(config: RunConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML (atomically)."""
    import yaml

    from glassnet.runs import write_text

    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``["lr=0.01", "model.width=64"]``; values are read as YAML scalars."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. epochs=10)")
        shown = item if len(item) <= 60 else item[:57] + "..."
        value = _safe_load(raw, f"the value of override {shown!r}") if raw.strip() else ""
        parsed[key] = bounded_copy(value, f"override {key}=")
    return parsed


def _unknown_key_message(key: str, known: list[str], source: str) -> str:
    message = f"unknown configuration key {key!r} in {source}."
    guess = closest(key, known)
    if guess:
        message += f" Did you mean {guess!r}?"
    return message + f" Known keys: {', '.join(known)}"


def _check_type(config: RunConfig, name: str, kind: type) -> None:
    value = getattr(config, name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        setattr(config, name, float(value))
        return
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{name} must be of type {kind.__name__}. Received: {name}={value!r}")


def _check_normal_classes(value: Any) -> None:
    """A list of distinct class names or indices (which ones exist is checked against the data)."""
    items_ok = isinstance(value, list) and all(
        isinstance(item, str) or (isinstance(item, int) and not isinstance(item, bool) and item >= 0) for item in value
    )
    if not items_ok:
        raise ConfigError(
            "normal_classes must be a list of class names or indices >= 0, e.g. normal_classes=[normal]. "
            f"Received: normal_classes={value!r}"
        )
    if len(set(value)) != len(value):
        raise ConfigError(f"normal_classes must not repeat a class. Received: normal_classes={value!r}")


def _check_engine(config: RunConfig) -> None:
    """The training-engine keys: schedules, accumulation, clipping, EMA, precision, checkpoints."""
    for name in ("plateau_patience", "accumulate", "checkpoint_every", "save_top_k", "max_steps"):
        _check_type(config, name, int)
    for name in ("plateau_factor", "clip_grad_norm", "clip_grad_value", "ema", "time_limit"):
        _check_type(config, name, float)
    for name in ("channels_last", "compile", "terminate_on_nan", "baseline"):
        _check_type(config, name, bool)
    warmup = config.warmup
    if warmup is not None and (
        isinstance(warmup, bool)
        or not isinstance(warmup, (int, float))
        or warmup < 0
        or (isinstance(warmup, float) and not warmup < 1)
    ):
        raise ConfigError(
            "warmup must be a number of steps (an integer >= 0) or a fraction of the run in [0, 1), "
            f"e.g. warmup=500 or warmup=0.05. Received: warmup={warmup!r}"
        )
    if not 0 < config.plateau_factor < 1:
        raise ConfigError(f"plateau_factor must be in (0, 1). Received: plateau_factor={config.plateau_factor}")
    for name in ("plateau_patience", "checkpoint_every", "save_top_k", "max_steps"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be >= 0. Received: {name}={getattr(config, name)}")
    if config.accumulate < 1:
        raise ConfigError(f"accumulate must be >= 1 (1: no accumulation). Received: accumulate={config.accumulate}")
    for name in ("clip_grad_norm", "clip_grad_value", "time_limit"):
        value = getattr(config, name)
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be a finite number >= 0 (0 disables it). Received: {name}={value}")
    if config.clip_grad_norm and config.clip_grad_value:
        raise ConfigError(
            "set clip_grad_norm or clip_grad_value, not both. "
            f"Received: clip_grad_norm={config.clip_grad_norm}, clip_grad_value={config.clip_grad_value}"
        )
    if not (config.ema == 0 or 0 < config.ema < 1):
        raise ConfigError(f"ema must be a decay in (0, 1), e.g. 0.999, or 0 to disable it. Received: ema={config.ema}")
    _check_choice("precision", config.precision, PRECISIONS)


def _check_loggers(value: Any) -> None:
    if not isinstance(value, list) or any(item not in LOGGERS for item in value) or len(set(value)) != len(value):
        raise ConfigError(
            f"loggers must be a list of distinct names from {', '.join(LOGGERS)} (e.g. loggers=[csv,tensorboard]). "
            f"Received: loggers={value!r}"
        )


def _check_tracker(name: str, options: dict[str, Any]) -> None:
    """The options of an experiment tracker (``mlflow.tracking_uri=...``): known keys, text values."""
    allowed = TRACKER_OPTIONS[name]
    for key, value in options.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            options[key] = value = str(value)  # mlflow.experiment=2024 names an experiment "2024"
        if key not in allowed:
            hint = closest(str(key), allowed)
            extra = f" Did you mean {name}.{hint}?" if hint else ""
            raise ConfigError(
                f"unknown option {name}.{key}: the {name} logger takes {', '.join(f'{name}.{k}' for k in allowed)}."
                f"{extra}"
            )
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name}.{key} must be a non-empty string. Received: {name}.{key}={value!r}")
    if name == "wandb" and options.get("mode", "offline") not in ("offline", "online", "disabled"):
        raise ConfigError(f"wandb.mode must be offline, online or disabled. Received: wandb.mode={options['mode']!r}")


def _check_class_weights(value: Any) -> None:
    """None, ``balanced`` or a non-empty list of finite numbers >= 0 (its length is checked against the data)."""
    numbers = (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value)
    )
    if value is None or value == "balanced" or numbers:
        return
    raise ConfigError(
        "class_weights must be balanced or a list of numbers >= 0, one per class (e.g. class_weights=[1,5]). "
        f"Received: class_weights={value!r}"
    )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        hint = closest(str(value), allowed)
        extra = f" Did you mean {hint!r}?" if hint else ""
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}. Received: {name}={value!r}.{extra}")
