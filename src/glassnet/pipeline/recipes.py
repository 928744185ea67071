"""Training recipes: named sets of settings chosen for the data and the hardware of a run.

``glassnet train --fast`` (``recipe: fast``) asks for the shortest road to a good model. The recipe
fills in every setting that the run leaves at its default value, and only those: a key the run sets
(``lr=1e-3``, ``precision=fp32``, ``--epochs 3``) is kept as given. What it chose, and why, is saved
in ``config.yaml`` (the resolved values) and in ``results/train.json`` (``training.recipe``).

The ``fast`` recipe keeps what measured faster to the same accuracy and drops what did not
(docs/benchmarks.md, "The fast recipe"):

- classification: label smoothing 0.1, and the best epoch is picked by ``val/accuracy`` (the weights
  a user wants, not an early epoch of an overfitting run that ``val/loss`` prefers) when the
  validation split has 1,000 examples or more (on fewer, epochs tie on accuracy and the first tie
  is kept: on digits that kept epoch 3 of 10, 0.974 against 0.993 test accuracy).
- every run: a larger batch where the training split keeps many optimiser steps per epoch with it
  (kernels are faster per example on larger batches; too few steps cost accuracy).
- images: NHWC memory layout (``channels_last``): 1.33x faster convolutions on a CPU in fp32.
- precision: bf16 autocast where the device has bf16 units (CUDA with bf16, CPUs with AVX-512 BF16
  or AMX), fp32 elsewhere: on a CPU without them bf16 is emulated and several times slower. On a
  CPU, a family registered with ``bf16_cpu=False`` (the recurrent ones and ``mobilenet_v2``: measured
  slower) keeps fp32.

Measured and dropped: random crops, weight decay 5e-2 and batches of 256 (on short budgets they
cost accuracy or time). The recipe leaves the network alone: the model and its hyper-parameters are
the run's (docs/training.md names the ``cnn`` settings that reach 0.94 on Fashion-MNIST in 3 minutes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import IO, Any

import torch

from glassnet.config import RECIPES, RunConfig
from glassnet.data.spec import DataSpec
from glassnet.errors import UnknownNameError
from glassnet.models import ModelInfo, model_info
from glassnet.train.precision import bf16_units
from glassnet.train.trainer import resolve_device

__all__ = ["RECIPES", "RecipeChoices", "apply_recipe", "with_recipe"]

FAST_LABEL_SMOOTHING = 0.1
FAST_MAX_BATCH = 128
# validation examples below which accuracy is too coarse to pick an epoch (ties keep the first)
FAST_MIN_VAL = 1000
# a batch size that keeps at least this many optimiser steps per epoch
FAST_STEPS_PER_EPOCH = 400


@dataclass
class RecipeChoices:
    """What a recipe set: ``settings`` (config key -> value, dotted for nested keys), one reason each, and
    ``notes`` on what it considered and left."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "settings": dict(self.settings),
            "reasons": dict(self.reasons),
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        """One line: ``recipe fast: label_smoothing=0.1, batch_size=128, ...; notes``."""
        parts = [f"{key}={_show(value)}" for key, value in self.settings.items()]
        line = f"recipe {self.name}: " + (", ".join(parts) if parts else "every setting was given; nothing to choose")
        return "; ".join([line, *self.notes])


