"""On-the-fly augmentation of training batches, built from the run config's ``augment`` options.

``build_augmentation(spec, {"hflip": 0.5, "crop": 2, "mixup": 0.2})`` returns a ``BatchAugmentation``
module that ``SupervisedStep(augment=...)`` applies to each training batch on its device (never to
validation or test batches). Every random draw comes from torch's global RNG, so the trainer's seed
makes augmented runs reproducible.

Options per modality (a value of 0 switches an operation off):

- image (``N x C x H x W`` in [0, 1]; outputs stay in [0, 1]), with kornia.augmentation:
  ``hflip``/``vflip`` (probability), ``crop`` (zero padding in pixels, then a random crop back to
  the same size), ``rotate`` (maximum degrees), ``erase`` (probability of random erasing),
  ``color`` (brightness/contrast jitter strength in [0, 1]; RGB images also get saturation and
  hue), ``mixup`` and ``cutmix`` (Beta alpha; classification only, targets become per-class
  probabilities).
- sequence (``N x T x C``) and audio spectrograms (``N x 1 x mels x frames``): ``noise``
  (Gaussian noise, std as a fraction of each example's std per channel), ``shift`` (maximum time
  shift as a fraction of the length, zero-filled, not circular), ``time_mask`` (maximum width in
  steps/frames, SpecAugment), ``freq_mask`` (maximum width in mel bands; audio only), ``masks``
  (number of masks of each kind, default 1).
- text and tabular: none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError, closest

# in the order the operations are applied, which is also the order of ``describe()``
IMAGE_OPTIONS = ("crop", "hflip", "vflip", "rotate", "color", "erase", "mixup", "cutmix")
SEQUENCE_OPTIONS = ("shift", "noise", "time_mask", "masks")
AUDIO_OPTIONS = ("shift", "noise", "time_mask", "freq_mask", "masks")
OPTIONS: dict[str, tuple[str, ...]] = {
    "image": IMAGE_OPTIONS,
    "sequence": SEQUENCE_OPTIONS,
    "audio": AUDIO_OPTIONS,
    "text": (),
    "tabular": (),
}
MIXING = ("mixup", "cutmix")
DENSE_TASKS = ("segment", "detect", "instances")  # targets that live in the image's geometry: masks and boxes
DENSE_OPTIONS = ("crop", "hflip", "vflip", "color")  # the image options that move them too (or change no geometry)


@dataclass(frozen=True)
class _Rule:
    """Allowed values of one option: a number (whole or not) in ``[low, high]`` (``low`` excluded if open)."""

    whole: bool
    low: float
    high: float
    allowed: str
    low_open: bool = False

    def accepts(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high and (not self.whole or float(value).is_integer())


_PROBABILITY = _Rule(False, 0.0, 1.0, "a probability in [0, 1]")
_ALPHA = _Rule(False, 0.0, math.inf, "a Beta alpha > 0 (0.2 to 1 is usual)", low_open=True)
_RULES: dict[str, _Rule] = {
    "hflip": _PROBABILITY,
    "vflip": _PROBABILITY,
    "erase": _PROBABILITY,
    "crop": _Rule(True, 0, math.inf, "a whole number of pixels >= 0"),
    "rotate": _Rule(False, 0.0, 180.0, "a number of degrees in [0, 180]"),
    "color": _Rule(False, 0.0, 1.0, "a jitter strength in [0, 1]"),
    "mixup": _ALPHA,
    "cutmix": _ALPHA,
    "noise": _Rule(False, 0.0, math.inf, "a noise std >= 0, as a fraction of each example's std"),
    "shift": _Rule(False, 0.0, 0.99, "a fraction of the length in [0, 0.99]"),
    "time_mask": _Rule(True, 0, math.inf, "a whole number of steps >= 0"),
    "freq_mask": _Rule(True, 0, math.inf, "a whole number of mel bands >= 0"),
    "masks": _Rule(True, 1, math.inf, "a whole number >= 1"),
}


def build_augmentation(spec: DataSpec, options: dict[str, Any] | None) -> BatchAugmentation | None:
    """Build the training-batch augmentation that ``options`` describe for data of ``spec``.

    Args:
        spec: the dataset's spec (modality, input shape and task decide what is allowed).
        options: the run config's ``augment`` mapping, e.g. ``{"hflip": 0.5, "crop": 2}``.

    Returns:
        A ``BatchAugmentation``, or None when ``options`` is None or empty.

    Raises:
        ConfigError: an option is unknown, belongs to another modality, has a bad value, or
            needs class targets that the task does not have.
    """
    if not options:
        return None
    return BatchAugmentation(spec, options)


class BatchAugmentation(nn.Module):
    """Random augmentation of a training batch: ``inputs, targets = aug(inputs, targets)``.

    Images go through the geometric and colour operations first (kornia; crop, flips, rotation,
    colour, erasing), then mixing. When both ``mixup`` and ``cutmix`` are set, each batch gets one
    of them, chosen at random with equal odds. Mixing pairs every example with a random partner of
    the same batch, with its own Beta(alpha, alpha) weight, and returns targets as per-class
    probabilities ``(N, num_classes)`` in proportion to the pixels (cutmix) or the weight (mixup)
    that each example contributes.

    Sequences and spectrograms are shifted, then noised (the zero-filled steps too), then masked.
    Noise and fill values use each example's statistics per channel, taken before any change.
    Masked steps and bands take the example's mean: that is zero after standardisation, which is
    what SpecAugment fills with, whereas zero in natural units can be a loud value of a log-mel
    spectrogram.

    Args:
        spec: the dataset's spec.
        options: option name to value (see the module docstring); zero values switch an op off.

    Raises:
        ConfigError: as for ``build_augmentation``.
    """

    def __init__(self, spec: DataSpec, options: dict[str, Any]) -> None:
        super().__init__()
        self.spec = spec
        self.options = _validate(spec, options)
        dense = spec.task in DENSE_TASKS
        if spec.modality == "image":  # masks and boxes are moved by dense_geometry; only colour goes to kornia
            chosen = {k: v for k, v in self.options.items() if k == "color"} if dense else self.options
            self.image_ops = _image_ops(spec, chosen)
        else:
            self.image_ops = nn.Sequential()
        self.mixers = [name for name in MIXING if name in self.options]

    def describe(self) -> dict[str, Any]:
        """The active operations and their values, JSON-ready (for ``results/train.json``)."""
        return dict(self.options)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment one training batch on its device.

        Args:
            inputs: a batch whose examples have the spec's ``input_shape``, floating point.
            targets: class indices ``(N,)`` (or probabilities ``(N, classes)``) or regression targets.

        Returns:
            The augmented inputs (same shape, dtype and device) and the targets (per-class
            probabilities when mixing was applied, otherwise unchanged).

        Raises:
            DataError: the batch does not match the spec the augmentation was built for.
        """
        if not self.options:
            return inputs, targets
        _check_batch(inputs, self.spec)
        if self.spec.task in DENSE_TASKS:
            inputs, targets = dense_geometry(inputs, targets, self.spec.task, self.options)
        if self.spec.modality == "image":
            return self._images(inputs, targets)
        return self._series(inputs), targets

    def _images(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.image_ops):
            # the ops are convex or clamp already; clamping guards the [0, 1] contract against rounding
            inputs = self.image_ops(inputs).clamp(0.0, 1.0)
        if self.mixers:
            # a CPU draw: choosing between mixers never waits for the device
            name = self.mixers[int(torch.randint(len(self.mixers), ()))]
            soft = _soft_targets(targets, self.spec.num_outputs, inputs.dtype)
            mix = mixup if name == "mixup" else cutmix
            inputs, targets = mix(inputs, soft, self.options[name])
        return inputs, targets

    def _series(self, inputs: torch.Tensor) -> torch.Tensor:
        options = self.options
        # time is axis 1 of N x T x C sequences and the last axis of N x 1 x mels x frames spectrograms
        time_dim, channel_dim = (1, 2) if self.spec.modality == "sequence" else (3, 1)
        reduce = [d for d in range(1, inputs.ndim) if d != channel_dim]
        mean, std = inputs.mean(dim=reduce, keepdim=True), inputs.std(dim=reduce, keepdim=True, correction=0)
        if options.get("shift"):
            inputs = time_shift(inputs, options["shift"], time_dim)
        if options.get("noise"):
            inputs = inputs + torch.randn_like(inputs) * (options["noise"] * std)
        count = options.get("masks", 1)
        if options.get("time_mask"):
            inputs = band_mask(inputs, options["time_mask"], count, time_dim, mean)
        if options.get("freq_mask"):
            inputs = band_mask(inputs, options["freq_mask"], count, 2, mean)
        return inputs


