"""PGD, APGD and the embedding PGD attack only the examples still standing, and return what the full-batch loop returns.

Each reference below is the plain full-batch loop (every example goes through every step; the
first fooling iterate is kept). The attacks drop an example as soon as it is fooled, which must
not change any example's result: same seed, same output to float tolerance, never a higher
robust accuracy, and fewer examples through the model.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassnet.robustness import apgd_ce, apgd_dlr, embedding_pgd, pgd
from glassnet.robustness.attacks import _checkpoints, _gradient, ce_loss, dlr_loss, succeeded
from glassnet.robustness.embedding import _project, embedding_scale, find_embedding, perturbed
from glassnet.train.perturbation import ascent as _ascent
from glassnet.train.perturbation import per_example as _view
from glassnet.train.perturbation import project
from glassnet.train.perturbation import random_start as _random_start


def _first_hit(adv, hit, current, fooled):
    newly = fooled & ~hit
    return torch.where(_view(newly, adv), current, adv), hit | fooled


def full_batch_pgd(model, x, y, eps, norm, target, steps, size, objective, generator):
    current = _random_start(x, eps, norm, generator)
    adv, hit = current.clone(), torch.zeros(len(x), dtype=torch.bool)
    for _ in range(steps):
        _, logits, grad = _gradient(model, current, y, target, objective)
        adv, hit = _first_hit(adv, hit, current, succeeded(logits, y, target))
        current = project(current + size * _ascent(grad, norm), x, eps, norm).detach()
    with torch.no_grad():
        adv, hit = _first_hit(adv, hit, current, succeeded(model(current), y, target))
    return torch.where(_view(hit, adv), adv, current)


def full_batch_apgd(model, x, y, eps, norm, target, steps, objective, generator):
    rho, alpha = 0.75, 0.75
    points = set(_checkpoints(steps)[1:])
    current = _random_start(x, eps, norm, generator)
    eta = torch.full((len(x),), 2.0 * eps)
    loss, logits, grad = _gradient(model, current, y, target, objective)
    best_loss, best_x = loss.clone(), current.clone()
    adv, hit = current.clone(), succeeded(logits, y, target)
    previous = current.clone()
    increases = torch.zeros(len(x))
    loss_at_point, eta_reduced = best_loss.clone(), torch.zeros(len(x), dtype=torch.bool)
    last_point = 0
    for k in range(steps):
        with torch.no_grad():
            z = project(current + _view(eta, x) * _ascent(grad, norm), x, eps, norm)
            momentum = alpha if k > 0 else 1.0
            step = current + momentum * (z - current) + (1 - momentum) * (current - previous)
            previous, current = current, project(step, x, eps, norm)
        loss, logits, grad = _gradient(model, current, y, target, objective)
        adv, hit = _first_hit(adv, hit, current, succeeded(logits, y, target))
        improved = loss > best_loss
        increases += improved.float()
        best_x = torch.where(_view(improved, x), current, best_x)
        best_loss = torch.where(improved, loss, best_loss)
        if k + 1 in points:
            halve = (increases < rho * (k + 1 - last_point)) | (~eta_reduced & (loss_at_point >= best_loss))
            eta = torch.where(halve, eta / 2, eta)
            current = torch.where(_view(halve, x), best_x, current)
            previous = torch.where(_view(halve, x), current, previous)
            _, _, grad_restart = _gradient(model, current, y, target, objective)
            grad = torch.where(_view(halve, x), grad_restart, grad)
            eta_reduced, loss_at_point = halve, best_loss.clone()
            increases.zero_()
            last_point = k + 1
    return torch.where(_view(hit, x), adv, best_x)


class Counting(nn.Module):
    """Counts the examples that go through the model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.seen = model, 0

    def forward(self, x):
        self.seen += len(x)
        return self.model(x)


def _accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _data(quadrants, n=64):
    x, y = quadrants.test.tensors if len(quadrants.test) >= n else quadrants.train.tensors
    return x[:n], y[:n]


def _check_same(model, new, reference, x, y):
    # some examples fall early, some late and some never: the case where dropping could go wrong
    assert torch.allclose(new, reference, atol=1e-5), float((new - reference).abs().max())
    assert _accuracy(model, new, y) <= _accuracy(model, reference, y)


