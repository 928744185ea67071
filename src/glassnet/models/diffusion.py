"""A denoising diffusion model for images: ``ddpm`` (U-Net, DDPM training, DDIM sampling, guidance).

One module, ``Diffusion``, holds the noise-predicting U-Net, its moving average and the noise
schedule:

- ``model.denoise(noisy, t, labels=None)``: the U-Net's estimate of the noise in ``noisy`` images
  (in [-1, 1]) at timesteps ``t``; ``labels`` condition it (``num_classes`` is the "no class"
  label that classifier-free guidance needs);
- ``model.add_noise(images, t, noise)``: the forward process ``sqrt(a_t) x + sqrt(1 - a_t) e``;
- ``model.net_ema``: an exponential moving average of the U-Net's weights (updated by the
  ``diffusion`` training step, saved with the model, used for sampling);
- ``model.sample(n, labels=None, generator=None, ema=True, steps=None, guidance=None, eta=0.0)``:
  DDIM sampling (Song et al., 2021) in ``steps`` steps (default: the model's ``sample_steps``);
  ``eta=1`` with ``steps=timesteps`` is the original DDPM ancestral sampler (Ho et al., 2020).
  A conditional model mixes its conditional and unconditional estimates with classifier-free
  guidance (Ho and Salimans, 2022): ``e = e_uncond + w (e_cond - e_uncond)``;
- ``model(images)``: the forward pass scores how typical each image is, ``N x 1``: minus the mean
  squared error of the unconditional noise estimate at a few fixed timesteps and fixed noise (a
  proxy of the likelihood bound; higher is more like the training images). ``predict`` and
  ``explain`` use it, and it serves as an anomaly score.

The schedule is the cosine schedule of Nichol and Dhariwal (2021) by default (``linear``: the
original ``1e-4 .. 0.02``). The U-Net works for any ``C x H x W``: it pads the image to a multiple
of ``2^k`` (``k`` <= 2 halvings, keeping at least 4 pixels), runs residual blocks with GroupNorm
and the timestep (and class) embedding added in each block, one self-attention layer at the
coarsest scale, and crops back.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import check_positive
from glassnet.models.registry import register_model

SCHEDULES = ("cosine", "linear")
MAX_HALVINGS = 2
MIN_GRID = 4
SCORE_TIMESTEPS = (0.1, 0.3, 0.5)  # where the forward pass measures the denoising error (fractions of T)
SCORE_SEED = 20_240


def halvings(height: int, width: int) -> int:
    """How often the U-Net halves an ``H x W`` image: at most ``MAX_HALVINGS``, keeping >= ``MIN_GRID`` pixels."""
    k = 0
    while k < MAX_HALVINGS and min(height, width) / 2 ** (k + 1) >= MIN_GRID:
        k += 1
    return k


def noise_schedule(kind: str, timesteps: int) -> torch.Tensor:
    """``alpha_bar_t`` for t = 1..T (the share of the signal's variance left at step t), float64."""
    if kind == "linear":
        betas = torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64) * (1000 / timesteps)
        return torch.cumprod(1 - betas.clamp(max=0.999), 0)
    s = 0.008
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, 0)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (float) timesteps, ``N x dim``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the embedding added between, and a residual path."""

    def __init__(self, cin: int, cout: int, emb: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    """Multi-head self-attention over the positions of a feature map (residual)."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.attn = nn.MultiheadAttention(channels, heads if channels % heads == 0 else 1, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return x + out.transpose(1, 2).reshape(-1, c, h, w)  # -1: an ONNX export keeps the batch dynamic


class UNet(nn.Module):
    """Noisy images, timesteps (and classes) -> the noise estimate, same shape (see the module docstring)."""

    def __init__(self, shape: tuple[int, int, int], width: int, num_classes: int = 0) -> None:
        super().__init__()
        channels, height, width_px = shape
        self.shape, self.num_classes = tuple(shape), num_classes
        self.k = halvings(height, width_px)
        emb = 4 * width
        self.time = nn.Sequential(nn.Linear(width, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.classes = nn.Embedding(num_classes + 1, emb) if num_classes else None  # + the "no class" label
        widths = [width * min(2**i, 4) for i in range(self.k + 1)]
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        cin = width
        for i, w in enumerate(widths):
            self.down.append(ResBlock(cin, w, emb))
            cin = w
            if i < self.k:
                self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
        self.mid1, self.attn, self.mid2 = ResBlock(cin, cin, emb), Attention(cin), ResBlock(cin, cin, emb)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            self.up.append(ResBlock(cin + w, w, emb))
            cin = w
            if i > 0:
                self.upsample.append(nn.Conv2d(w, widths[i - 1], 3, padding=1))
                cin = widths[i - 1]
        self.out = nn.Sequential(nn.GroupNorm(_groups(cin), cin), nn.SiLU(), nn.Conv2d(cin, channels, 3, padding=1))
        self.width = width

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        height, width_px = x.shape[-2:]
        multiple = 2**self.k
        pad_h, pad_w = (-height) % multiple, (-width_px) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        emb = self.time(timestep_embedding(t, self.width))
        if self.classes is not None:
            if labels is None:
                labels = torch.full((len(x),), self.num_classes, device=x.device, dtype=torch.long)
            emb = emb + self.classes(labels.long())
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < self.k:
                h = self.downsample[i](h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], 1), emb)
            if i < self.k:
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(h)[..., :height, :width_px]


