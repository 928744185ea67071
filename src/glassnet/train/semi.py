"""Semi-supervised learning: the labelled + unlabelled batch source, the shared step base, the monitor.

- ``SemiSupervisedSource`` gives each training step a labelled batch and ``ratio`` times as many
  unlabelled inputs: ``((inputs, targets), unlabelled_inputs)``. **An epoch is one pass over the
  unlabelled pool** (in a seeded order drawn per epoch); the labelled set, much smaller, is drawn as
  a stream that reshuffles itself each time it runs out (its generator and position are saved in
  checkpoints, so a run resumes exactly). The pool's held-back labels are never given to it.
- ``SemiSupervisedStep`` is the base of the ``pseudo_label``, ``fixmatch`` and ``mean_teacher``
  steps: it checks the data, builds the source from a ``SemiSupervisedBundle`` and ramps up the
  weight of the unlabelled loss.
- ``PseudoLabelMonitor`` (a callback) measures, at every epoch end, how accurate the pseudo-labels
  of the model (or of the step's teacher) are on a seeded sample of the pool, against the held-back
  labels, and how much of the pool is above the confidence threshold (coverage); at the end of
  training it measures both for a range of thresholds. ``glassnet train`` adds it to every run with
  an unlabelled pool (``data.labels_per_class``), the supervised-only baseline included.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.models.outputs import eval_mode
from glassnet.train.callbacks import Callback
from glassnet.train.precision import autocast
from glassnet.train.sources import DataSource, _seed
from glassnet.train.steps.base import Augmentation, Step

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer

SWEEP = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)  # thresholds whose coverage and accuracy end the run


class SemiSupervisedSource(DataSource):
    """Labelled batches with ``ratio`` times as many unlabelled inputs; an epoch is one pass over the pool.

    The trainer's ``batch_size`` is the labelled batch size ``B``; each step also gets ``ratio * B``
    unlabelled inputs. ``len(source)`` counts groups of ``ratio`` unlabelled examples, so the trainer
    plans ``pool / (ratio * B)`` steps per epoch.

    Args:
        labelled: ``(inputs, targets)`` tensors (or a ``TensorDataset``) of the labelled examples.
        unlabelled: the pool's inputs alone.
        ratio: unlabelled examples per labelled example in a step (FixMatch's ``mu``).
    """

    def __init__(
        self, labelled: TensorDataset | tuple[torch.Tensor, torch.Tensor], unlabelled: torch.Tensor, ratio: int = 7
    ):
        tensors = labelled.tensors if isinstance(labelled, TensorDataset) else tuple(labelled)
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise ConfigError(
                f"ratio (unlabelled examples per labelled one) must be a whole number >= 1. Received: {ratio!r}"
            )
        if len(tensors) != 2 or len(tensors[0]) == 0 or len(tensors[0]) != len(tensors[1]):
            raise DataError(
                "a SemiSupervisedSource needs labelled (inputs, targets) with the same, non-zero number of rows"
            )
        if not isinstance(unlabelled, torch.Tensor) or len(unlabelled) < ratio:
            raise DataError(
                f"the unlabelled pool has {len(unlabelled) if isinstance(unlabelled, torch.Tensor) else 0} inputs, "
                f"fewer than ratio={ratio}; lower data.labels_per_class or step.ratio"
            )
        if tuple(unlabelled.shape[1:]) != tuple(tensors[0].shape[1:]):
            raise DataError(
                f"labelled inputs are {tuple(tensors[0].shape[1:])} but unlabelled ones are "
                f"{tuple(unlabelled.shape[1:])}: the pool must hold inputs of the same kind"
            )
        self.inputs, self.targets = tensors
        self.unlabelled, self.ratio = unlabelled, ratio
        self.generator = torch.Generator()
        self.perm: torch.Tensor | None = None
        self.cursor = 0

    @classmethod
    def from_bundle(cls, bundle: DataBundle, ratio: int = 7) -> SemiSupervisedSource:
        """The source of a bundle with an unlabelled pool (``data.labels_per_class=N``).

        Raises:
            ConfigError: the bundle has no unlabelled pool.
        """
        pool = getattr(bundle, "unlabelled", None)
        if pool is None or len(pool) == 0:
            raise ConfigError(
                "semi-supervised steps need an unlabelled pool: keep a few labels per class with "
                "data.labels_per_class=N (gn.load_dataset(name, labels_per_class=N)) and the rest of the "
                "training split becomes the pool"
            )
        inputs, targets = split_tensors(bundle.train)
        return cls((inputs, targets), unlabelled_inputs(pool), ratio)

    def __len__(self) -> int:
        return len(self.unlabelled) // self.ratio

    def bind(self, trainer: Trainer) -> None:
        self.trainer = trainer
        device = trainer.device
        self.inputs, self.targets = self.inputs.to(device), self.targets.to(device)
        self.unlabelled = self.unlabelled.to(device)
        self.generator.manual_seed(_seed(trainer, 4))
        self.perm, self.cursor = None, 0

    def batches(self, order: torch.Tensor, batch_size: int, start: int, stop: int) -> Iterator[Any]:
        # this epoch's order of the pool: drawn from the seed and the epoch, so a resumed epoch repeats it
        shuffle = torch.Generator().manual_seed(self.trainer.seed * 1_000_003 + self.trainer.epoch * 7_919 + 17)
        pool = torch.randperm(len(self.unlabelled), generator=shuffle).to(self.unlabelled.device)
        order = order.to(self.unlabelled.device)
        offsets = torch.arange(self.ratio, device=self.unlabelled.device)
        for b in range(start, stop):
            groups = order[b * batch_size : (b + 1) * batch_size]
            index = pool[(groups[:, None] * self.ratio + offsets).flatten()]
            labelled = self._labelled(len(groups))
            yield (self.inputs[labelled], self.targets[labelled]), self.unlabelled[index]

    def _labelled(self, n: int) -> torch.Tensor:
        """The next ``n`` labelled indices of the stream (reshuffled whenever it runs out)."""
        taken = []
        while n > 0:
            if self.perm is None or self.cursor >= len(self.perm):
                self.perm, self.cursor = torch.randperm(len(self.inputs), generator=self.generator), 0
            chunk = self.perm[self.cursor : self.cursor + n]
            self.cursor += len(chunk)
            n -= len(chunk)
            taken.append(chunk)
        return torch.cat(taken).to(self.inputs.device)

    def count(self, batch: Any) -> int:
        (inputs, _), unlabelled = batch
        return len(inputs) + len(unlabelled)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.generator.set_state(state["generator"])
            self.perm, self.cursor = state["perm"], state["cursor"]


def unlabelled_inputs(pool: Dataset) -> torch.Tensor:
    """The inputs of an unlabelled pool, without its held-back labels."""
    if isinstance(pool, TensorDataset):
        return pool.tensors[0]
    return split_tensors(pool)[0]


def ramp_up(progress: float, length: float) -> float:
    """The sigmoid ramp ``exp(-5 (1 - t)^2)``, ``t = progress / length`` (Laine and Aila, 2017); 1 after it."""
    if length <= 0 or progress >= length:
        return 1.0
    t = max(0.0, progress) / length
    return math.exp(-5.0 * (1.0 - t) ** 2)


class Teacher:
    """An exponential moving average of a model's weights (Mean Teacher; FixMatch's EMA option).

    ``decay`` ramps up as ``(1 + n) / (10 + n)`` over the first updates, as the ``EMA`` callback does.
    The teacher runs in eval mode (its batch-norm statistics are averaged too).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        mine = self.model.state_dict()
        for name, value in _unwrap(model).state_dict().items():
            target = mine[name]
            if target.is_floating_point():
                target.lerp_(value.detach(), 1 - decay)
            else:
                target.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": {k: v.detach().clone() for k, v in self.model.state_dict().items()}, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP and ``torch.compile`` wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a float in ``[low, high]``, else a ``ConfigError`` that quotes it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"step.{name} must be a number in [{low}, {high}]. Received: step.{name}={value!r}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or not math.isfinite(value):
        raise ConfigError(f"step.{name} must be a finite number >= 0. Received: step.{name}={value!r}")
    return float(value)


