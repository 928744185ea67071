"""MobileNetV2 with torchvision's parameter names, so torchvision's ImageNet weights load without renaming.

The layout of ``features`` and ``classifier`` (and therefore every ``state_dict`` key and shape)
equals torchvision's ``MobileNetV2``; glassnet's own first layer, the ImageNet normalisation of
[0, 1] inputs, lives in a separate ``normalize`` submodule, so a torchvision checkpoint loads into
``features`` and ``classifier`` strictly while glassnet's safetensors round trip covers everything.

Architecture: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (CVPR 2018).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from glassnet.data.locate import cache_dir, data_roots, find_data
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.models.layers import Dropout, Standardize, check_probability
from glassnet.models.registry import register_model
from glassnet.models.serialization import load_tensor_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_FILE = "weights/mobilenet_v2-b0353104.pth"
WEIGHTS_URL = "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"
PRETRAINED = ("none", "imagenet")

# One row per stage: (expansion factor, output channels, repeated blocks, stride of the first block),
# the paper's Table 2. Stem and last convolution widths are the paper's too.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
CHANNEL_MULTIPLE = 8


def round_channels(value: float, multiple: int = CHANNEL_MULTIPLE) -> int:
    """Round a scaled channel count to a multiple of ``multiple`` as MobileNets do.

    The result is never below ``multiple`` and never more than 10% below ``value``, so thin
    networks (``width_mult < 1``) keep hardware-friendly widths without losing much capacity.
    """
    rounded = max(multiple, int(value + multiple / 2) // multiple * multiple)
    return rounded + multiple if rounded < 0.9 * value else rounded


class ConvBNReLU6(nn.Sequential):
    """Convolution, batch norm, ReLU6; its children are named ``0``, ``1``, ``2`` as in torchvision."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(),  # not in-place: attribution hooks need every activation intact
        )


class InvertedResidual(nn.Module):
    """Expand (1x1), filter (depthwise 3x3), project (1x1, linear); a shortcut where shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = round(in_channels * expansion)
        layers: list[nn.Module] = [] if expansion == 1 else [ConvBNReLU6(in_channels, hidden, kernel_size=1)]
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),  # no activation: the bottleneck stays linear (the paper's point)
        ]
        self.conv = nn.Sequential(*layers)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_shortcut else out


class MobileNetV2(nn.Module):
    """``normalize -> features -> global average pool -> classifier``.

    ``features`` and ``classifier`` carry torchvision's parameter names; ``normalize`` is glassnet's
    own first layer (inputs in [0, 1]). Later stages find the last convolution in ``features``
    (Grad-CAM) and the head in ``classifier``, as for the other CNNs.
    """

    def __init__(
        self, in_channels: int, num_classes: int, width_mult: float = 1.0, dropout: float = 0.2, input_size: int = 0
    ) -> None:
        super().__init__()
        self.resize = Resize(input_size) if input_size else nn.Identity()
        self.normalize = imagenet_normalization(in_channels)
        self.features = _features(in_channels, width_mult)
        self.pool = nn.AdaptiveAvgPool2d(1)
        last = self.features[-1][0].out_channels
        # Dropout stays even at p=0 so the linear layer keeps torchvision's name ``classifier.1``.
        self.classifier = nn.Sequential(Dropout(dropout), nn.Linear(last, num_classes))
        self._init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(self.normalize(self.resize(x)))).flatten(1))

    def layer_groups(self) -> list[list[nn.Module]]:
        """Fine-tuning groups, input to head: the blocks up to stride 8, those at stride 16, those at
        stride 32 with the last convolution, and the classifier."""
        blocks = list(self.features)
        return [blocks[:7], blocks[7:14], blocks[14:], [self.classifier]]

    def translate_pretrained(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` with timm's MobileNetV2 names (``conv_stem``, ``blocks.S.I.conv_pw`` ...) renamed to
        torchvision's, which this model carries; any other state is returned as it is."""
        return timm_to_torchvision(state) if "conv_stem.weight" in state else state

    def _init_weights(self) -> None:
        # He initialisation for ReLU-family convolutions; a small normal head starts near uniform predictions.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)


