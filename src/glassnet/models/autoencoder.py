"""Autoencoders (dense, convolutional, denoising, variational) for the ``reconstruct`` task.

Every autoencoder maps inputs in natural units to reconstructions of the same shape in natural
units: the spec's standardisation is the first layer and its inverse the last, so reconstruction
errors, anomaly scores and VAE samples are all in the units the user gave.

Denoising is the ``noise`` hyper-parameter of every family: Gaussian noise of that standard
deviation (in standardised units) is added to the encoder's input in training mode only.

The variational autoencoder needs a KL term in its loss, so it returns a structured output,
``VariationalOutput(reconstruction, kl, decoder_var)`` (``glassnet.models.outputs``): the
reconstruction, the per-example KL divergence from the prior (nats) and its Gaussian decoder's
variance (natural units). The ``reconstruct`` task reads the fields it needs; everything that only
wants the reconstruction takes ``prediction(outputs)``. The last KL is also kept, detached, as
``model.kl``. In eval mode the VAE decodes the posterior mean, so its reconstructions are
deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from glassnet.data.bundle import statistic_axes
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import Standardize, check_positive, input_layer, make_activation
from glassnet.models.outputs import VariationalOutput, eval_mode, model_device, prediction
from glassnet.models.registry import register_model

KINDS = ("dense", "conv")
RECONSTRUCT_MODALITIES = ("image", "tabular", "sequence", "audio")
CONV_MODALITIES = ("image", "sequence", "audio")


class GaussianNoise(nn.Module):
    """Adds ``N(0, std^2)`` noise in training mode only (the corruption of a denoising autoencoder)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.std > 0:
            return x + self.std * torch.randn_like(x)
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


class Unstandardize(Standardize):
    """``x * std + mean``: the inverse of the input layer, so reconstructions are in natural units."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


class SwapTimeChannels(nn.Module):
    """Turns ``N x T x C`` sequences into ``N x C x T`` for ``nn.Conv1d`` (and back: it is its own inverse)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


def restore_layer(spec: DataSpec) -> nn.Module:
    """The inverse of ``input_layer(spec)`` (identity when the spec carries no statistics).

    It owns its own copy of the statistics: safetensors refuses tensors shared between two modules.
    """
    if spec.input_mean is None or spec.input_std is None:
        return nn.Identity()
    axes = statistic_axes(spec.modality, len(spec.input_shape) + 1)
    shape = tuple(1 if axis in axes else size for axis, size in enumerate((1, *spec.input_shape)))
    return Unstandardize(spec.input_mean, spec.input_std, shape)