class SemiSupervisedStep(Step):
    """Base of the steps that learn from labelled batches and an unlabelled pool.

    Subclasses implement ``training_step`` on batches ``((inputs, targets), unlabelled_inputs)`` and
    may override ``labeller`` (the network whose predictions are the pseudo-labels).

    Args:
        spec: the data's spec (a classification task).
        augment: the run's augmentation, applied to labelled batches.
        threshold: confidence above which an unlabelled prediction becomes a pseudo-label.
        ratio: unlabelled inputs per labelled input in a step.
        weight: weight of the unlabelled loss once ramped up.
        ramp: fraction of the training steps over which that weight ramps up (sigmoid; 0: none).
    """

    def __init__(
        self,
        spec: DataSpec | None,
        augment: Augmentation | None,
        threshold: float,
        ratio: int,
        weight: float,
        ramp: float,
    ) -> None:
        super().__init__(augment)
        if spec is not None and spec.task != "classify":
            raise ConfigError(
                "semi-supervised steps learn class pseudo-labels, so they need a classification task. "
                f"Received: task={spec.task!r}"
            )
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise ConfigError(
                "step.ratio (unlabelled inputs per labelled one) must be a whole number >= 1. "
                f"Received: step.ratio={ratio!r}"
            )
        self.spec = spec
        self.threshold = check_fraction("threshold", threshold)
        self.weight, self.ramp, self.ratio = check_positive("weight", weight), check_fraction("ramp", ramp), ratio

    def source(self, data: DataBundle) -> SemiSupervisedSource:
        """The batch source for ``data`` (a bundle with an unlabelled pool)."""
        return SemiSupervisedSource.from_bundle(data, self.ratio)

    def bind(self, trainer: Trainer) -> None:
        if not isinstance(trainer.source, SemiSupervisedSource):
            raise ConfigError(
                f"step {self.name!r} needs labelled and unlabelled batches: fit on its source, "
                "trainer.fit(model, step.source(bundle), val=bundle.val), with a bundle loaded with labels_per_class=N "
                "(glassnet train does this for data.labels_per_class=N)"
            )
        super().bind(trainer)

    def labeller(self, model: nn.Module) -> nn.Module:
        """The network whose confident predictions are the pseudo-labels (the model itself by default)."""
        return model

    def unlabelled_weight(self) -> float:
        """The unlabelled loss's weight at the trainer's current step (after the ramp-up)."""
        trainer = self.trainer
        if trainer is None:
            return self.weight
        return self.weight * ramp_up(trainer.global_step / max(1, trainer.total_steps), self.ramp)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "ratio": self.ratio,
            "weight": self.weight,
            "ramp": self.ramp,
        }

    @staticmethod
    def split(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(inputs, targets, unlabelled)`` of a ``SemiSupervisedSource`` batch."""
        (inputs, targets), unlabelled = batch
        return inputs, targets, unlabelled


def pseudo_labels(logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard pseudo-labels (argmax) and the mask of those whose softmax confidence is >= ``threshold``."""
    confidence, labels = torch.softmax(logits.detach().float(), dim=-1).max(dim=-1)
    return labels, (confidence >= threshold).float()


class PseudoLabelMonitor(Callback):
    """Pseudo-label accuracy and coverage on the unlabelled pool, against its held-back labels.

    Pool examples without a held-back label (a user's unlabelled files, label -1) count towards
    coverage only; accuracy is measured on those that have one (none: no accuracy is logged).

    At each epoch end it adds ``unlabelled/coverage`` (share of the sample whose confidence is at
    least ``threshold``), ``unlabelled/pseudo_accuracy`` (accuracy of those pseudo-labels; absent
    when none is confident) and ``unlabelled/accuracy`` (accuracy of every prediction) to the logs.
    At the end of training it measures coverage and accuracy at the thresholds of ``SWEEP``
    (``sweep``). List it before ``MetricsLogger`` so its figures land in ``metrics.jsonl``.

    The labels it holds are used for measuring only: it never touches a batch or a loss.

    Args:
        pool: the unlabelled pool, ``TensorDataset(inputs, held-back labels)``.
        threshold: the confidence threshold (default: the step's, else 0.95).
        size: examples of the pool measured (a seeded sample; 0: all).
        seed: seed of the sample.
    """

    def __init__(self, pool: TensorDataset, threshold: float | None = None, size: int = 2000, seed: int = 0) -> None:
        inputs, labels = pool.tensors[0], pool.tensors[1]
        if size and len(inputs) > size:
            keep = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))[:size].sort().values
            inputs, labels = inputs[keep], labels[keep]
        self.inputs, self.labels, self.threshold = inputs, labels.long(), threshold
        self.history: list[dict[str, Any]] = []
        self.sweep: list[dict[str, float]] = []

    def _threshold(self, trainer: Trainer) -> float:
        if self.threshold is not None:
            return self.threshold
        return float(getattr(trainer.step, "threshold", 0.95))

    def _confidence(self, trainer: Trainer, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        labeller = getattr(trainer.step, "labeller", None)
        network = labeller(model) if callable(labeller) else model
        chunks = []
        with eval_mode(network), torch.no_grad(), autocast(trainer.precision, trainer.device):
            for start in range(0, len(self.inputs), trainer.eval_batch_size):
                batch = self.inputs[start : start + trainer.eval_batch_size].to(trainer.device)
                chunks.append(torch.softmax(network(batch).float(), dim=-1).cpu())
        confidence, predicted = torch.cat(chunks).max(dim=-1)
        return confidence, predicted

    def measure(self, trainer: Trainer, model: nn.Module, thresholds: tuple[float, ...]) -> list[dict[str, float]]:
        """Coverage and pseudo-label accuracy of the current labeller at each of ``thresholds``."""
        confidence, predicted = self._confidence(trainer, model)
        known = self.labels >= 0  # a user's unlabelled files have no held-back label (-1)
        right = predicted == self.labels
        rows = []
        for threshold in thresholds:
            confident = confidence >= threshold
            measured = confident & known
            rows.append(
                {
                    "threshold": threshold,
                    "coverage": round(int(confident.sum()) / len(right), 6),
                    "pseudo_accuracy": round(float(right[measured].float().mean()), 6) if measured.any() else None,
                    "accuracy": round(float(right[known].float().mean()), 6) if known.any() else None,
                }
            )
        return rows

    def on_epoch_end(self, trainer: Trainer, model: nn.Module, logs: dict[str, Any]) -> None:
        row = self.measure(trainer, model, (self._threshold(trainer),))[0]
        logs["unlabelled/coverage"] = row["coverage"]
        if row["pseudo_accuracy"] is not None:
            logs["unlabelled/pseudo_accuracy"] = row["pseudo_accuracy"]
        if row["accuracy"] is not None:
            logs["unlabelled/accuracy"] = row["accuracy"]
        self.history.append({"epoch": logs.get("epoch"), "step": logs.get("step"), **row})

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        self.sweep = self.measure(trainer, model, SWEEP)

    def summary(self) -> dict[str, Any]:
        """What ``results/train.json`` keeps under ``semi_supervised`` (the pipeline adds the data's counts)."""
        return {
            "measured_on": len(self.labels),
            "with_held_back_labels": int((self.labels >= 0).sum()),
            "history": self.history,
            "threshold_sweep": self.sweep,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))


