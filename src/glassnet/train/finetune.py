"""Transfer learning: pretrained weights into a registry model, then the fine-tuning recipe.

``load_pretrained`` reads a weights file (a safetensors file, a ``torch.save`` state dict read with
``weights_only=True``, or a glassnet run directory) into a freshly built model: every tensor must
fit by name and shape except the head, which stays new when the data has another number of
outputs. A grey model takes an RGB checkpoint's first convolution summed over its colour channels
(what that convolution computes on a grey image repeated three times).

The recipe is the one of ULMFiT and fastai, on the ordinary ``Trainer``:

* **linear probe**: the first ``probe_epochs`` epochs train the head only;
* **gradual unfreezing**: then one more layer group, from the top, every ``unfreeze_every``
  epochs (0: everything at once after the probe);
* **discriminative learning rates**: each group ``lr_decay`` times the lr of the group above it
  (``layer_groups`` orders them input to head), set in the optimiser's parameter groups so the
  schedule scales them together;
* **batch-norm statistics**: ``train`` (layers that train update them, frozen ones keep theirs),
  ``freeze`` (the pretrained statistics are kept throughout) or ``reestimate`` (re-measured on the
  new training data before training, then as ``train``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from glassnet.config import check_finetune
from glassnet.data.encoders import encoder_files
from glassnet.errors import ConfigError, DataError
from glassnet.train.callbacks import Callback

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer

_PREFIXES = ("module.", "_orig_mod.", "model.")  # DDP, torch.compile and Lightning wrappers
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


# ----------------------------------------------------------------------------------------------
# layer groups and discriminative learning rates


def layer_groups(model: nn.Module) -> list[list[nn.Module]]:
    """The model's layers in groups from the input to the head (the last group).

    A model may define ``layer_groups()`` itself (``mobilenet_v2`` groups its stages by
    resolution); otherwise every top-level child with parameters is a group, in the order of
    registration, which is the order of the forward pass in glassnet's families.

    Raises:
        ConfigError: fewer than two groups: nothing to keep frozen while the head learns.
    """
    own = getattr(model, "layer_groups", None)
    if callable(own):
        groups = [list(group) for group in own()]
    else:
        groups = [[child] for child in model.children() if any(True for _ in child.parameters())]
    groups = [group for group in groups if any(p.numel() for m in group for p in m.parameters())]
    if len(groups) < 2:
        raise ConfigError(
            f"{type(model).__name__} has {len(groups)} layer group(s) with parameters; fine-tuning needs a body and "
            "a head. Use finetune.probe_epochs=0 finetune.unfreeze_every=0 finetune.lr_decay=1 to train it whole"
        )
    return groups


def _group_parameters(model: nn.Module) -> list[list[nn.Parameter]]:
    """Parameters per layer group; parameters no group holds join the head's group."""
    groups = [[p for module in group for p in module.parameters()] for group in layer_groups(model)]
    seen = {id(p) for group in groups for p in group}
    groups[-1] += [p for p in model.parameters() if id(p) not in seen]
    unique: list[list[nn.Parameter]] = []
    taken: set[int] = set()
    for group in groups:  # a parameter shared by two groups trains once, in the first
        kept = []
        for param in group:
            if id(param) not in taken:
                taken.add(id(param))
                kept.append(param)
        unique.append(kept)
    return unique


def discriminative_groups(model: nn.Module, lr: float, weight_decay: float, lr_decay: float) -> list[dict[str, Any]]:
    """Optimiser parameter groups: group ``i`` of ``n`` (input first) at ``lr * lr_decay ** (n - 1 - i)``.

    Weight matrices and kernels get ``weight_decay``; biases and norm weights get none, as in
    ``build_optimizer``. Empty groups are left out.
    """
    if not (isinstance(lr_decay, (int, float)) and not isinstance(lr_decay, bool) and 0 < lr_decay <= 1):
        raise ConfigError(f"finetune.lr_decay must be in (0, 1]. Received: finetune.lr_decay={lr_decay!r}")
    groups = _group_parameters(model)
    result: list[dict[str, Any]] = []
    for index, params in enumerate(groups):
        scale = float(lr_decay) ** (len(groups) - 1 - index)
        decay = [p for p in params if p.requires_grad and p.ndim > 1]
        no_decay = [p for p in params if p.requires_grad and p.ndim <= 1]
        result += [
            {"params": chosen, "weight_decay": wd, "lr": lr * scale, "layer_group": index}
            for chosen, wd in ((decay, weight_decay), (no_decay, 0.0))
            if chosen
        ]
    return result