# timm's names inside a block -> torchvision's: the first block is depthwise-separable (no expansion),
# the others are inverted residuals (expand, depthwise, project)
_TIMM_SEPARABLE = {"conv_dw": "conv.0.0", "bn1": "conv.0.1", "conv_pw": "conv.1", "bn2": "conv.2"}
_TIMM_INVERTED = {"conv_pw": "conv.0.0", "bn1": "conv.0.1", "conv_dw": "conv.1.0", "bn2": "conv.1.1",
                  "conv_pwl": "conv.2", "bn3": "conv.3"}  # fmt: skip


def timm_to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A timm MobileNetV2 state dict (``mobilenetv2_100`` and its widths) under torchvision's names.

    timm numbers its blocks by stage (``blocks.S.I``), torchvision in one sequence after the stem
    (``features.K``); the stages' block counts are read from the file, so it decides the depth.
    Keys that are not MobileNetV2's stay as they are (and ``load_pretrained`` then names the first).
    """
    blocks = sorted(
        {(int(parts[1]), int(parts[2])) for parts in (key.split(".") for key in state) if parts[0] == "blocks"}
    )
    position = {block: index + 1 for index, block in enumerate(blocks)}  # features.0 is the stem
    head = len(blocks) + 1
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        parts = key.split(".")
        name = key
        if parts[0] == "blocks" and len(parts) >= 5:
            block = (int(parts[1]), int(parts[2]))
            inner = (_TIMM_SEPARABLE if block == blocks[0] else _TIMM_INVERTED).get(parts[3])
            if inner is not None:
                name = f"features.{position[block]}.{inner}.{'.'.join(parts[4:])}"
        elif parts[0] in ("conv_stem", "bn1", "conv_head", "bn2") and len(parts) == 2:
            index, child = {"conv_stem": (0, 0), "bn1": (0, 1), "conv_head": (head, 0), "bn2": (head, 1)}[parts[0]]
            name = f"features.{index}.{child}.{parts[1]}"
        elif parts[0] == "classifier" and len(parts) == 2:
            name = f"classifier.1.{parts[1]}"
        renamed[name] = tensor
    return renamed


class Resize(nn.Module):
    """Bilinear resizing of ``N x C x H x W`` images to ``size x size`` (no parameters, no state)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (self.size, self.size):
            return x
        return nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def _features(in_channels: int, width_mult: float) -> nn.Sequential:
    """Stem, the inverted-residual stages and the last 1x1 convolution, indexed as in torchvision."""
    channels = round_channels(STEM_CHANNELS * width_mult)
    layers: list[nn.Module] = [ConvBNReLU6(in_channels, channels, stride=2)]
    for expansion, stage_channels, repeats, stride in STAGES:
        out_channels = round_channels(stage_channels * width_mult)
        for index in range(repeats):
            layers.append(InvertedResidual(channels, out_channels, stride if index == 0 else 1, expansion))
            channels = out_channels
    # The last convolution never shrinks below 1280 channels: thin networks keep a wide embedding.
    layers.append(ConvBNReLU6(channels, round_channels(LAST_CHANNELS * max(1.0, width_mult)), kernel_size=1))
    return nn.Sequential(*layers)


def imagenet_normalization(in_channels: int) -> Standardize:
    """ImageNet mean/std normalisation of [0, 1] images with ``in_channels`` channels.

    RGB gets the per-channel ImageNet statistics; any other channel count gets their average on
    every channel (a grey image then matches the RGB statistics as closely as one channel can).
    """
    if in_channels == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean = (sum(IMAGENET_MEAN) / 3,) * in_channels
        std = (sum(IMAGENET_STD) / 3,) * in_channels
    return Standardize(mean, std, (1, in_channels, 1, 1))