def apply_recipe(
    config: RunConfig, spec: DataSpec, train_size: int, device: torch.device, val_size: int = 0
) -> tuple[RunConfig, RecipeChoices | None]:
    """``config`` with the settings of ``config.recipe`` wherever it leaves a key at its default.

    Args:
        config: the run configuration (``recipe`` names the recipe; empty: none).
        spec: the data the run trains on.
        train_size: examples in the training split.
        device: the device the run trains on (its precision choice depends on it).
        val_size: examples in the validation split (``val/accuracy`` picks the kept epoch only on
            ``FAST_MIN_VAL`` or more: on fewer, epochs tie on accuracy and the first of them is kept).

    Returns:
        The configuration with the recipe's settings, and what the recipe set (None without a recipe).
    """
    if not config.recipe:
        return config, None
    choices = RecipeChoices(config.recipe)
    if config.env:
        choices.notes.append("it sets nothing for an environment run (the algorithm's own settings apply)")
        return config, choices
    defaults = RunConfig()
    changes: dict[str, Any] = {}

    def choose(key: str, value: Any, reason: str) -> None:
        if getattr(config, key) == getattr(defaults, key) and value != getattr(defaults, key):
            changes[key] = value
            choices.settings[key] = value
            choices.reasons[key] = reason

    classify = spec.task == "classify"
    image = spec.modality == "image" and len(spec.input_shape) == 3
    if classify:
        if val_size >= FAST_MIN_VAL:
            choose("monitor", "val/accuracy", "the kept weights are those of the most accurate epoch")
        elif config.monitor == defaults.monitor:
            choices.notes.append(
                f"monitor stays val/loss: on {val_size} validation examples (< {FAST_MIN_VAL}) epochs tie on accuracy"
            )
        choose("label_smoothing", FAST_LABEL_SMOOTHING, "softer targets generalise better on short schedules")
    batch = _fast_batch(train_size, defaults.batch_size)
    choose(
        "batch_size",
        batch,
        f"the largest power of two <= {FAST_MAX_BATCH} that keeps >= {FAST_STEPS_PER_EPOCH} steps per epoch",
    )
    family = _family(config.model)
    units = bf16_units(device)
    slower_on_cpu = device.type == "cpu" and family is not None and not family.bf16_cpu
    if units and not slower_on_cpu:
        choose("precision", "bf16", f"{_device_name(device)} has bf16 units")
    elif config.precision == defaults.precision:
        why = (
            f"bf16 autocast slows {config.model} on a CPU"
            if units
            else f"{_device_name(device)} has no bf16 units (bf16 would be emulated)"
        )
        choices.notes.append(f"precision stays fp32: {why}")
    if image:
        channels_last_bf16 = family is None or family.channels_last_bf16
        if changes.get("precision", config.precision) == "bf16" and not channels_last_bf16:
            if config.channels_last == defaults.channels_last:
                choices.notes.append(f"channels_last stays false: NHWC is slower for {config.model} in bf16")
        else:
            choose("channels_last", True, "NHWC convolutions are faster with oneDNN and cuDNN")
    return dataclasses.replace(config, **changes), choices


def _family(model: str) -> ModelInfo | None:
    """The registry's entry for ``model`` (None for a name it does not know: refused later, with the
    names there are)."""
    try:
        return model_info(model)
    except UnknownNameError:
        return None


def with_recipe(
    config: RunConfig, bundle: Any, progress: IO[str] | None = None
) -> tuple[RunConfig, RecipeChoices | None]:
    """``apply_recipe`` for a run's loaded data (its splits' sizes, the configured device), printing the
    recipe's line to ``progress``."""
    if not config.recipe:
        return config, None
    config, choices = apply_recipe(
        config, bundle.spec, _size(bundle, "train"), resolve_device(config.device), _size(bundle, "val")
    )
    if choices is not None and progress is not None:
        print(choices.describe(), file=progress)
    return config, choices


def _size(bundle: Any, split: str) -> int:
    """Examples in ``split`` of ``bundle`` (0 where it has none, or none with a length)."""
    try:
        return len(getattr(bundle, split))
    except (AttributeError, TypeError):
        return 0


def _fast_batch(train_size: int, default: int) -> int:
    """The largest power of two <= ``FAST_MAX_BATCH`` and >= ``default`` with enough steps per epoch."""
    batch = default
    while batch * 2 <= FAST_MAX_BATCH and train_size // (batch * 2) >= FAST_STEPS_PER_EPOCH:
        batch *= 2
    return batch


def _device_name(device: torch.device) -> str:
    return "this GPU" if device.type == "cuda" else "this CPU"


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
