"""GradientSHAP and SmoothGrad as Captum computes them, with the same random draws, in cache-sized passes.

Captum's ``GradientShap`` and ``NoiseTunnel(Saliency)`` build every noisy or interpolated copy of the
inputs at once (``n_samples`` rows per example) and push them all through the model in one pass; on
top, ``NoiseTunnel`` fills a tensor of standard deviations as large as the copies to draw its noise
(GradientSHAP's default noise of 0 included) and sums the squared attributions that SmoothGrad never
reads. Here the same random numbers come from the same generators in the same order (NumPy for
GradientSHAP's reference rows and interpolation points, torch for the Gaussian noise), so that under
one seed the attributions equal Captum's to float rounding. Only the draws are made for the whole
call; the rows go through the model ``rows`` at a time (``Budget.gradient_rows``: on a CPU, passes
whose activations stay near the cache run about twice as fast per row as one pass of every row), each
row is built from its example when its pass comes, noise is drawn in place and skipped when it is 0,
gradients are taken with respect to the rows only, and convolutional image models run as a
channels-last copy on a CPU (``GradientPasses``).

Tried and left out (docs/benchmarks.md has the figures): folding eval-mode batch norm into the
convolution before it was as fast as channels-last alone and added little on top of it, but the
changed rounding tips near-ties of max-pool windows and ReLU gates, which moved single values by up to
2% of the largest attribution (Captum on 1 or 2 threads, or channels-last, agrees with itself to
2e-7); turning off the parameters' ``requires_grad`` changed nothing measurable, as gradients with
respect to the rows alone already skip the weight gradients.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from glassnet.models.outputs import prediction


def gradient_shap(
    passes: GradientPasses,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    references: torch.Tensor,
    n_samples: int,
    stdevs: float,
    rows: int,
) -> torch.Tensor:
    """GradientSHAP of ``inputs``: what ``GradientShap(model).attribute(inputs, references, n_samples, stdevs,
    target=targets)`` returns, under the same random state.

    Args:
        passes: the model in eval mode, as the passes run it (``GradientPasses(model, inputs)``).
        inputs: ``N x ...`` examples.
        targets: one output index per example (over the flattened outputs of one example).
        references: ``R x ...`` rows from which each sample draws its reference.
        n_samples: samples per example.
        stdevs: standard deviation of the Gaussian noise added to each sample (0 adds none).
        rows: model rows per forward and backward pass.

    Returns:
        Attributions shaped like ``inputs``.
    """
    total_rows = len(inputs) * n_samples
    # Captum's order: reference rows (NumPy), then the noise (torch), then the interpolation points (NumPy)
    picks = torch.as_tensor(np.random.choice(len(references), total_rows), device=inputs.device)
    noise = _noise(total_rows, inputs, stdevs)
    alphas = torch.tensor(np.random.uniform(0.0, 1.0, total_rows), device=inputs.device, dtype=inputs.dtype)
    total = torch.zeros_like(inputs)
    step = even_passes(total_rows, rows)
    for start in range(0, total_rows, step):
        span = slice(start, min(total_rows, start + step))
        example = torch.arange(span.start, span.stop, device=inputs.device) // n_samples
        x = inputs[example] if noise is None else inputs[example] + noise[span]
        base = references[picks[span]]
        alpha = alphas[span].view((-1,) + (1,) * (inputs.dim() - 1))
        grads = passes(alpha * x + (1.0 - alpha) * base, targets[example])
        total.index_add_(0, example, (x - base) * grads)
    return total / n_samples


def smoothgrad(
    passes: GradientPasses,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    n_samples: int,
    stdevs: float,
    samples_per_draw: int,
    rows: int,
) -> torch.Tensor:
    """SmoothGrad of ``inputs``: what ``NoiseTunnel(Saliency(model)).attribute(inputs, nt_type="smoothgrad",
    nt_samples=n_samples, nt_samples_batch_size=samples_per_draw, stdevs=stdevs, target=targets)`` returns
    (absolute gradients), under the same random state.

    Args:
        passes: the model in eval mode, as the passes run it (``GradientPasses(model, inputs)``).
        inputs: ``N x ...`` examples.
        targets: one output index per example (over the flattened outputs of one example).
        n_samples: noisy samples per example.
        stdevs: standard deviation of the Gaussian noise.
        samples_per_draw: samples per example drawn together (Captum's ``nt_samples_batch_size``: it
            fixes the order of the draws, not the passes).
        rows: model rows per forward and backward pass.

    Returns:
        Attributions shaped like ``inputs``.
    """
    per_draw = max(1, min(n_samples, samples_per_draw))
    draws = [per_draw] * (n_samples // per_draw) + ([n_samples % per_draw] if n_samples % per_draw else [])
    total = torch.zeros_like(inputs)
    for k in draws:
        draw_rows = len(inputs) * k
        noise = _noise(draw_rows, inputs, stdevs)
        step = even_passes(draw_rows, rows)
        for start in range(0, draw_rows, step):
            span = slice(start, min(draw_rows, start + step))
            example = torch.arange(span.start, span.stop, device=inputs.device) // k
            x = inputs[example] if noise is None else inputs[example] + noise[span]
            total.index_add_(0, example, passes(x, targets[example]).abs())
    return total / n_samples


def even_passes(total: int, rows: int) -> int:
    """Rows per pass when ``total`` rows are split into the fewest passes of at most ``rows``, as even as
    possible: 1,280 rows at 260 per pass become 5 passes of 256, not 4 of 260 and one of 240 (each new
    pass shape costs the convolution library a new kernel set-up, and a small last pass runs slowly)."""
    passes = -(-total // max(1, rows))
    return -(-total // max(1, passes))


class GradientPasses:
    """The model as the gradient passes run it: on a CPU, image-shaped inputs of a model with 2-d convolutions
    go through a channels-last copy (the layout oneDNN's CPU kernels work in, so no reorder per layer and
    pass); anything else runs the model itself. The user's model is never changed.

    ``forward(rows)`` is the model's forward pass; calling it with rows and their targets gives the
    gradients of each row's target output with respect to that row. A forward that cannot take
    channels-last rows (e.g. ``.view`` on a convolution's output) falls back to the model itself for
    the rest of the call.
    """

    def __init__(self, model: nn.Module, inputs: torch.Tensor) -> None:
        self.model, self.original = model, model
        self.memory_format: torch.memory_format | None = None
        if inputs.device.type == "cpu" and inputs.dim() == 4 and any(isinstance(m, nn.Conv2d) for m in model.modules()):
            try:
                twin = copy.deepcopy(model)
            except (TypeError, RuntimeError, copy.Error):  # modules holding handles that cannot be copied
                return
            self.model, self.memory_format = twin.to(memory_format=torch.channels_last), torch.channels_last

    def forward(self, rows: torch.Tensor) -> Any:
        if self.memory_format is not None:
            try:
                return self.model(rows.contiguous(memory_format=self.memory_format))
            except RuntimeError:
                self.model, self.memory_format = self.original, None
        return self.model(rows)

    def __call__(self, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return input_gradients(self.forward, rows, targets)


def input_gradients(model: Callable[[torch.Tensor], Any], rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient of each row's target output with respect to that row (and nothing else: no weight gradients)."""
    rows = rows.detach().requires_grad_()
    with torch.enable_grad():
        outputs = prediction(model(rows))
        picked = outputs.reshape(len(rows), -1).gather(1, targets.reshape(-1, 1).to(outputs.device))
        # a scalar: passing grad_outputs instead would import sympy on first use (~1 s in a fresh process)
        (grads,) = torch.autograd.grad(picked.sum(), rows)
    return grads


def _noise(count: int, inputs: torch.Tensor, stdevs: float) -> torch.Tensor | None:
    """``count`` rows of Gaussian noise shaped like one example, as Captum draws them; None for no noise.

    Captum multiplies standard normal draws by a tensor of ``stdevs``; drawing them in place and scaling
    by the number gives the same values without that tensor. Zero noise is skipped: only the torch
    generator's state would differ, and ``explain`` restores it afterwards.
    """
    if stdevs == 0:
        return None
    draws = torch.randn((count, *inputs.shape[1:]), device=inputs.device, dtype=inputs.dtype)
    return draws.mul_(stdevs)