@cache
def _class_names() -> tuple[str, ...]:
    text = resources.files("glassnet.models").joinpath("imagenet_classes.json").read_text(encoding="utf-8")
    return tuple(json.loads(text))


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in the index order of the pretrained classifier.

    Returns:
        A new list, e.g. index 281 is ``"tabby"`` and index 967 is ``"espresso"``.
    """
    return list(_class_names())


def imagenet_spec(image_size: int = 224) -> DataSpec:
    """The ``DataSpec`` of ImageNet-1k classification: RGB ``3 x size x size`` images, 1000 named classes.

    Args:
        image_size: height and width of the (centre-cropped) input images.

    Returns:
        A spec with which ``create_model("mobilenet_v2", spec, pretrained="imagenet")`` keeps the
        pretrained classifier.
    """
    names = _class_names()
    return DataSpec("image", (3, image_size, image_size), "classify", len(names), class_names=names, name="imagenet")


def imagenet_weights_path() -> Path:
    """Where the ImageNet checkpoint of MobileNetV2 is: ``$GLASSNET_DATA/weights/...``, then the user cache.

    Raises:
        DataError: the file is in none of those places; the message says where to put it.
    """
    path = find_data(WEIGHTS_FILE)
    if path is None:
        searched = ", ".join(str(root / WEIGHTS_FILE) for root in data_roots())
        raise DataError(
            f"pretrained='imagenet' needs the torchvision checkpoint {Path(WEIGHTS_FILE).name}, which is not in "
            f"any of: {searched}. Download it from {WEIGHTS_URL} and put it at {cache_dir() / WEIGHTS_FILE} "
            f"(or at $GLASSNET_DATA/{WEIGHTS_FILE}), or use pretrained='none'"
        )
    return path


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict read without unpickling arbitrary objects (``weights_only=True``)."""
    state = load_tensor_file(
        path,
        DataError,
        f"cannot read the MobileNetV2 checkpoint '{path}'",
        f"it is not torchvision's file or is corrupt; download {Path(WEIGHTS_FILE).name} again from {WEIGHTS_URL}",
    )
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"'{path}' is not a plain state dict of tensors (torchvision's MobileNetV2 format)")
    return state


def _split_by_submodule(state: dict[str, torch.Tensor], path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """``{"features": {...}, "classifier": {...}}`` with the submodule prefix removed from each key."""
    parts: dict[str, dict[str, torch.Tensor]] = {"features": {}, "classifier": {}}
    for key, tensor in state.items():
        prefix, _, rest = key.partition(".")
        if prefix not in parts:
            raise DataError(f"'{path}' holds {key!r}, which is not a torchvision MobileNetV2 parameter")
        parts[prefix][rest] = tensor
    return parts


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], name: str, path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).strip().splitlines()[:3])
        raise DataError(f"'{path}' does not fit MobileNetV2's {name}: {first}") from exc


def load_imagenet_weights(model: MobileNetV2, keep_classifier: bool) -> None:
    """Load torchvision's ImageNet checkpoint into ``model.features`` (and ``model.classifier``).

    Every torchvision key must match (strict load per submodule); ``model.normalize`` is glassnet's
    own and is left alone. A 1-channel model gets the first convolution summed over RGB, which is
    what that convolution computes on a grey image repeated on the three channels.

    Args:
        model: a width-1.0 MobileNetV2 with 1 or 3 input channels.
        keep_classifier: also load the 1000-class head; otherwise the model's fresh head stays.

    Raises:
        DataError: the checkpoint is missing, unreadable or not torchvision's MobileNetV2.
    """
    path = imagenet_weights_path()
    parts = _split_by_submodule(_read_checkpoint(path), path)
    stem = parts["features"].get("0.0.weight")
    if stem is not None and model.features[0][0].in_channels == 1:
        parts["features"]["0.0.weight"] = stem.sum(dim=1, keepdim=True)
    _load_strict(model.features, parts["features"], "features", path)
    if keep_classifier:
        _load_strict(model.classifier, parts["classifier"], "classifier", path)