class Diffusion(nn.Module):
    """A noise-predicting U-Net, its moving average and the noise schedule (see the module docstring).

    Attributes:
        timesteps: steps of the forward (noising) process, T.
        num_classes: classes of a conditional model (0: unconditional).
        class_names: the names of the classes (conditional models), for sampling by name.
        sample_steps: DDIM steps ``sample`` takes by default.
        guidance: the classifier-free guidance weight ``sample`` uses by default (conditional models).
    """

    def __init__(
        self,
        net: UNet,
        timesteps: int,
        schedule: str,
        sample_steps: int,
        guidance: float,
        class_names: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.net = net
        self.net_ema = copy.deepcopy(net)
        self.net_ema.requires_grad_(False)
        self.net_ema.eval()
        self.timesteps, self.schedule, self.num_classes = timesteps, schedule, net.num_classes
        self.sample_steps, self.guidance = sample_steps, guidance
        self.class_names = tuple(class_names)
        self.register_buffer("alpha_bar", noise_schedule(schedule, timesteps).float(), persistent=False)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """The shape of one sample's starting noise (``sample(noise=...)``): an image."""
        return tuple(self.net.shape)

    def train(self, mode: bool = True) -> Diffusion:
        super().train(mode)
        self.net_ema.eval()
        return self

    def denoise(
        self, noisy: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None, ema: bool = False
    ) -> torch.Tensor:
        """The noise estimate of ``noisy`` ([-1, 1] scale) at integer timesteps ``t`` in ``[0, T)``."""
        return (self.net_ema if ema else self.net)(noisy, t, labels)

    def add_noise(self, clean: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The forward process: ``sqrt(a_t) x + sqrt(1 - a_t) e`` for clean images ``x`` in [-1, 1]."""
        a = self.alpha_bar[t].to(clean.dtype)[:, None, None, None]
        return a.sqrt() * clean + (1 - a).sqrt() * noise

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """How typical each image is, ``N x 1``: minus the denoising error at fixed timesteps and noise."""
        x = images * 2 - 1
        generator = torch.Generator().manual_seed(SCORE_SEED)
        errors = []
        for fraction in SCORE_TIMESTEPS:
            t = torch.full((len(x),), int(fraction * self.timesteps), device=x.device, dtype=torch.long)
            noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
            estimate = self.net(self.add_noise(x, t, noise), t)
            errors.append((estimate.float() - noise.float()).pow(2).flatten(1).mean(1))
        return -torch.stack(errors, 1).mean(1, keepdim=True)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        ema: bool = True,
        steps: int | None = None,
        guidance: float | None = None,
        eta: float = 0.0,
        noise: torch.Tensor | None = None,
        denoiser: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``n`` new images in [0, 1] by DDIM from pure noise (see the module docstring).

        Args:
            n: how many images.
            labels: the class of each image (conditional models); None draws the classes evenly.
            generator: a ``torch.Generator`` for the noise (reproducible samples).
            ema: sample with the averaged U-Net (default) or the trained one.
            steps: denoising steps, 1..T (default ``sample_steps``).
            guidance: the classifier-free guidance weight (default ``self.guidance``; 1: none, 0:
                unconditional).
            eta: 0 (default): deterministic DDIM; 1: as much fresh noise per step as DDPM.
            noise: the starting noise (``n x C x H x W``) instead of a fresh draw (interpolations).
            denoiser: ``denoiser(x, t, labels)`` in place of the U-Net (a compressed copy of it: int8, ONNX).

        Raises:
            ConfigError: ``steps``, ``guidance`` or ``eta`` out of range.
        """
        steps = self.sample_steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.timesteps:
            raise ConfigError(f"steps must be a whole number in [1, {self.timesteps}]. Received: steps={steps!r}")
        guidance = self.guidance if guidance is None else guidance
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0 <= guidance <= 20:
            raise ConfigError(f"guidance must be a number in [0, 20]. Received: guidance={guidance!r}")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 <= eta <= 1:
            raise ConfigError(f"eta must be in [0, 1]. Received: eta={eta!r}")
        net = self.net_ema if ema else self.net
        estimate = denoiser or net
        device = self.alpha_bar.device
        if self.conditional and labels is None:
            labels = torch.arange(n) % self.num_classes
        if labels is not None:
            labels = torch.as_tensor(labels).long().to(device)
        guided = labels is not None and guidance != 1
        was_training = net.training
        net.eval()
        try:
            x = torch.randn((n, *net.shape), generator=generator) if noise is None else noise.float()
            x = x.to(device)
            times = torch.linspace(self.timesteps - 1, 0, steps).round().long().unique_consecutive().tolist()
            alpha_bar = self.alpha_bar.double()
            for i, t in enumerate(times):
                a_t = alpha_bar[t]
                a_prev = alpha_bar[times[i + 1]] if i + 1 < len(times) else torch.ones((), dtype=torch.float64)
                tt = torch.full((n,), t, device=device, dtype=torch.long)
                if guided:
                    both = _in_chunks(
                        estimate,
                        torch.cat([x, x]),
                        torch.cat([tt, tt]),
                        torch.cat([labels, torch.full_like(labels, self.num_classes)]),
                    )
                    cond, uncond = both.chunk(2)
                    eps = uncond + guidance * (cond - uncond)
                else:
                    eps = _in_chunks(estimate, x, tt, labels)
                x0 = ((x - (1 - a_t).sqrt().float() * eps) / a_t.sqrt().float()).clamp(-1, 1)
                eps = (x - a_t.sqrt().float() * x0) / (1 - a_t).sqrt().float()  # consistent with the clamped x0
                sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).clamp(min=0).sqrt()
                x = a_prev.sqrt().float() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt().float() * eps
                if eta > 0 and i + 1 < len(times):
                    x = x + sigma.float() * torch.randn(x.shape, generator=generator).to(device)
            return ((x + 1) / 2).clamp(0, 1).float()
        finally:
            net.train(was_training)


SAMPLE_CHUNK = 128  # images per U-Net call while sampling: 512 at once ran 1.6x slower on a 2-core CPU (cache)


def _in_chunks(
    estimate: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    x: torch.Tensor,
    t: torch.Tensor,
    labels: torch.Tensor | None,
) -> torch.Tensor:
    """``estimate(x, t, labels)`` in float32, ``SAMPLE_CHUNK`` images per call (the same values, computed faster)."""
    if len(x) <= SAMPLE_CHUNK:
        return estimate(x, t, labels).float()
    parts = []
    for i in range(0, len(x), SAMPLE_CHUNK):
        part = slice(i, i + SAMPLE_CHUNK)
        parts.append(estimate(x[part], t[part], None if labels is None else labels[part]).float())
    return torch.cat(parts)


@register_model(
    "ddpm",
    modalities=("image",),
    tasks=("generate",),
    description="denoising diffusion: U-Net with time embedding, DDIM sampling, classifier-free guidance",
    step="diffusion",
    channels_last_bf16=False,  # 178 against 147 ms a step of 64 images in bf16 (AMX CPU); fp32: 232 against 260
)
def ddpm(
    spec: DataSpec,
    width: int = 32,
    timesteps: int = 1000,
    schedule: str = "cosine",
    conditional: bool = True,
    sample_steps: int = 50,
    guidance: float = 2.0,
) -> nn.Module:
    """A diffusion model for ``C x H x W`` images, class-conditional when the data has classes.

    Args:
        spec: the image data (``generate`` task).
        width: channels of the U-Net's first scale (x2, then x4, at the coarser ones).
        timesteps: steps of the noising process, T.
        schedule: ``cosine`` (default) or ``linear``.
        conditional: condition on the class (with classifier-free guidance) when the data has at
            least two classes.
        sample_steps: DDIM steps of ``sample`` by default (``glassnet generate --steps`` overrides).
        guidance: classifier-free guidance weight of conditional sampling (1: none).
    """
    if spec.modality != "image" or len(spec.input_shape) != 3:
        raise ConfigError(
            f"ddpm generates C x H x W images. Received: {spec.modality} data of shape {list(spec.input_shape)}"
        )
    check_positive("width", width)
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or not 10 <= timesteps <= 10_000:
        raise ConfigError(f"timesteps must be a whole number in [10, 10000]. Received: timesteps={timesteps!r}")
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}. Received: schedule={schedule!r}")
    if isinstance(sample_steps, bool) or not isinstance(sample_steps, int) or not 1 <= sample_steps <= timesteps:
        raise ConfigError(
            f"sample_steps must be a whole number in [1, timesteps={timesteps}]. "
            f"Received: sample_steps={sample_steps!r}"
        )
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0 <= guidance <= 20:
        raise ConfigError(f"guidance must be a number in [0, 20]. Received: guidance={guidance!r}")
    classes = len(spec.class_names) if conditional and len(spec.class_names) >= 2 else 0
    net = UNet(tuple(spec.input_shape), width, classes)
    names = spec.class_names if classes else ()
    return Diffusion(net, timesteps, schedule, sample_steps, float(guidance), names)