# ----------------------------------------------------------------------------------------------
# the fine-tuning callback


def trainable_groups(epoch: int, groups: int, probe_epochs: int, unfreeze_every: int) -> int:
    """How many groups, counted from the head, train in ``epoch`` (1-based)."""
    if epoch <= probe_epochs:
        return 1
    if unfreeze_every == 0:
        return groups
    return min(groups, 2 + (epoch - probe_epochs - 1) // unfreeze_every)


class FineTune(Callback):
    """Linear probe, then gradual unfreezing from the top, with the chosen batch-norm handling.

    At every epoch start the groups that do not train yet get ``requires_grad=False`` (AdamW and
    SGD skip parameters without gradients, so their weights and optimiser state stay as they are)
    and their batch-norm layers go to eval mode (their statistics stay the pretrained ones). The
    schedule is a function of the epoch, so a resumed run freezes exactly as the interrupted one.

    Args:
        probe_epochs: epochs that train the head only.
        unfreeze_every: epochs between unfreezing one more group; 0: all at once after the probe.
        bn: ``train``, ``freeze`` or ``reestimate`` (see the module docstring).
        data: training examples whose inputs re-estimate the statistics (``bn="reestimate"``).
        bn_batches: batches of ``data`` used for that (0: all of it).
        batch_size: examples per such batch.
    """

    def __init__(
        self,
        probe_epochs: int = 1,
        unfreeze_every: int = 1,
        bn: str = "reestimate",
        data: Any = None,
        bn_batches: int = 50,
        batch_size: int = 64,
    ) -> None:
        check_finetune({"probe_epochs": probe_epochs, "unfreeze_every": unfreeze_every, "bn": bn})
        if bn == "reestimate" and data is None:
            raise ConfigError("finetune.bn=reestimate needs the training data to measure the statistics on")
        self.probe_epochs, self.unfreeze_every, self.bn = probe_epochs, unfreeze_every, bn
        self.data, self.bn_batches, self.batch_size = data, bn_batches, batch_size
        self.history: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: Trainer, model: nn.Module) -> None:
        if getattr(trainer, "world_size", 1) > 1 and (self.probe_epochs or self.unfreeze_every):
            raise ConfigError(
                "gradual unfreezing changes which parameters get gradients, which DistributedDataParallel does not "
                "allow; fine-tune in one process, or use finetune.probe_epochs=0 finetune.unfreeze_every=0"
            )
        self.groups = layer_groups(model)
        self.history = []
        if self.bn == "reestimate" and not trainer.resuming:  # a resumed run restores the statistics it had
            reestimate_batchnorm(model, self.data, trainer.device, self.bn_batches, self.batch_size, trainer.seed)

    def on_epoch_start(self, trainer: Trainer, model: nn.Module) -> None:
        count = trainable_groups(trainer.epoch, len(self.groups), self.probe_epochs, self.unfreeze_every)
        first = len(self.groups) - count
        for index, group in enumerate(self.groups):
            trains = index >= first
            for module in group:
                for param in module.parameters():
                    param.requires_grad_(trains)
                keep_statistics = not trains or (self.bn == "freeze" and index < len(self.groups) - 1)
                if keep_statistics:
                    for norm in module.modules():
                        if isinstance(norm, _NORM_TYPES):
                            norm.eval()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.history.append({"epoch": trainer.epoch, "groups": count, "trainable_parameters": trainable})

    def on_fit_end(self, trainer: Trainer, model: nn.Module) -> None:
        for param in model.parameters():  # the saved model is an ordinary trainable module again
            param.requires_grad_(True)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(entry) for entry in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [dict(entry) for entry in state.get("history", [])]

    def describe(self) -> dict[str, Any]:
        """The recipe and which groups trained in each epoch, for ``results/train.json``."""
        return {
            "probe_epochs": self.probe_epochs,
            "unfreeze_every": self.unfreeze_every,
            "bn": self.bn,
            "layer_groups": len(getattr(self, "groups", [])),
            "schedule": self.history,
        }