def _check_hparams(spec: DataSpec, width_mult: float, dropout: float, pretrained: str, input_size: int) -> None:
    if len(spec.input_shape) != 3:
        raise ConfigError(
            f"mobilenet_v2 needs C x H x W images. Received: input_shape={spec.input_shape}. "
            "For flat feature vectors use mlp"
        )
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise ConfigError(f"width_mult must be a positive number. Received: width_mult={width_mult!r}")
    check_probability("dropout", dropout)
    if isinstance(input_size, bool) or not isinstance(input_size, int) or not (input_size == 0 or input_size >= 16):
        raise ConfigError(
            f"input_size must be 0 (images as they come) or a side of at least 16 pixels that images are resized "
            f"to. Received: input_size={input_size!r}"
        )
    if pretrained not in PRETRAINED:
        raise ConfigError(f"pretrained must be one of {', '.join(PRETRAINED)}. Received: pretrained={pretrained!r}")
    if pretrained == "imagenet" and width_mult != 1.0:
        raise ConfigError(
            f"the ImageNet weights are for width_mult=1.0. Received: width_mult={width_mult!r} with "
            "pretrained='imagenet'; use width_mult=1.0 or pretrained='none'"
        )
    if pretrained == "imagenet" and spec.input_shape[0] not in (1, 3):
        raise ConfigError(
            f"the ImageNet weights take RGB or grey images. Received: {spec.input_shape[0]} channels "
            f"(input_shape={spec.input_shape}) with pretrained='imagenet'; use pretrained='none'"
        )


@register_model(
    "mobilenet_v2",
    modalities=("image",),
    tasks=("classify", "contrastive"),
    description="MobileNetV2 (inverted residuals); torchvision parameter names, optional ImageNet weights",
    # bf16 autocast slows its depthwise convolutions' backward on a CPU: 613 against 329 ms a step of 64
    # 64-pixel images, channels-last, on an AMX Xeon (convolution backward 70% of the bf16 step)
    bf16_cpu=False,
)
def mobilenet_v2(
    spec: DataSpec, width_mult: float = 1.0, dropout: float = 0.2, pretrained: str = "none", input_size: int = 0
) -> nn.Module:
    """MobileNetV2 for ``C x H x W`` images in [0, 1], trained from scratch or from ImageNet weights.

    The network halves the resolution five times; smaller images still run (the feature map stops
    at 1 x 1), but ImageNet features are meant for images of about 224 pixels.

    Args:
        spec: the data the model is built for (an image classification spec).
        width_mult: multiplies every layer's channels (rounded to multiples of 8); 1.0 is the
            published network, 0.5 roughly quarters its cost.
        dropout: dropout probability before the classifier.
        pretrained: ``"none"`` (random initialisation) or ``"imagenet"`` (torchvision's ImageNet-1k
            weights; RGB or grey images, ``width_mult=1.0``). With 1000 classes the ImageNet
            classifier is kept; otherwise a fresh head of ``spec.num_outputs`` classes is trained
            on top of the pretrained backbone (fine-tuning).
        input_size: resize images (bilinear, inside the model) to ``input_size x input_size``
            first; 0 keeps them as they come. ImageNet features need room: on 28-pixel images the
            last stages see 2 x 2 and 1 x 1 maps, so fine-tuning on them wants e.g. 96.

    Raises:
        ConfigError: a hyper-parameter is invalid or does not fit the data.
        DataError: ``pretrained="imagenet"`` and the checkpoint is missing or unreadable.
    """
    _check_hparams(spec, width_mult, dropout, pretrained, input_size)
    model = MobileNetV2(spec.input_shape[0], spec.num_outputs, float(width_mult), dropout, input_size)
    if pretrained == "imagenet":
        load_imagenet_weights(model, keep_classifier=spec.num_outputs == 1000)
    return model
