"""``Run``: a trained run directory opened once, so every stage shares one model, one config, one dataset.

``Run(path)`` touches nothing; its model, spec, configuration and data are read on first use and
kept. ``gn.train`` returns the ``Run`` it wrote with the trained model and the training data
already in memory, so the stages that follow (explain, robustness, compress, report) load nothing
again. Every stage, ``evaluate``, ``predict`` and ``report`` take a ``Run`` or a path (a ``Run`` is
path-like).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from glassnet.config import RunConfig, read_yaml
from glassnet.data import DataBundle, DataSpec, list_datasets, load_dataset, split_tensors
from glassnet.errors import ConfigError, DataError, GlassnetError, RunError
from glassnet.generate import augment
from glassnet.models import list_models, load_model, model_info
from glassnet.runs import RunDir
from glassnet.train.reconstruction import reconstruction_bundle
from glassnet.train.tasks import get_task
from glassnet.train.trainer import Predictions, Trainer


class Run(RunDir):
    """A run directory and, read once on first use, its model, spec, configuration and data.

    Args:
        path: the run directory.
        model: the trained model, when the caller already holds it (``gn.train`` passes it), so it
            is not read again.
        spec: its data spec, likewise.
        config: its run configuration, likewise.
        bundle: its data, likewise.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        model: nn.Module | None = None,
        spec: DataSpec | None = None,
        config: RunConfig | None = None,
        bundle: DataBundle | None = None,
    ) -> None:
        super().__init__(path)
        self._model, self._spec, self._config, self._bundle = model, spec, config, bundle
        self._config_read = config is not None
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @classmethod
    def open(cls, run: Run | str | os.PathLike[str]) -> Run:
        """``run`` itself when it is a ``Run``, else the run at that path (which must hold a saved model).

        Raises:
            RunError: the directory is missing or holds no complete run.
        """
        if isinstance(run, Run):
            return run
        opened = cls(run)
        opened.require_model()
        return opened

    @property
    def model(self) -> nn.Module:
        """The trained model (rebuilt from model.json + model.safetensors, no pickle), in eval mode."""
        if self._model is None:
            self._model, self._spec = load_model(self.path)
        return self._model

    @property
    def spec(self) -> DataSpec:
        """The ``DataSpec`` the model was built for."""
        if self._spec is None:
            self._model, self._spec = load_model(self.path)
        return self._spec

    @property
    def config(self) -> RunConfig | None:
        """The resolved training configuration (config.yaml), or None when the run has none.

        Raises:
            ConfigError: config.yaml is not a valid configuration.
        """
        if not self._config_read:
            self._config_read = True
            if self.config_file.is_file():
                self._config = RunConfig.from_dict(read_yaml(self.config_file), source=str(self.config_file))
        return self._config

    def data(self) -> Any:
        """The run's data exactly as it was trained: same dataset, options and splits (cached); for a
        reinforcement-learning run, its environment (``EnvironmentData``).

        Raises:
            RunError: the run has no config.yaml and its spec names no built-in dataset.
            DataError: the dataset no longer fits the model (other inputs, classes or vocabulary).
        """
        if self._bundle is None:
            config = self.config
            if config is None:
                if self.spec.name not in {d.name for d in list_datasets()}:
                    raise RunError(
                        f"'{self.path}' has no config.yaml to say which data it was trained on (its spec names "
                        f"{self.spec.name or 'no dataset'!r}); pass the data explicitly"
                    )
                config = RunConfig(data=self.spec.name, model=model_info_name(self))
            bundle = load_run_data(config)
            if isinstance(bundle, DataBundle):
                check_compatible(self.spec, bundle)
            self._bundle = bundle
        return self._bundle

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of the ``train``, ``val`` or ``test`` split as tensors (cached)."""
        if name not in self._splits:
            self._splits[name] = split_tensors(self.data().split(name))
        return self._splits[name]

    def result(self, stage: str) -> dict[str, Any] | None:
        """``results/<stage>.json`` as a dict, or None when that stage has not run."""
        return self.read_result(stage)

    def predict(self, inputs: torch.Tensor) -> Predictions:
        """Predictions for a batch of inputs in natural units (images in [0, 1]), on the CPU.

        Returns:
            ``Predictions`` carrying the run's spec: ``.labels`` gives each prediction as a class
            name (as ``glassnet predict`` prints it), ``.class_names`` the names in output order.
        """
        return Trainer(task=self.spec.task, device="cpu").predict(self.model, inputs, spec=self.spec)

    def _repr_html_(self) -> str:
        """A notebook's view of the run: model, data, test metrics and the stages that have run."""
        from glassnet.notebook import facts_table

        try:
            rows = self._facts()
        except (GlassnetError, OSError, ValueError) as exc:  # a broken run still shows what is wrong
            return facts_table(f"Run {self.path}", [("problem", str(exc))])
        return facts_table(f"Run {self.path}", rows)

    def _facts(self) -> list[tuple[str, Any]]:
        """The facts ``_repr_html_`` shows, read from the run's files (the weights are not loaded)."""
        if not self.has_model():
            return [("model", "none saved yet")]
        described = read_json(self.model_json) if self._model is None else None
        arch = getattr(self._model, "glassnet_arch", None) or (described or {})
        spec = self._spec or DataSpec.from_dict((described or {})["spec"])
        config = self.config
        train = self.read_result("train") or {}
        test = train.get("test") or {}
        metrics = [f"{k} {test[k]:.4f}" for k in get_task(spec.task).headline_metrics if _is_number(test.get(k))]
        stages = sorted(p.stem for p in self.results_dir.glob("*.json")) if self.results_dir.is_dir() else []
        return [
            ("model", arch.get("name") or "?"),
            ("data", (config.data if config else "") or spec.name or None),
            ("task", spec.task),
            ("classes", ", ".join(spec.class_names) if spec.class_names else None),
            ("test", ", ".join(metrics) or None),
            ("stages done", ", ".join(stages) or "none"),
            ("report", str(self.report) if self.report.is_file() else "not written (gn.report(run))"),
        ]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_json(path: os.PathLike[str]) -> dict[str, Any]:
    """A small JSON file of the run as a dict (``RunError`` when it cannot be read)."""
    import json
    from pathlib import Path

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from exc