@torch.no_grad()
def reestimate_batchnorm(
    model: nn.Module, data: Any, device: torch.device | str, batches: int = 50, batch_size: int = 64, seed: int = 0
) -> int:
    """Re-measure every batch-norm layer's running statistics on ``data``'s inputs.

    The statistics are reset and accumulated as a plain average over ``batches`` seeded batches
    (``momentum=None``), then each layer's momentum is put back. Nothing else changes.

    Returns:
        The number of examples the statistics were measured on (0 when the model has no batch norm).
    """
    norms = [m for m in model.modules() if isinstance(m, _NORM_TYPES) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [norm.momentum for norm in norms]
    was_training = model.training
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=generator)
    if batches:
        order = order[: batches * batch_size]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    seen = 0
    try:
        for start in range(0, len(order), batch_size):
            inputs = _inputs([data[int(i)] for i in order[start : start + batch_size]])
            model(inputs.to(device))
            seen += len(inputs)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.train(was_training)
    return seen


def _inputs(examples: Sequence[Any]) -> torch.Tensor:
    first = examples[0]
    pick = (lambda e: e[0]) if isinstance(first, (tuple, list)) else (lambda e: e)
    return torch.stack([torch.as_tensor(pick(e)) for e in examples])


# ----------------------------------------------------------------------------------------------
# loading pretrained weights


@dataclass
class PretrainedLoad:
    """What ``load_pretrained`` did: file, digest, loaded tensors, and what stayed new."""

    path: str
    sha256: str
    loaded: int
    fresh: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "sha256": self.sha256,
            "loaded_tensors": self.loaded,
            "fresh": self.fresh,
            "adapted": self.adapted,
        }