def semi_supervised_callbacks(bundle: Any, seed: int = 0) -> list[Callback]:
    """``[PseudoLabelMonitor]`` for a bundle with an unlabelled pool, else none (what ``glassnet train`` adds)."""
    pool = getattr(bundle, "unlabelled", None)
    if not isinstance(pool, TensorDataset) or len(pool) == 0:
        return []
    return [PseudoLabelMonitor(pool, seed=seed)]


def semi_supervised_summary(bundle: Any, callbacks: list[Callback], step: Step) -> dict[str, Any] | None:
    """The ``semi_supervised`` block of ``results/train.json``: counts, the step, pseudo-labels over training."""
    monitor = next((c for c in callbacks if isinstance(c, PseudoLabelMonitor)), None)
    if monitor is None:
        return None
    info = bundle.info
    return {
        "labels_per_class": info.get("labels_per_class"),
        "labels_seed": info.get("labels_seed"),
        "labelled": info.get("labelled", len(bundle.train)),
        "unlabelled": info.get("unlabelled", len(bundle.unlabelled)),
        "unlabelled_source": info.get("unlabelled_source"),
        "step": step.name,
        "threshold": float(getattr(step, "threshold", 0.95)),
        "uses_unlabelled": isinstance(step, SemiSupervisedStep),
        **monitor.summary(),
    }


def perturbations(
    spec: DataSpec | None,
    step: str,
    hflip: float = 0.5,
    shift: float = 0.125,
    ops: int = 2,
    cutout: float = 0.5,
    noise: float = 0.1,
    drop: float = 0.2,
) -> tuple[nn.Module, nn.Module]:
    """The weak and strong views for data of ``spec``: image augmentations for images, noise otherwise.

    Raises:
        ConfigError: inputs that cannot be perturbed (token ids of text), or a bad option value.
    """
    from glassnet.data.randaugment import NoiseView, StrongView, WeakView

    modality = spec.modality if spec is not None else "image"
    if modality == "text" or (spec is not None and spec.input_mean is None and modality != "image"):
        raise ConfigError(
            f"step {step!r} perturbs its inputs, and {modality} inputs (token ids) have no meaningful small "
            "perturbation; use step.name=pseudo_label, which needs none"
        )
    if modality == "image" and (spec is None or len(spec.input_shape) == 3):
        return WeakView(hflip=hflip, shift=shift), StrongView(ops=ops, cutout=cutout, hflip=hflip)
    return NoiseView(noise=noise / 4), NoiseView(noise=noise, drop=drop)