def model_info_name(run: Run) -> str:
    """The registered model name of a run (from model.json, through the loaded model)."""
    return getattr(run.model, "glassnet_arch", {}).get("name", "")


def load_run_data(config: RunConfig) -> Any:
    """What a run learns from: its environment (``config.env``) or its dataset (``load_training_data``)."""
    if config.env:
        from glassnet.data.environments import load_environment

        return load_environment(config.env, **config.env_args)
    return load_training_data(config)


def _step_data(config: RunConfig) -> Any:
    """The named step's ``prepare_data(bundle, options)``, when its step turns the data into its own task."""
    name = config.step.get("name") if config.step else None
    if not isinstance(name, str):
        return None
    from glassnet.train.steps import step_info

    return getattr(step_info(name).builder, "prepare_data", None)


def load_training_data(config: RunConfig) -> DataBundle:
    """The dataset that ``config`` names, in the form its model trains on.

    A reconstruction model (registered for ``reconstruct`` only) given a classification dataset gets
    a reconstruction bundle: inputs as targets, trained on ``config.normal_classes`` (every class
    when empty), with the test split's classes kept in ``info["test_labels"]``.

    Raises:
        ConfigError: ``normal_classes`` is set for a model or dataset it does not apply to, names a
            class the dataset lacks, or names every class (leaving nothing to detect).
    """
    reconstructs = bool(config.model) and model_info(config.model).tasks == ("reconstruct",)
    if config.normal_classes and not reconstructs:
        raise ConfigError(
            f"normal_classes={config.normal_classes!r} applies to reconstruction models only "
            f"({', '.join(reconstruction_models())}); model {config.model!r} does not reconstruct. "
            "Choose one of those models or remove normal_classes"
        )
    options = dict(config.data_args)
    generated = augment.split_options(options)  # data.generated=RUN: a generator run's images join training
    model_tasks = model_info(config.model).tasks if config.model else ()
    own = get_task(model_tasks[0]) if len(model_tasks) == 1 else None
    if own is not None and own.data_options:  # a task that makes its own data (synthesize: data.aligner=RUN)
        taken = {k: options.pop(k) for k in own.data_options if k in options}
        return own.prepare_data(load_dataset(config.data, **options), taken)
    bundle = augment.apply_options(load_dataset(config.data, **options), generated, Run.open)
    prepare = _step_data(config)
    if prepare is not None:  # a step that learns another task from the data (simclr: contrastive)
        return prepare(bundle, {k: v for k, v in config.step.items() if k != "name"})
    if bundle.spec.task != "classify":
        if config.normal_classes:
            raise ConfigError(
                f"normal_classes={config.normal_classes!r} needs a classification dataset (its classes say what is "
                f"normal); dataset {bundle.spec.name or config.data!r} is for {bundle.spec.task}"
            )
        return bundle
    if config.model and model_info(config.model).tasks == ("generate",):  # a GAN learns the images and their classes
        from glassnet.generate.data import generation_bundle

        return generation_bundle(bundle)
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


def reconstruction_models() -> list[str]:
    """The registered models that only reconstruct (autoencoders)."""
    return [name for name in list_models() if model_info(name).tasks == ("reconstruct",)]


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