def dense_geometry(
    inputs: torch.Tensor, targets: torch.Tensor, task: str, options: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip and shift images together with their masks (``segment``) or boxes (``detect``).

    ``hflip`` and ``vflip`` mirror each example with their probability; ``crop`` (padding ``P``
    pixels, as kornia's ``RandomCrop``) shifts each example by a random whole number of pixels in
    ``[-P, P]`` on both axes, the uncovered border filled with 0 in the image and marked unlabelled
    (-100) in the mask. A shifted box is clipped to the image and dropped (class -1) when less
    than a pixel of it is left.

    Args:
        inputs: ``N x C x H x W`` images.
        targets: ``N x H x W`` class ids, ``N x 2 x H x W`` class ids and instance ids (``instances``; the
            uncovered border becomes unlabelled in both), or ``N x M x 5`` boxes ``class, x1, y1, x2, y2``
            (shares of the image).
        task: ``segment``, ``instances`` or ``detect``.
        options: the augmentation options (``hflip``, ``vflip``, ``crop``).

    Returns:
        The moved images and targets (new tensors; the inputs are not changed).
    """
    n, _, height, width = inputs.shape
    device = inputs.device
    inputs, targets = inputs.clone(), targets.clone()
    boxes = task == "detect"
    for name, axis in (("hflip", 3), ("vflip", 2)):
        if not options.get(name):
            continue
        chosen = torch.rand(n, device=device) < options[name]
        if not bool(chosen.any()):
            continue
        inputs[chosen] = inputs[chosen].flip(axis)
        if boxes:
            rows = targets[chosen]
            low, high = (1, 3) if axis == 3 else (2, 4)
            valid = rows[..., 0] >= 0
            flipped = torch.stack([1 - rows[..., high], 1 - rows[..., low]], dim=-1)
            rows[..., low] = torch.where(valid, flipped[..., 0], rows[..., low])
            rows[..., high] = torch.where(valid, flipped[..., 1], rows[..., high])
            targets[chosen] = rows
        else:  # the last axes of N x H x W and N x 2 x H x W masks alike
            targets[chosen] = targets[chosen].flip(-1 if axis == 3 else -2)
    pad = int(options.get("crop") or 0)
    if pad:
        shifts = torch.randint(-pad, pad + 1, (n, 2)).tolist()
        for k, (dy, dx) in enumerate(shifts):
            if dy == 0 and dx == 0:
                continue
            inputs[k] = _shifted(inputs[k], dy, dx, 0.0)
            if boxes:
                rows = targets[k]
                valid = rows[:, 0] >= 0
                moved = rows[:, 1:].clone()
                moved[:, [0, 2]] = (moved[:, [0, 2]] + dx / width).clamp(0, 1)
                moved[:, [1, 3]] = (moved[:, [1, 3]] + dy / height).clamp(0, 1)
                kept = valid & ((moved[:, 2] - moved[:, 0]) * width >= 1) & ((moved[:, 3] - moved[:, 1]) * height >= 1)
                rows[:, 1:] = torch.where(valid[:, None], moved, rows[:, 1:])
                rows[:, 0] = torch.where(kept, rows[:, 0], torch.full_like(rows[:, 0], -1))
            else:
                shape = targets[k].shape
                targets[k] = _shifted(targets[k].reshape(-1, height, width), dy, dx, -100).reshape(shape)
    return inputs, targets


def _shifted(image: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """``C x H x W`` moved by ``dy`` rows and ``dx`` columns, the uncovered border set to ``fill``."""
    out = torch.full_like(image, fill)
    height, width = image.shape[-2:]
    out[..., max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        ..., max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def mixup(inputs: torch.Tensor, soft: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend each example with a random partner of the batch (mixup, Zhang et al. 2018).

    kornia's ``RandomMixUpV2`` draws its weight uniformly from a range; the option is the paper's
    (and timm's) Beta(alpha, alpha), so this op is written here.

    Args:
        inputs: ``N x ...`` floating batch.
        soft: per-class probabilities ``(N, classes)``.
        alpha: Beta concentration (> 0); small values keep most examples nearly intact.

    Returns:
        The blended inputs and targets ``lam * own + (1 - lam) * partner``, with one ``lam`` per example.
    """
    n = len(inputs)
    lam = _beta(alpha, n, inputs)
    partner = torch.randperm(n, device=inputs.device)
    weight = lam.view(n, *([1] * (inputs.ndim - 1)))
    mixed = inputs * weight + inputs[partner] * (1 - weight)
    return mixed, soft * lam[:, None] + soft[partner] * (1 - lam[:, None])


def cutmix(images: torch.Tensor, soft: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste a box of a random partner into each image (CutMix, Yun et al. 2019).

    The box covers about ``1 - lam`` of the image, ``lam ~ Beta(alpha, alpha)``, centred uniformly
    and clipped at the borders; the targets use the area actually pasted. Written here rather than
    with kornia's ``RandomCutMixV2`` because the meaning of that op's label weight differs between
    kornia releases (``use_correct_lambda``), and glassnet accepts kornia >= 0.7.

    Args:
        images: ``N x C x H x W`` batch.
        soft: per-class probabilities ``(N, classes)``.
        alpha: Beta concentration (> 0).

    Returns:
        The images and targets ``kept * own + pasted * partner``, with the pasted share per example.
    """
    n, _, height, width = images.shape
    side = (1 - _beta(alpha, n, images)).sqrt()
    rows = _box_mask(n, height, side, images.device)  # (N, H)
    cols = _box_mask(n, width, side, images.device)  # (N, W)
    box = (rows[:, :, None] & cols[:, None, :])[:, None]  # (N, 1, H, W)
    partner = torch.randperm(n, device=images.device)
    mixed = torch.where(box, images[partner], images)
    pasted = box.flatten(1).to(soft.dtype).mean(dim=1, keepdim=True)
    return mixed, soft * (1 - pasted) + soft[partner] * pasted


def time_shift(inputs: torch.Tensor, fraction: float, dim: int) -> torch.Tensor:
    """Shift each example along ``dim`` by a random whole number of steps, filling with zeros.

    Args:
        inputs: ``N x ...`` batch.
        fraction: largest shift as a fraction of the length (either direction).
        dim: the time axis.

    Returns:
        The shifted batch (not circular: what leaves one end is dropped, the other end is zero).
    """
    length = inputs.shape[dim]
    largest = int(fraction * length)
    if largest == 0:
        return inputs
    shifts = torch.randint(-largest, largest + 1, (len(inputs), 1), device=inputs.device)
    source = torch.arange(length, device=inputs.device) - shifts  # (N, L): where each step comes from
    inside = (source >= 0) & (source < length)
    moved = inputs.movedim(dim, -1)
    index = _broadcast(source.clamp(0, length - 1), moved).expand_as(moved)
    shifted = moved.gather(-1, index) * _broadcast(inside, moved)
    return shifted.movedim(-1, dim)


def band_mask(inputs: torch.Tensor, width: int, count: int, dim: int, fill: torch.Tensor) -> torch.Tensor:
    """Mask ``count`` random bands of up to ``width`` positions along ``dim`` in each example (SpecAugment).

    Args:
        inputs: ``N x ...`` batch.
        width: largest band width; each band's width is drawn uniformly from 0 to ``width``.
        count: bands per example (they may overlap).
        dim: the masked axis (time steps or mel bands).
        fill: values of masked positions, broadcastable to ``inputs`` (the example's mean).

    Returns:
        The batch with whole bands (across every other axis) replaced by ``fill``.
    """
    n, length = len(inputs), inputs.shape[dim]
    widths = torch.randint(0, min(width, length) + 1, (n, count, 1), device=inputs.device)
    starts = (torch.rand(n, count, 1, device=inputs.device) * (length - widths + 1)).long()
    positions = torch.arange(length, device=inputs.device)
    masked = ((positions >= starts) & (positions < starts + widths)).any(dim=1)  # (N, L)
    moved = inputs.movedim(dim, -1)
    result = torch.where(_broadcast(masked, moved), fill.movedim(dim, -1), moved)
    return result.movedim(-1, dim)


def _validate(spec: DataSpec, options: Any) -> dict[str, Any]:
    """Check names and values; return the active options (non-zero), in the order they are applied."""
    if not isinstance(options, dict):
        raise ConfigError(f"augment must be a mapping of option to value, e.g. {{hflip: 0.5}}. Received: {options!r}")
    allowed = OPTIONS[spec.modality]
    for name in options:
        _check_name(spec, name, allowed)
    values = {name: _check_value(name, options[name]) for name in options}
    for name in MIXING:
        if name in values and spec.task != "classify":
            raise ConfigError(
                f"augment.{name} mixes class labels, so it needs a classification task; dataset "
                f"{spec.name!r} has task {spec.task!r}. Remove augment.{name}"
            )
    unmoved = sorted(name for name, value in values.items() if value and name not in DENSE_OPTIONS)
    if spec.task in DENSE_TASKS and unmoved:
        what = "boxes" if spec.task == "detect" else "mask"
        raise ConfigError(
            f"augment.{unmoved[0]} would change the image without its {what} ({spec.task}); {spec.task} runs take "
            f"{', '.join(DENSE_OPTIONS)}, which move the {what} with the image (color changes only pixel values)"
        )
    _check_shape(spec, values)
    active = {name: values[name] for name in allowed if name != "masks" and values.get(name)}
    if {"time_mask", "freq_mask"} & set(active):
        active["masks"] = values.get("masks", 1)
    return active


def _check_name(spec: DataSpec, name: Any, allowed: tuple[str, ...]) -> None:
    modality = spec.modality
    if not allowed:
        raise ConfigError(
            f"{modality} data gets no augmentation in glassnet (augment.{name} was given); remove the augment options"
        )
    if name in allowed:
        return
    listing = f"Options for {modality} data: {', '.join(allowed)}"
    owners = [m for m, names in OPTIONS.items() if name in names]
    if owners:
        raise ConfigError(f"augment.{name} is for {' and '.join(owners)} data, not {modality} data. {listing}")
    guess = closest(str(name), allowed)
    hint = f" Did you mean {guess!r}?" if guess else ""
    raise ConfigError(f"unknown augmentation option {name!r}.{hint} {listing}")


def _check_value(name: str, value: Any) -> float | int:
    rule = _RULES[name]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not rule.accepts(value):
        raise ConfigError(f"augment.{name} must be {rule.allowed}. Received: {value!r}")
    return int(value) if rule.whole else float(value)


def _check_shape(spec: DataSpec, values: dict[str, Any]) -> None:
    """Refuse options that cannot fit the spec's input shape (found before training starts)."""
    shape = spec.input_shape
    expected = {"image": 3, "sequence": 2, "audio": 3}.get(spec.modality)
    if expected is not None and len(shape) != expected and values:
        layout = {"image": "C x H x W", "sequence": "T x C", "audio": "1 x mels x frames"}[spec.modality]
        raise ConfigError(f"augmentation of {spec.modality} data needs {layout} inputs. Received: {shape}")
    if values.get("color") and shape[0] not in (1, 3):
        raise ConfigError(f"augment.color needs grey (1) or RGB (3) channels. Received: {shape[0]} channels")
    lengths = {"time_mask": shape[0] if spec.modality == "sequence" else shape[-1]}
    if spec.modality == "audio":
        lengths["freq_mask"] = shape[1]
    for name, length in lengths.items():
        if values.get(name, 0) > length:
            raise ConfigError(f"augment.{name} must be at most the length {length}. Received: {values[name]}")


def _image_ops(spec: DataSpec, options: dict[str, Any]) -> nn.Sequential:
    """kornia operations for the per-example image options, geometric first, erasing last."""
    import kornia.augmentation as K

    channels, height, width = spec.input_shape
    ops: list[nn.Module] = []
    if options.get("crop"):
        ops.append(K.RandomCrop((height, width), padding=options["crop"]))
    if options.get("hflip"):
        ops.append(K.RandomHorizontalFlip(p=options["hflip"]))
    if options.get("vflip"):
        ops.append(K.RandomVerticalFlip(p=options["vflip"]))
    if options.get("rotate"):
        ops.append(K.RandomRotation(degrees=options["rotate"], p=1.0))
    if options.get("color"):
        strength = options["color"]
        # saturation and hue mean nothing for one channel
        rgb = {"saturation": strength, "hue": strength / 4} if channels == 3 else {}
        ops.append(K.ColorJitter(brightness=strength, contrast=strength, p=1.0, **rgb))
    if options.get("erase"):
        ops.append(K.RandomErasing(p=options["erase"], value=0.0))
    return nn.Sequential(*ops)


def _check_batch(inputs: torch.Tensor, spec: DataSpec) -> None:
    if tuple(inputs.shape[1:]) != spec.input_shape or not inputs.is_floating_point():
        raise DataError(
            f"the augmentation was built for {spec.name or 'data'!r} batches of floating N x "
            f"{' x '.join(map(str, spec.input_shape))} inputs. Received: {inputs.dtype} {tuple(inputs.shape)}; "
            "build it from the spec of the data you train on"
        )


def _soft_targets(targets: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Class indices ``(N,)`` as one-hot probabilities; probabilities ``(N, classes)`` as they are."""
    if targets.ndim == 1 and not targets.is_floating_point():
        return torch.nn.functional.one_hot(targets.long(), classes).to(dtype)
    if targets.ndim == 2 and targets.shape[1] == classes and targets.is_floating_point():
        return targets.to(dtype)
    raise DataError(
        f"mixup and cutmix need class indices (N,) or probabilities (N, {classes}) as targets. "
        f"Received: {targets.dtype} {tuple(targets.shape)}"
    )


def _beta(alpha: float, n: int, like: torch.Tensor) -> torch.Tensor:
    """``n`` draws of Beta(alpha, alpha) on ``like``'s device, in its dtype."""
    concentration = torch.tensor(float(alpha), device=like.device)
    draws = torch.distributions.Beta(concentration, concentration).sample((n,))
    return draws.to(like.dtype)


def _box_mask(n: int, length: int, side: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Per example, the positions ``(N, length)`` inside a span of ``side * length`` around a random centre."""
    half = (side * length / 2).round().long()[:, None]
    centre = torch.randint(0, length, (n, 1), device=device)
    positions = torch.arange(length, device=device)
    return (positions >= centre - half) & (positions < centre + half)


def _broadcast(per_position: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View an ``(N, L)`` tensor so it broadcasts against ``like`` (``N x ... x L``)."""
    return per_position.view(per_position.shape[0], *([1] * (like.ndim - 2)), per_position.shape[1])
