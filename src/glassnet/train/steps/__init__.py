"""Training steps: what one batch does (the loop itself lives in ``Trainer``).

A new learning scheme (semi-supervised, GANs, an RL algorithm) is a new step class registered with
``@register_step``, never a branch in the loop. Built in: ``supervised`` (the default of most
tasks), ``teacher_forcing`` (sequence-to-sequence), ``adversarial``, ``distillation``, ``gan``, ``diffusion``, the
semi-supervised ``pseudo_label``, ``fixmatch`` and ``mean_teacher``, and the self-supervised ``simclr``.
"""

from glassnet.train.steps import adversarial as _adversarial  # noqa: E402,F401,I001  (registers "adversarial")
from glassnet.train.steps import diffusion as _diffusion  # noqa: E402,F401  (registers "diffusion")
from glassnet.train.steps import distillation as _distillation  # noqa: E402,F401  (registers "distillation")
from glassnet.train.steps import gan as _gan  # noqa: E402,F401  (registers "gan")
from glassnet.train.steps import fixmatch as _fixmatch  # noqa: E402,F401  (registers "fixmatch")
from glassnet.train.steps import mean_teacher as _mean_teacher  # noqa: E402,F401  (registers "mean_teacher")
from glassnet.train.steps import pseudo_label as _pseudo_label  # noqa: E402,F401  (registers "pseudo_label")
from glassnet.train.steps import simclr as _simclr  # noqa: E402,F401  (registers "simclr" and the contrastive task)
from glassnet.train.steps.base import Augmentation, Optimization, Step, StepOutput
from glassnet.train.steps.registry import (
    StepInfo,
    list_steps,
    make_step,
    register_step,
    step_from_options,
    step_info,
)
from glassnet.train.steps.supervised import SupervisedStep

__all__ = [
    "Augmentation",
    "Optimization",
    "Step",
    "StepInfo",
    "StepOutput",
    "SupervisedStep",
    "list_steps",
    "make_step",
    "register_step",
    "step_from_options",
    "step_info",
]