class Autoencoder(nn.Module):
    """``normalize -> noise -> encoder -> latent code -> decoder -> restore``.

    The attribute names are stable API: ``encode`` gives the latent code, ``decode`` maps a code
    back to inputs in natural units.
    """

    def __init__(
        self, normalize: nn.Module, noise: nn.Module, encoder: nn.Module, decoder: nn.Module, restore: nn.Module
    ) -> None:
        super().__init__()
        self.normalize = normalize
        self.noise = noise
        self.encoder = encoder
        self.decoder = decoder
        self.restore = restore

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent codes (``N x latent``) of inputs in natural units."""
        return self.encoder(self.noise(self.normalize(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Inputs in natural units decoded from latent codes."""
        return self.restore(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class VariationalAutoencoder(Autoencoder):
    """A VAE: the encoder gives a Gaussian posterior ``N(mean, exp(log_var))`` over the latent code.

    Args:
        normalize, noise, decoder, restore: as for ``Autoencoder``.
        encoder: maps standardised inputs to a flat feature vector.
        features: size of that vector.
        latent: latent dimensions (the prior is ``N(0, I)``).
        decoder_var: variance of the Gaussian decoder in natural units (it weighs the KL term).
    """

    def __init__(
        self,
        normalize: nn.Module,
        noise: nn.Module,
        encoder: nn.Module,
        decoder: nn.Module,
        restore: nn.Module,
        features: int,
        latent: int,
        decoder_var: float,
    ) -> None:
        super().__init__(normalize, noise, encoder, decoder, restore)
        self.mean = nn.Linear(features, latent)
        self.log_var = nn.Linear(features, latent)
        self.latent = latent
        self.decoder_var = float(decoder_var)
        self.kl: torch.Tensor | None = None

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_var)`` of the posterior over latent codes for inputs in natural units."""
        h = self.encoder(self.noise(self.normalize(x)))
        # the clamp keeps exp(log_var) finite early in training, when the head's output is arbitrary
        return self.mean(h), self.log_var(h).clamp(-12.0, 12.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: the VAE's deterministic latent code."""
        return self.posterior(x)[0]

    def forward(self, x: torch.Tensor) -> VariationalOutput:
        mean, log_var = self.posterior(x)
        z = mean
        if self.training:  # reparameterisation: the sample stays differentiable in mean and log_var
            z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(dim=1)
        self.kl = kl.detach()
        reconstruction = self.decode(z)
        decoder_var = torch.tensor(self.decoder_var, dtype=reconstruction.dtype, device=reconstruction.device)
        return VariationalOutput(reconstruction, kl, decoder_var)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` codes drawn from the prior: new inputs in natural units (eval mode, no grad).

        Args:
            n: number of samples.
            generator: optional CPU generator, for reproducible samples.
        """
        check_positive("n", n)
        z = torch.randn(n, self.latent, generator=generator).to(model_device(self))
        with eval_mode(self):
            return self.decode(z)


def anomaly_scores(model: nn.Module, inputs: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Per-example reconstruction error (mean squared error over each example's values).

    The model runs in eval mode without gradients (its mode is restored afterwards); a VAE then
    reconstructs from its posterior mean, so scores are deterministic.

    Args:
        model: an autoencoder (any module whose outputs have the shape of its inputs).
        inputs: ``N x ...`` inputs in natural units.
        batch_size: examples per forward pass.

    Returns:
        A float tensor of ``N`` scores on the CPU; larger means less like the training data.
    """
    check_positive("batch_size", batch_size)
    device = model_device(model)
    scores = []
    with eval_mode(model), torch.inference_mode():
        for begin in range(0, len(inputs), batch_size):
            batch = inputs[begin : begin + batch_size].to(device)
            error = (prediction(model(batch)).float() - batch.float()).pow(2)
            scores.append(error.reshape(len(batch), -1).mean(dim=1).cpu())
    return torch.cat(scores) if scores else torch.zeros(0)


def _check_common(latent: int, noise: float) -> None:
    check_positive("latent", latent)
    if not isinstance(noise, (int, float)) or isinstance(noise, bool) or not 0 <= noise < math.inf:
        raise ConfigError(f"noise must be a finite number >= 0 (std in standardised units). Received: noise={noise!r}")


def _check_sizes(name: str, values: list[int], allow_empty: bool) -> None:
    if not values and not allow_empty:
        raise ConfigError(f"{name} must list at least one layer. Received: {name}=[]")
    for value in values:
        check_positive(name, value)


def dense_parts(spec: DataSpec, widths: list[int], latent: int, activation: str) -> tuple[nn.Module, int, nn.Module]:
    """``(encoder body, its output features, decoder)`` of a dense autoencoder in standardised units.

    The body flattens the input and applies the hidden layers; the decoder mirrors them from the
    latent code back to a tensor of the input's shape.
    """
    _check_sizes("widths", widths, allow_empty=True)
    size = math.prod(spec.input_shape)
    encoder: list[nn.Module] = [nn.Flatten()]
    previous = size
    for width in widths:
        encoder += [nn.Linear(previous, width), make_activation(activation)]
        previous = width
    decoder: list[nn.Module] = []
    previous_out = latent
    for width in reversed(widths):
        decoder += [nn.Linear(previous_out, width), make_activation(activation)]
        previous_out = width
    decoder += [nn.Linear(previous_out, size), nn.Unflatten(1, spec.input_shape)]
    return nn.Sequential(*encoder), previous, nn.Sequential(*decoder)


def conv_layout(spec: DataSpec, model: str) -> tuple[int, int, tuple[int, ...]]:
    """``(dims, channels, spatial sizes)`` of a convolutional autoencoder's input for ``spec``.

    Raises:
        ConfigError: the inputs are neither ``C x H x W`` images/spectrograms nor ``T x C`` signals.
    """
    shape = spec.input_shape
    if spec.modality in ("image", "audio") and len(shape) == 3:
        return 2, shape[0], shape[1:]
    if spec.modality == "sequence" and len(shape) == 2:
        return 1, shape[1], shape[:1]
    raise ConfigError(
        f"{model} needs C x H x W images or spectrograms, or T x C signals. Received: {spec.modality} "
        f"input_shape={shape}. For other data use 'autoencoder' (dense) or 'vae' with kind='dense'"
    )


def _down_sizes(spec: DataSpec, sizes: tuple[int, ...], blocks: int, model: str) -> list[tuple[int, ...]]:
    """Spatial sizes before each stride-2 block and after the last (each block halves, rounding up)."""
    if min(sizes) < 2**blocks:
        raise ConfigError(
            f"{model}: input_shape={spec.input_shape} is too small for {blocks} stride-2 blocks (each halves "
            f"it; needs every spatial size >= {2**blocks}). Give fewer channels, or use 'autoencoder' (dense)"
        )
    trail = [sizes]
    for _ in range(blocks):
        trail.append(tuple((s + 1) // 2 for s in trail[-1]))
    return trail


def conv_parts(
    spec: DataSpec, channels: list[int], latent: int, activation: str, model: str
) -> tuple[nn.Module, int, nn.Module]:
    """``(encoder body, its output features, decoder)`` of a convolutional autoencoder.

    Each encoder block is a stride-2 convolution, batch norm and activation; the decoder mirrors
    them with transposed convolutions whose output padding restores odd and even sizes exactly.
    """
    _check_sizes("channels", channels, allow_empty=False)
    dims, in_channels, sizes = conv_layout(spec, model)
    trail = _down_sizes(spec, sizes, len(channels), model)
    conv, norm = (nn.Conv1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d)
    transposed = nn.ConvTranspose1d if dims == 1 else nn.ConvTranspose2d
    swap = [SwapTimeChannels()] if spec.modality == "sequence" else []

    encoder: list[nn.Module] = list(swap)
    previous = in_channels
    for out_channels in channels:
        encoder += [conv(previous, out_channels, 3, stride=2, padding=1, bias=False), norm(out_channels)]
        encoder += [make_activation(activation)]
        previous = out_channels
    features = channels[-1] * math.prod(trail[-1])
    encoder.append(nn.Flatten())

    decoder: list[nn.Module] = [nn.Linear(latent, features), make_activation(activation)]
    decoder.append(nn.Unflatten(1, (channels[-1], *trail[-1])))
    targets = [*reversed(channels[:-1]), in_channels]
    for index, out_channels in enumerate(targets):
        target_size = trail[len(channels) - 1 - index]
        padding = tuple(1 - s % 2 for s in target_size)  # even sizes need one extra row/column
        decoder.append(transposed(previous, out_channels, 3, stride=2, padding=1, output_padding=padding))
        if index < len(targets) - 1:
            decoder += [norm(out_channels), make_activation(activation)]
        previous = out_channels
    return nn.Sequential(*encoder), features, nn.Sequential(*decoder, *swap)


def _assemble(
    spec: DataSpec, body: nn.Module, features: int, decoder: nn.Module, latent: int, noise: float
) -> Autoencoder:
    encoder = nn.Sequential(*body, nn.Linear(features, latent))
    return Autoencoder(input_layer(spec), GaussianNoise(noise), encoder, decoder, restore_layer(spec))


@register_model(
    "autoencoder",
    modalities=RECONSTRUCT_MODALITIES,
    tasks=("reconstruct",),
    description="dense autoencoder: flatten, encoder widths, latent code, mirrored decoder; noise= for denoising",
)
def autoencoder(
    spec: DataSpec,
    widths: Sequence[int] = (128, 64),
    latent: int = 16,
    activation: str = "relu",
    noise: float = 0.0,
) -> nn.Module:
    """Dense autoencoder for any fixed-shape float inputs.

    Args:
        spec: a ``reconstruct`` spec (image, tabular, sequence or audio).
        widths: hidden layer widths of the encoder (the decoder mirrors them); empty for a linear
            autoencoder.
        latent: size of the latent code.
        activation: relu, gelu, tanh, sigmoid or silu.
        noise: standard deviation (standardised units) of the Gaussian noise added to the
            encoder's input in training only; > 0 makes it a denoising autoencoder.

    Raises:
        ConfigError: a hyper-parameter is out of range.
    """
    _check_common(latent, noise)
    body, features, decoder = dense_parts(spec, list(widths), latent, activation)
    return _assemble(spec, body, features, decoder, latent, noise)


@register_model(
    "conv_autoencoder",
    modalities=CONV_MODALITIES,
    tasks=("reconstruct",),
    description="convolutional autoencoder for images (2-D) and T x C signals (1-D); noise= for denoising",
)
def conv_autoencoder(
    spec: DataSpec,
    channels: Sequence[int] = (16, 32),
    latent: int = 16,
    activation: str = "relu",
    noise: float = 0.0,
) -> nn.Module:
    """Convolutional autoencoder: stride-2 convolutions down, transposed convolutions up.

    Images and spectrograms (``C x H x W``) use 2-D convolutions; ``T x C`` signals use 1-D
    convolutions over time.

    Args:
        spec: a ``reconstruct`` spec (image, audio or sequence).
        channels: output channels of each stride-2 encoder block (each halves the spatial size).
        latent: size of the latent code.
        activation: relu, gelu, tanh, sigmoid or silu.
        noise: training-only Gaussian input noise (standardised units); > 0 for denoising.

    Raises:
        ConfigError: the inputs are too small for the blocks, or a hyper-parameter is out of range.
    """
    _check_common(latent, noise)
    body, features, decoder = conv_parts(spec, list(channels), latent, activation, "conv_autoencoder")
    return _assemble(spec, body, features, decoder, latent, noise)


@register_model(
    "vae",
    modalities=RECONSTRUCT_MODALITIES,
    tasks=("reconstruct",),
    description="variational autoencoder (dense or conv): Gaussian posterior, reparameterised sample, sample()",
)
def vae(
    spec: DataSpec,
    kind: str = "dense",
    widths: Sequence[int] = (256, 128),
    channels: Sequence[int] = (16, 32),
    latent: int = 16,
    activation: str = "relu",
    decoder_std: float = 0.5,
    noise: float = 0.0,
) -> nn.Module:
    """Variational autoencoder with a Gaussian decoder of fixed variance.

    Args:
        spec: a ``reconstruct`` spec.
        kind: ``dense`` (uses ``widths``) or ``conv`` (uses ``channels``; images, audio, signals).
        widths: hidden widths of the dense encoder (mirrored by the decoder).
        channels: stride-2 block channels of the convolutional encoder.
        latent: latent dimensions.
        activation: relu, gelu, tanh, sigmoid or silu.
        decoder_std: standard deviation of the Gaussian decoder in standardised units (times the
            root mean square of the spec's input std gives natural units). Smaller values weigh
            reconstruction more against the KL term.
        noise: training-only Gaussian input noise (standardised units).

    Raises:
        ConfigError: ``kind`` is unknown, does not suit the data, or a hyper-parameter is out of range.
    """
    _check_common(latent, noise)
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}. Received: kind={kind!r}")
    if not isinstance(decoder_std, (int, float)) or not 0 < decoder_std < math.inf:
        raise ConfigError(f"decoder_std must be a finite number > 0. Received: decoder_std={decoder_std!r}")
    if kind == "dense":
        body, features, decoder = dense_parts(spec, list(widths), latent, activation)
    else:
        body, features, decoder = conv_parts(spec, list(channels), latent, activation, "vae kind='conv'")
    scale = math.sqrt(sum(s * s for s in spec.input_std) / len(spec.input_std)) if spec.input_std else 1.0
    return VariationalAutoencoder(
        input_layer(spec),
        GaussianNoise(noise),
        body,
        decoder,
        restore_layer(spec),
        features=features,
        latent=latent,
        decoder_var=(decoder_std * scale) ** 2,
    )