def resolve_weights(source: str | os.PathLike[str]) -> Path:
    """The weights file behind ``source``: a file, a glassnet run directory's ``model.safetensors``, or a
    pretrained text encoder's weights (``glassnet.data.encoders``: ``minilm`` or a Hugging Face directory).

    Raises:
        DataError: nothing is there.
    """
    encoder = encoder_files(source)  # a pretrained text encoder (pretrained=minilm, a Hugging Face directory)
    if encoder is not None:
        return encoder.weights
    path = Path(source).expanduser()
    if path.is_dir():
        candidate = path / "model.safetensors"
        if not candidate.is_file():
            raise DataError(f"pretrained directory '{path}' holds no model.safetensors (is it a glassnet run?)")
        return candidate
    if not path.is_file():
        raise DataError(
            f"pretrained weights '{path}' not found: give a .safetensors file, a state dict saved with torch.save "
            "(.pt/.pth), a glassnet run directory, or pretrained=imagenet for mobilenet_v2"
        )
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from safetensors or a ``torch.save`` file, without running pickled code.

    A checkpoint that wraps its weights (``{"state_dict": ...}``, ``{"model": ...}``) is unwrapped;
    the prefixes of DDP, ``torch.compile`` and Lightning (``module.``, ``_orig_mod.``, ``model.``)
    are removed.

    Raises:
        DataError: the file is unreadable, holds Python objects, or holds no tensors.
    """
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise DataError(
                f"pretrained weights '{path}' cannot be read as safetensors ({exc}); is the file whole?"
            ) from exc
    else:
        from glassnet.models.serialization import load_tensor_file

        hint = (
            "if you trust the file, convert it once in Python: `sd = torch.load(path, weights_only=False)`, take "
            "its model's state_dict() and write it with safetensors.torch.save_file(sd, 'weights.safetensors')"
        )
        state = load_tensor_file(path, DataError, f"pretrained weights '{path}' cannot be read", hint)
    for key in ("state_dict", "model", "model_state_dict", "weights"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state:
        raise DataError(f"pretrained weights '{path}' hold no state dict of named tensors")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise DataError(f"pretrained weights '{path}' hold no tensors")
    return {_strip_prefix(name, tensors): value for name, value in tensors.items()}


def _strip_prefix(name: str, all_names: Iterable[str]) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix) and all(n.startswith(prefix) for n in all_names):
            return name[len(prefix) :]
    return name


def load_pretrained(model: nn.Module, source: str | os.PathLike[str]) -> PretrainedLoad:
    """Load pretrained weights into ``model`` by name; the head may stay new.

    Rules: every tensor of the file must exist in the model with the same shape, except the head
    (the last layer group), whose tensors are skipped when their shapes differ (another number of
    classes); a model parameter the file lacks is an error unless it is in the head; buffers the
    file lacks (glassnet's own input normalisation, for instance) keep the model's values. A
    ``C_out x 3 x k x k`` kernel goes into a one-channel model summed over its input channels.
    Tensors under a model's ``pretrained_ignore`` prefixes (``bert`` ignores BERT's pooler) are skipped.
    A model with ``translate_pretrained(state)`` renames another library's names first (``mobilenet_v2``
    reads timm's).

    Returns:
        A ``PretrainedLoad`` (file, sha256, loaded count, new head tensors, adapted tensors).

    Raises:
        DataError: the file is missing or unreadable, or a tensor does not fit (the first one is
            named, with both shapes).
    """
    path = resolve_weights(source)
    state = read_state_dict(path)
    translate = getattr(model, "translate_pretrained", None)  # another library's names for the same network
    if translate is not None:
        state = translate(state)
    own = model.state_dict()
    head = {name for module in layer_groups(model)[-1] for name in _names_in(model, module)}
    params = [name for name, _ in model.named_parameters()]
    loaded: dict[str, torch.Tensor] = {}
    fresh, adapted = [], []
    ignore = tuple(getattr(model, "pretrained_ignore", ()))  # checkpoint tensors the model knowingly has no use for
    for name, tensor in state.items():
        if ignore and name.startswith(ignore) and name not in own:
            continue
        if name not in own:
            if name.endswith("num_batches_tracked"):
                continue
            raise DataError(
                f"pretrained weights '{path}' hold {name!r}, which {type(model).__name__} does not have; the first "
                f"of its own tensors is {next(iter(own))!r}: the file is for another architecture"
            )
        target = own[name]
        if tensor.shape == target.shape:
            loaded[name] = tensor.to(target.dtype)
        elif _grey_kernel(tensor, target):
            loaded[name] = tensor.sum(dim=1, keepdim=True).to(target.dtype)
            adapted.append(name)
        elif name in head:
            fresh.append(name)
        else:
            raise DataError(
                f"pretrained weights '{path}' do not fit {type(model).__name__}: {name!r} is "
                f"{tuple(tensor.shape)} in the file and {tuple(target.shape)} in the model (check the model's "
                "hyper-parameters, e.g. width, against the ones the weights were trained with)"
            )
    missing = [name for name in params if name not in state and name not in head]
    if missing:
        raise DataError(
            f"pretrained weights '{path}' lack {missing[0]!r}"
            + (f" and {len(missing) - 1} more parameter(s)" if len(missing) > 1 else "")
            + f" of {type(model).__name__}: the file is for another architecture"
        )
    fresh += sorted(name for name in params if name in head and name not in state)
    model.load_state_dict(loaded, strict=False)
    return PretrainedLoad(str(path), _sha256(path), len(loaded), sorted(set(fresh)), adapted)


def _grey_kernel(tensor: torch.Tensor, target: torch.Tensor) -> bool:
    return (
        tensor.ndim == 4
        and target.ndim == 4
        and tensor.shape[1] == 3
        and target.shape[1] == 1
        and tensor.shape[0] == target.shape[0]
        and tensor.shape[2:] == target.shape[2:]
    )


def _names_in(model: nn.Module, module: nn.Module) -> list[str]:
    for prefix, candidate in model.named_modules():
        if candidate is module:
            return [f"{prefix}.{name}" if prefix else name for name in module.state_dict()]
    return []


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