@pytest.mark.parametrize(
    ("norm", "eps", "targeted", "loss"),
    [("linf", 0.25, False, "ce"), ("l2", 1.5, False, "ce"), ("linf", 0.35, True, "ce"), ("linf", 0.25, False, "dlr")],
)
def test_pgd_equals_the_full_batch_loop(image_model, quadrants, norm, eps, targeted, loss):
    x, y = _data(quadrants)
    target = (y + 1) % 4 if targeted else None
    new = pgd(image_model, x, y, eps, norm, target, steps=10, loss=loss, generator=torch.Generator().manual_seed(5))
    objective = ce_loss if loss == "ce" else dlr_loss
    reference = full_batch_pgd(
        image_model, x, y, eps, norm, target, 10, 2.5 * eps / 10, objective, torch.Generator().manual_seed(5)
    )
    robust = _accuracy(image_model, reference, y)
    assert 0.05 < robust < 0.95 or targeted, "the case must mix fooled and standing examples"
    _check_same(image_model, new, reference, x, y)


@pytest.mark.parametrize(
    ("norm", "eps", "targeted", "name"),
    [("linf", 0.25, False, "ce"), ("l2", 1.5, False, "ce"), ("linf", 0.25, False, "dlr"), ("linf", 0.35, True, "dlr")],
)
def test_apgd_equals_the_full_batch_loop(image_model, quadrants, norm, eps, targeted, name):
    x, y = _data(quadrants)
    target = (y + 1) % 4 if targeted else None
    attack, objective = (apgd_ce, ce_loss) if name == "ce" else (apgd_dlr, dlr_loss)
    new = attack(image_model, x, y, eps, norm, target, steps=20, generator=torch.Generator().manual_seed(2))
    reference = full_batch_apgd(image_model, x, y, eps, norm, target, 20, objective, torch.Generator().manual_seed(2))
    _check_same(image_model, new, reference, x, y)


def test_fooled_examples_leave_the_batch(image_model, quadrants):
    x, y = _data(quadrants)
    counting = Counting(image_model)
    adv = pgd(counting, x, y, 0.3, steps=10, generator=torch.Generator().manual_seed(0))
    assert _accuracy(image_model, adv, y) < 0.5
    assert counting.seen < 0.7 * len(x) * 11  # the full-batch loop sends every example 11 times
    counting.seen = 0
    apgd_ce(counting, x, y, 0.3, steps=10, generator=torch.Generator().manual_seed(0))
    assert counting.seen < 0.7 * len(x) * 11


def test_a_batch_that_all_falls_at_the_start_costs_one_pass(image_model, quadrants):
    x, y = _data(quadrants, 16)
    wrong = (y + 1) % 4  # every example is already "fooled" with respect to a wrong label
    counting = Counting(image_model)
    adv = pgd(counting, x, wrong, 0.1, steps=10, generator=torch.Generator().manual_seed(0))
    assert counting.seen == len(x)
    assert ((adv - x).abs().amax() <= 0.1 + 1e-6).item()


def full_batch_embedding_pgd(model, tokens, y, eps, steps, generator):
    table = find_embedding(model)
    radius = eps * embedding_scale(table)
    size = radius * 2.5 / steps
    mask = (tokens != table.padding_idx)[..., None].float()
    shape = (*tokens.shape, table.embedding_dim)
    delta = _project(torch.randn(shape, generator=generator) * radius / shape[-1] ** 0.5, radius, mask)
    best, found = delta.clone(), torch.zeros(len(tokens), dtype=torch.bool)
    for _ in range(steps):
        delta.requires_grad_(True)
        with perturbed(model, delta):
            logits = model(tokens)
        (grad,) = torch.autograd.grad(ce_loss(logits, y).sum(), delta)
        with torch.no_grad():
            fooled = succeeded(logits, y) & ~found
            best[fooled], found = delta.detach()[fooled], found | fooled
            delta = _project(delta.detach() + size * grad / (grad.norm(dim=-1, keepdim=True) + 1e-12), radius, mask)
    with torch.no_grad(), perturbed(model, delta):
        fooled = succeeded(model(tokens), y) & ~found
    best[fooled], found = delta[fooled], found | fooled
    return torch.where(found[:, None, None], best, delta)


def test_embedding_pgd_equals_the_full_batch_loop(text_model):
    model, spec, tokens, y = text_model
    new = embedding_pgd(model, tokens, y, eps=0.05, steps=8, generator=torch.Generator().manual_seed(1))
    reference = full_batch_embedding_pgd(model, tokens, y, 0.05, 8, torch.Generator().manual_seed(1))
    assert torch.allclose(new, reference, atol=1e-5)
    with torch.no_grad(), perturbed(model, reference):
        fooled = float((model(tokens).argmax(1) != y).float().mean())
    assert 0 < fooled < 1, "the case must mix fooled and standing examples"


@pytest.fixture
def text_model(make_text_model):
    return make_text_model(2)
