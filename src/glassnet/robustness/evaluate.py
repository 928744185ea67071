"""``robustness``: accuracy against eps per attack, the AutoAttack-style worst case, and gradient-masking checks.

The worst case runs, per eps, APGD-CE, then targeted APGD-DLR, then the Square attack (linf or l2),
each on the examples that the previous ones left standing (as AutoAttack does); an example counts
as robust only when all of them fail. Text models get the same worst case in embedding space,
without Square (see ``NO_SQUARE_IN_EMBEDDING_SPACE``). Three checks guard against a defence that hides its gradients
instead of being robust: the black-box attack must not beat the white-box ones, accuracy must not
rise as eps grows, and an unbounded attack must bring accuracy to zero.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils.data import Dataset, TensorDataset

from glassnet.data.bundle import DataBundle
from glassnet.data.modality import get_modality
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.models.outputs import batched_outputs
from glassnet.progress import Progress, note, progress_bar
from glassnet.robustness.attacks import (
    apgd_ce,
    apgd_targeted,
    attack_info,
    check_eps,
    check_norm,
    margin,
    pgd,
    run_attack,
    square,
)
from glassnet.robustness.bounds import BoxModel, InputBounds, input_bounds
from glassnet.robustness.embedding import embedding_apgd, embedding_pgd, perturbed
from glassnet.robustness.units import check_budget
from glassnet.train.perturbation import flat_norm

DEFAULT_EPS = {"linf": (0.01, 0.02, 0.05, 0.1), "l2": (0.25, 0.5, 1.0, 2.0)}
DEFAULT_TEXT_EPS = (0.05, 0.1, 0.2, 0.5)
DEFAULT_ATTACKS = ("fgsm", "pgd")
WORST_CASE = ("apgd-ce", "apgd-dlr-t", "square")
TEXT_WORST_CASE = ("apgd-ce", "apgd-dlr-t")
NO_SQUARE_IN_EMBEDDING_SPACE = (
    "Square is not run in embedding space: its proposals (square windows of an image grid) have no meaning for "
    "a sequence of per-token balls, and a random search over tokens x embedding dimensions with a query budget "
    "of 1,000 is too weak to be a black-box check; the black-box check for text would be an attack on the tokens "
    "themselves, which glassnet does not run"
)
PRECISIONS = ("fp32", "bf16")
TOLERANCE = 0.01  # accuracy differences below one point are attack noise, not a warning
EXAMPLES = 8


@dataclass
class RobustnessResult:
    """What ``robustness`` measured; ``to_dict()`` is ``results/robustness.json``.

    Attributes:
        norm: ``linf`` or ``l2`` (``l2-per-token`` for the embedding attack).
        eps: the budgets, ascending.
        space: ``input`` or ``embedding`` (text models: perturbed token embeddings, not text).
        precision: ``fp32``, or ``bf16`` when the attacks ran under bf16 autocast (accuracy is always
            judged in fp32).
        bounds: where the valid input range comes from.
        examples: how many examples were attacked.
        clean_accuracy: accuracy without attack on those examples.
        curves: accuracy per eps for each attack (``curves[name][i]`` at ``eps[i]``).
        settings: each attack's options.
        timing: seconds and examples/s per attack.
        worst_case: ``accuracy`` per eps under every worst-case attack, plus the accuracy left
            after each component in turn (``after``); None when not run.
        minimum_norms: median and mean perturbation size of the minimum-norm attacks' successes.
        checks: one entry per gradient-masking check: ``name``, ``passed``, ``detail``.
        warnings: the failed checks, in plain words.
        adversarial_examples: a few originals and their adversarial versions (tensors; for figures).
    """

    norm: str
    eps: list[float]
    space: str
    bounds: str
    examples: int
    clean_accuracy: float
    precision: str = "fp32"
    curves: dict[str, list[float]] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    timing: dict[str, dict[str, float]] = field(default_factory=dict)
    worst_case: dict[str, Any] | None = None
    minimum_norms: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    adversarial_examples: dict[str, Any] = field(default_factory=dict)

    @property
    def robust_accuracy(self) -> dict[float, float]:
        """Worst-case accuracy (or the lowest curve where no worst case ran) per eps."""
        if self.worst_case is not None:
            return dict(zip(self.eps, self.worst_case["accuracy"]))
        if not self.curves:
            return {}
        return {e: min(curve[i] for curve in self.curves.values()) for i, e in enumerate(self.eps)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (the example tensors become their records without pixels)."""
        return {
            "norm": self.norm,
            "eps": self.eps,
            "space": self.space,
            "bounds": self.bounds,
            "examples": self.examples,
            "clean_accuracy": round(self.clean_accuracy, 6),
            "precision": self.precision,
            "robust_accuracy": {f"{e:g}": round(a, 6) for e, a in self.robust_accuracy.items()},
            "curves": {k: [round(a, 6) for a in v] for k, v in self.curves.items()},
            "worst_case": self.worst_case,
            "minimum_norms": self.minimum_norms,
            "settings": self.settings,
            "timing": self.timing,
            "checks": self.checks,
            "warnings": self.warnings,
            "adversarial_examples": self.adversarial_examples.get("records", []),
        }

    def _repr_html_(self) -> str:
        """A notebook's view: clean and robust accuracy per eps, each attack's curve, the warnings."""
        from glassnet.notebook import esc, grid_table, titled

        header = ["", "clean", *(f"eps={e:g}" for e in self.eps)]
        rows = [[name, self.clean_accuracy, *curve] for name, curve in self.curves.items()]
        if self.worst_case is not None:
            rows.append(["worst case", self.clean_accuracy, *self.worst_case["accuracy"]])
        warned = "".join(f"<div>warning: {esc(w)}</div>" for w in self.warnings)
        note = f"{self.examples:,} examples attacked in {self.space} space, {self.norm} norm ({self.bounds})"
        return titled("Robustness: accuracy under attack", grid_table(header, rows), warned, note=note)

    def save(self, run: Any, *, split: str = "test", data: str | None = None) -> Any:
        """Write this result into a run as ``glassnet robustness RUN`` does, so that its report shows it.

        Writes ``results/robustness.json`` (the stage's keys, with ``data`` and ``split``) and the
        figures ``robustness_curves`` and ``adversarial_examples``, under the run's lock, all
        together or not at all. ``gn.report(run)`` (or ``glassnet report RUN``) then shows the section.

        Args:
            run: the run directory (or ``Run``) of the attacked model.
            split: the split the attacked examples came from, as the report names it.
            data: the dataset's name (default: the run's).

        Returns:
            The path of ``results/robustness.json``.

        Raises:
            RunError: the run is missing or holds no saved model.
            DataError: the run's model is not a classifier (robustness.json describes classifiers).
        """
        from glassnet.robustness.record import write_record
        from glassnet.runs import transaction
        from glassnet.train.run import Run

        run = Run.open(run)
        spec, config = run.spec, run.config
        if spec.task != "classify":
            raise DataError(f"a robustness result goes into a classifier's run; the run at '{run.path}' is {spec.task}")
        with transaction(run.path, "attack"):
            write_record(run, self, data or spec.name or (config.data if config else ""), split)
            return run.result_file("robustness")


def robustness(
    model: nn.Module,
    data: DataBundle | Dataset | tuple[torch.Tensor, torch.Tensor],
    eps: Sequence[float] | float | None = None,
    attack: str | Sequence[str] = DEFAULT_ATTACKS,
    norm: str = "linf",
    worst_case: bool = True,
    spec: DataSpec | None = None,
    limit: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
    apgd_steps: int = 100,
    target_classes: int = 3,
    square_queries: int = 1000,
    checks: bool = True,
    reference: torch.Tensor | None = None,
    precision: str = "fp32",
    progress: Progress = None,
) -> RobustnessResult:
    """Attack ``model`` at each ``eps`` and measure what accuracy is left.

    Args:
        model: a classifier taking inputs in natural units (images in ``[0, 1]``).
        data: a ``DataBundle`` (its test split is attacked; its training split bounds table
            columns), a dataset of ``(input, class)`` pairs, or an ``(inputs, classes)`` pair.
        eps: budgets (default ``0.01, 0.02, 0.05, 0.1`` for linf, ``0.25 ... 2`` for l2). For
            tables, linf eps is a fraction of each feature's range; for text, a fraction of the
            mean embedding norm per token.
        attack: attacks drawn as curves (see ``list_attacks``).
        norm: ``linf`` or ``l2``.
        worst_case: also run the AutoAttack-style worst case (APGD-CE, APGD-DLR targeted, Square; for
            text models APGD-CE and APGD-DLR targeted in embedding space, ``worst_case["space"]``).
        spec: the model's data spec (taken from ``data`` when it is a bundle).
        limit: attack only ``limit`` examples, a sample drawn with a fixed seed (the same every call).
        batch_size: examples per attack batch.
        seed: seeds the random starts and the Square attack.
        options: per-attack keyword arguments, e.g. ``{"pgd": {"steps": 50, "restarts": 2}}``.
        apgd_steps: iterations of each APGD run in the worst case.
        target_classes: target classes tried by targeted APGD-DLR.
        square_queries: query budget of the Square attack.
        checks: run the gradient-masking checks.
        reference: training inputs that bound table columns (when ``data`` is not a bundle).
        precision: ``fp32`` (default), or ``bf16``: the attacks' forward and backward passes run under
            bf16 autocast (1.5-1.7x faster than fp32 on this CPU, but a slightly weaker attack:
            0.3-1 point of robust accuracy in docs/robustness.md), while every accuracy is still judged in fp32.
        progress: a bar over the (attack, eps) points with elapsed time and time left: True on stderr, or
            a text stream; None (default) or False draws nothing (``glassnet.progress``).

    Returns:
        A ``RobustnessResult``.

    Raises:
        ConfigError: unknown attack, bad norm or eps, an attack that does not fit the norm.
        DataError: no examples, or a model that is not a classifier.
    """
    inputs, targets, spec, reference = _examples(data, spec, limit, reference)
    attacks = [attack] if isinstance(attack, str) else list(attack)
    options = dict(options or {})
    for name in options:
        if name not in attacks:
            raise ConfigError(f"options given for attack {name!r}, which is not run. Attacks: {', '.join(attacks)}")
    check_norm(norm)
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={precision!r}")
    text = (spec is not None and not get_modality(spec.modality).continuous) or not torch.is_floating_point(inputs)
    eps_list = _eps_list(eps, norm, text, spec.modality if spec is not None else None, inputs[0].numel())
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    bar = progress_bar(_points(attacks, eps_list, text, worst_case, checks), "attack", progress, unit="points")
    with bar, _frozen(model, channels_last=not text and inputs.dim() == 4):
        if text:
            return _text_robustness(
                model,
                inputs,
                targets,
                eps_list,
                attacks,
                options,
                batch_size,
                generator,
                device,
                worst_case=worst_case,
                apgd_steps=apgd_steps,
                target_classes=target_classes,
                precision=precision,
                bar=bar,
            )
        for name in attacks:
            info = attack_info(name)
            if norm not in info.norms:
                raise ConfigError(f"attack {name!r} supports norm {' or '.join(info.norms)}. Received: norm={norm!r}")
        bounds = (input_bounds(spec, reference, inputs) if spec is not None else _guess_bounds(inputs, reference)).to(
            device
        )
        boxed = model if bounds.is_unit_box else BoxModel(model, bounds)
        attacker = _attacker(boxed, precision, device)
        z = bounds.to_unit(inputs.to(device)).clamp(0, 1)
        if z.dim() == 4:
            z = z.contiguous(memory_format=torch.channels_last)
        y = targets.to(device)
        clean = _predict(boxed, z, batch_size)
        correct = clean.argmax(1) == y
        result = RobustnessResult(
            norm=norm,
            eps=eps_list,
            space="input",
            bounds=bounds.source,
            examples=len(y),
            clean_accuracy=_mean(correct),
            precision=precision,
        )
        adversarial = {}
        for name in attacks:
            start = time.perf_counter()
            kwargs = (
                {"generator": generator, **options.get(name, {})} if _takes_generator(name) else options.get(name, {})
            )
            result.settings[name] = {k: v for k, v in kwargs.items() if k != "generator"}
            if attack_info(name).minimum_norm:
                curve, norms, adv = _minimum_norm_curve(
                    name, boxed, z, y, correct, eps_list, norm, batch_size, kwargs, attacker, bar=bar
                )
                result.minimum_norms[name] = norms
                runs = len(y)
            else:
                curve, adv = _budget_curve(
                    name, boxed, z, y, correct, eps_list, norm, batch_size, kwargs, attacker, bar=bar
                )
                runs = len(y) * len(eps_list)
            elapsed = time.perf_counter() - start
            result.curves[name] = curve
            result.timing[name] = {"seconds": round(elapsed, 3), "examples_per_s": round(runs / max(elapsed, 1e-9), 1)}
            adversarial[name] = adv
        if worst_case:
            start = time.perf_counter()
            result.worst_case, adversarial["worst-case"] = _worst_case(
                boxed,
                z,
                y,
                correct,
                eps_list,
                norm,
                batch_size,
                apgd_steps,
                target_classes,
                square_queries,
                generator,
                attacker,
                bar=bar,
            )
            elapsed = time.perf_counter() - start
            result.timing["worst-case"] = {
                "seconds": round(elapsed, 3),
                "examples_per_s": round(len(y) * len(eps_list) / max(elapsed, 1e-9), 1),
            }
            result.settings["worst-case"] = {
                "attacks": list(WORST_CASE),
                "apgd_steps": apgd_steps,
                "target_classes": target_classes,
                "square_queries": square_queries,
            }
        if checks:
            note(bar, "gradient-masking checks")
            _masking_checks(result, boxed, z, y, correct, norm, batch_size, generator, attacker)
            bar.update(1)
        result.adversarial_examples = _pick_examples(boxed, bounds, z, y, adversarial, eps_list)
    return result


# ----------------------------------------------------------------------------------------------
# inputs


def _examples(
    data: Any, spec: DataSpec | None, limit: int | None, reference: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, DataSpec | None, torch.Tensor | None]:
    _check_limit(limit)
    if isinstance(data, DataBundle):
        spec = spec or data.spec
        if reference is None and isinstance(data.train, TensorDataset):
            reference = data.train.tensors[0]
        data = data.test
    if isinstance(data, tuple) and len(data) == 2:
        inputs, targets = (torch.as_tensor(t) for t in data)
    elif isinstance(data, TensorDataset):
        inputs, targets = data.tensors[0], data.tensors[1]
    elif isinstance(data, Dataset):
        pairs = [data[int(i)] for i in _sample(len(data), limit)]
        inputs = torch.stack([torch.as_tensor(p[0]) for p in pairs]) if pairs else torch.empty(0)
        targets = torch.as_tensor([int(p[1]) for p in pairs])
    else:
        raise DataError(
            f"data must be a DataBundle, a Dataset or an (inputs, classes) pair. Received: {type(data).__name__}"
        )
    if limit is not None and len(inputs) > limit:
        chosen = _sample(len(inputs), limit)
        inputs, targets = inputs[chosen], targets[chosen]
    if len(inputs) == 0:
        raise DataError("no examples to attack: the data is empty")
    if spec is not None and spec.task != "classify":
        raise DataError(f"robustness evaluates classifiers; this model's task is {spec.task!r}")
    if torch.is_floating_point(targets) and not torch.equal(targets, targets.round()):
        raise DataError("robustness evaluates classifiers: the targets must be class indices, not real values")
    if len(targets) != len(inputs):
        raise DataError(f"{len(inputs)} inputs but {len(targets)} targets; they must match")
    return inputs.float() if torch.is_floating_point(inputs) else inputs, targets.long(), spec, reference


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ConfigError(f"limit must be an integer >= 1. Received: limit={limit!r}")


def _sample(size: int, limit: int | None) -> torch.Tensor:
    """``limit`` of ``size`` example indices, drawn with a fixed seed and kept in order.

    Not the first ``limit``: data files are often sorted by class (the sentiment corpus is), and
    the first rows of such a split would all be one class.
    """
    if limit is None or limit >= size:
        return torch.arange(size)
    generator = torch.Generator().manual_seed(0)
    return torch.randperm(size, generator=generator)[:limit].sort().values


def _eps_list(
    eps: Sequence[float] | float | None, norm: str, text: bool, modality: str | None = None, size: int = 1
) -> list[float]:
    if eps is None:
        values = list(DEFAULT_TEXT_EPS if text else DEFAULT_EPS[norm])
    elif isinstance(eps, (int, float)):
        values = [float(eps)]
    else:
        values = [float(e) for e in eps]
    if not values:
        raise ConfigError("eps must list at least one budget, e.g. eps=[0.05, 0.1]")
    for value in values:
        check_budget(value, norm, "text" if text else modality, size)
        if not text:
            check_eps(value, norm)
    return sorted(set(values))


def _guess_bounds(inputs: torch.Tensor, reference: torch.Tensor | None) -> InputBounds:
    """Without a spec: the unit box when every value lies in it, else per-feature ranges."""
    data = inputs if reference is None else torch.cat([reference.float(), inputs])
    if float(data.min()) >= 0 and float(data.max()) <= 1:
        shape = inputs.shape[1:]
        return InputBounds(torch.zeros(shape), torch.ones(shape), "values in [0, 1]")
    return InputBounds(data.amin(dim=0), data.amax(dim=0), "per-feature range of the data")


@contextmanager
def _frozen(model: nn.Module, channels_last: bool = False) -> Iterator[None]:
    """Eval mode and no parameter gradients (attacks differentiate the input only); restored after.

    With ``channels_last`` the convolution weights are also stored channels-last while inside (the
    same numbers, ~20% faster convolutions on CPU), and put back in their own layout after.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    layouts = [(p, p.is_contiguous(memory_format=torch.channels_last)) for p in model.parameters() if p.dim() == 4]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    if channels_last and layouts:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for p, was_last in layouts:
            if not was_last:
                p.data = p.data.contiguous()
        model.train(was_training)


class _Autocast(nn.Module):
    """``model`` under bf16 autocast, returning float32 outputs: what the attacks see with ``precision="bf16"``."""

    def __init__(self, model: nn.Module, device_type: str) -> None:
        super().__init__()
        self.model, self.device_type = model, device_type

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.model(*inputs)
        return out.float()


def _attacker(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """The model the attacks query: batch norm folded into the convolutions, bf16 on request.

    Accuracy is always judged with ``model`` itself, in fp32.
    """
    fused = fold_batch_norm(model)
    return fused if precision == "fp32" else _Autocast(fused, device.type)


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with each batch norm folded into the convolution just before it.

    The same function up to float rounding (logits differ by ~1e-6), ~15% faster for the attacks'
    forward and backward passes on a conv/batch-norm CNN; the original is not touched. A model with no
    ``Conv -> BatchNorm`` pair inside an ``nn.Sequential`` is returned as it is.
    """
    pairs = []
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            pairs += [
                (module, a, b)
                for a, b in zip(names, names[1:])
                if isinstance(module._modules[a], (nn.Conv1d, nn.Conv2d))
                and isinstance(module._modules[b], (nn.BatchNorm1d, nn.BatchNorm2d))
                and module._modules[b].running_mean is not None
            ]
    if not pairs or model.training:
        return model
    fused = copy.deepcopy(model)
    twins = {id(original): twin for original, twin in zip(model.modules(), fused.modules())}
    for module, a, b in pairs:
        twin = twins[id(module)]
        conv = fuse_conv_bn_eval(twin._modules[a], twin._modules[b])
        if twin._modules[a].weight.is_contiguous(memory_format=torch.channels_last) and conv.weight.dim() == 4:
            conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
        twin._modules[a], twin._modules[b] = conv, nn.Identity()
    return fused.eval()


def _points(attacks: list[str], eps_list: list[float], text: bool, worst_case: bool, checks: bool) -> int:
    """Units of the progress bar: one per (attack, eps), one per minimum-norm attack (one run gives every eps),
    one per (worst-case component, eps), one for the gradient-masking checks."""
    if text:
        return len(eps_list) * (1 + len(TEXT_WORST_CASE) * worst_case)
    curves = sum(1 if attack_info(name).minimum_norm else len(eps_list) for name in attacks)
    return curves + len(eps_list) * len(WORST_CASE) * worst_case + checks


def _takes_generator(name: str) -> bool:
    return name in ("fgsm", "pgd", "apgd-ce", "apgd-dlr", "square")


def _mean(mask: torch.Tensor) -> float:
    return float(mask.float().mean()) if len(mask) else 0.0


def _predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return batched_outputs(model, x, batch_size, device=x.device, to_cpu=False)


def _step(bar: Any, what: str) -> None:
    """Name the point the progress bar is on (``bar`` None: no bar)."""
    if bar is not None:
        note(bar, what)


def _done(bar: Any) -> None:
    if bar is not None:
        bar.update(1)


def _batches(index: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for begin in range(0, len(index), batch_size):
        yield index[begin : begin + batch_size]


# ----------------------------------------------------------------------------------------------
# curves


def _budget_curve(
    name: str,
    model: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    correct: torch.Tensor,
    eps_list: list[float],
    norm: str,
    batch_size: int,
    kwargs: dict[str, Any],
    attacker: nn.Module | None = None,
    bar: Any = None,
) -> tuple[list[float], dict[float, torch.Tensor]]:
    """Accuracy per eps; only the correctly classified examples are attacked (the others already count as lost)."""
    curve, adversarial = [], {}
    standing_index = correct.nonzero().squeeze(1)
    for eps in eps_list:
        _step(bar, f"{name} eps={eps:g}")
        robust = torch.zeros_like(correct)
        adv_all = z.clone()
        for index in _batches(standing_index, batch_size):
            adv = run_attack(name, attacker or model, z[index], y[index], eps, norm, **kwargs)
            with torch.no_grad():
                robust[index] = model(adv).argmax(1) == y[index]
            adv_all[index] = adv
        curve.append(_mean(robust))
        adversarial[eps] = adv_all
        _done(bar)
    return curve, adversarial


def _minimum_norm_curve(
    name: str,
    model: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    correct: torch.Tensor,
    eps_list: list[float],
    norm: str,
    batch_size: int,
    kwargs: dict[str, Any],
    attacker: nn.Module | None = None,
    bar: Any = None,
) -> tuple[list[float], dict[str, float], dict[float, torch.Tensor]]:
    """One run gives every eps: an example survives eps when no adversarial input within eps was found."""
    _step(bar, f"{name} (every eps)")
    sizes = torch.full((len(y),), float("inf"), device=z.device)
    adv_all = z.clone()
    for index in _batches(correct.nonzero().squeeze(1), batch_size):
        adv = run_attack(name, attacker or model, z[index], y[index], 0.0, norm, **kwargs)
        with torch.no_grad():
            fooled = model(adv).argmax(1) != y[index]
        sizes[index] = torch.where(fooled, flat_norm(adv - z[index], norm), sizes[index])
        adv_all[index] = adv
    sizes[~correct] = 0.0
    _done(bar)
    curve = [_mean(sizes > eps * (1 + 1e-6)) for eps in eps_list]
    found = sizes[correct & torch.isfinite(sizes)]
    norms = {
        "found": int(len(found)),
        "attacked": int(correct.sum()),
        "median": round(float(found.median()), 6) if len(found) else None,
        "mean": round(float(found.mean()), 6) if len(found) else None,
    }
    adversarial = {eps: torch.where((sizes <= eps * (1 + 1e-6)).reshape(-1, *[1] * (z.dim() - 1)), adv_all, z)
                   for eps in eps_list}  # fmt: skip
    return curve, norms, adversarial


def _worst_case(
    model: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    correct: torch.Tensor,
    eps_list: list[float],
    norm: str,
    batch_size: int,
    apgd_steps: int,
    target_classes: int,
    square_queries: int,
    generator: torch.Generator,
    attacker: nn.Module | None = None,
    bar: Any = None,
) -> tuple[dict[str, Any], dict[float, torch.Tensor]]:
    """Per eps: APGD-CE, then APGD-DLR targeted, then Square, each on the examples still standing."""
    components = list(WORST_CASE)
    attacker = attacker or model
    accuracy, after = [], {name: [] for name in components}
    adversarial = {}
    for eps in eps_list:
        robust = correct.clone()
        adv_all = z.clone()
        for name in components:
            _step(bar, f"worst case: {name} eps={eps:g}")
            for index in _batches(robust.nonzero().squeeze(1), batch_size):
                x0, y0 = z[index], y[index]
                if name == "apgd-ce":
                    adv = apgd_ce(attacker, x0, y0, eps, norm, steps=apgd_steps, generator=generator)
                elif name == "apgd-dlr-t":
                    adv = apgd_targeted(attacker, x0, y0, eps, norm, target_classes, apgd_steps, generator)
                else:
                    adv = square(attacker, x0, y0, eps, norm, queries=square_queries, generator=generator)
                with torch.no_grad():
                    fooled = model(adv).argmax(1) != y0
                robust[index[fooled]] = False
                adv_all[index[fooled]] = adv[fooled]
            after[name].append(round(_mean(robust), 6))
            _done(bar)
        accuracy.append(round(_mean(robust), 6))
        adversarial[eps] = adv_all
    return {"accuracy": accuracy, "attacks": components, "after": after, "space": "input"}, adversarial


# ----------------------------------------------------------------------------------------------
# gradient-masking checks


def _masking_checks(
    result: RobustnessResult,
    model: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    correct: torch.Tensor,
    norm: str,
    batch_size: int,
    generator: torch.Generator,
    attacker: nn.Module | None = None,
) -> None:
    def check(name: str, passed: bool, detail: str, warning: str) -> None:
        result.checks.append({"name": name, "passed": passed, "detail": detail})
        if not passed:
            result.warnings.append(warning)

    worst = result.worst_case
    if worst is not None and "square" in worst["attacks"]:
        before = worst["after"]["apgd-dlr-t"]
        gaps = [b - a for b, a in zip(before, worst["after"]["square"])]
        i = max(range(len(gaps)), key=gaps.__getitem__)
        check(
            "black_box_not_stronger",
            gaps[i] <= TOLERANCE,
            f"largest extra accuracy drop from Square after APGD: {gaps[i]:.4f} (eps={result.eps[i]:g})",
            f"The black-box Square attack fooled {gaps[i]:.1%} of the examples that the gradient attacks could not "
            f"(eps={result.eps[i]:g}). Gradients here do not point the way to adversarial examples: the model may "
            "mask its gradients, and its white-box robustness figures would then be too optimistic.",
        )
    curves = dict(result.curves)
    if worst is not None:
        curves["worst-case"] = worst["accuracy"]
    rises = []
    for name, curve in curves.items():
        values = [result.clean_accuracy, *curve]
        rises += [
            (name, values[i + 1] - values[i], ([0.0, *result.eps])[i + 1])
            for i in range(len(values) - 1)
            if values[i + 1] > values[i] + TOLERANCE
        ]
    check(
        "accuracy_falls_with_eps",
        not rises,
        "; ".join(f"{n} rises by {d:.4f} at eps={e:g}" for n, d, e in rises) or "every curve falls or stays level",
        "Accuracy rises as the attack gets a larger budget ("
        + ", ".join(f"{n} at eps={e:g}" for n, _, e in rises)
        + "). A stronger attack can always do what a weaker one did, so the attack is failing to optimise: "
        "a sign of gradient masking or too few attack steps.",
    )
    large = 1.0 if norm == "linf" else float(math.sqrt(z[0].numel()))
    index = correct.nonzero().squeeze(1)[:200]
    left, attacker = 0, attacker or model
    for batch in _batches(index, batch_size):
        adv = pgd(attacker, z[batch], y[batch], large, norm, steps=50, step_size=large / 10, generator=generator)
        with torch.no_grad():
            left += int((model(adv).argmax(1) == y[batch]).sum())
    share = left / max(len(index), 1)
    check(
        "unbounded_attack_succeeds",
        share <= TOLERANCE,
        f"accuracy left under PGD with eps={large:g} (the whole input box) on {len(index)} examples: {share:.4f}",
        f"With an unlimited budget (eps={large:g}, any input in the valid range) PGD still leaves {share:.1%} "
        "of the examples correctly classified. Any input can be turned into any other, so this means the "
        "gradients are uninformative (masked or saturated) and the robustness figures cannot be trusted.",
    )
    if "fgsm" in result.curves and "pgd" in result.curves:
        gaps = [p - f for f, p in zip(result.curves["fgsm"], result.curves["pgd"])]
        i = max(range(len(gaps)), key=gaps.__getitem__)
        check(
            "iterative_beats_single_step",
            gaps[i] <= TOLERANCE,
            f"largest excess of PGD accuracy over FGSM: {gaps[i]:.4f} (eps={result.eps[i]:g})",
            f"Single-step FGSM beats multi-step PGD by {gaps[i]:.1%} at eps={result.eps[i]:g}: the loss surface is "
            "locally misleading, a classic sign of gradient masking.",
        )


# ----------------------------------------------------------------------------------------------
# examples for the report


def _pick_examples(
    model: nn.Module,
    bounds: InputBounds,
    z: torch.Tensor,
    y: torch.Tensor,
    adversarial: dict[str, dict[float, torch.Tensor]],
    eps_list: list[float],
) -> dict[str, Any]:
    """Up to ``EXAMPLES`` successful adversarial examples at the smallest eps that fools that many."""
    source = "worst-case" if "worst-case" in adversarial else next(iter(adversarial), None)
    if source is None:
        return {}
    with torch.no_grad():
        clean = torch.softmax(_predict(model, z, 512), dim=1)
    for eps in eps_list:
        adv = adversarial[source][eps]
        with torch.no_grad():
            attacked = torch.softmax(_predict(model, adv, 512), dim=1)
        fooled = ((clean.argmax(1) == y) & (attacked.argmax(1) != y)).nonzero().squeeze(1)
        if len(fooled) >= EXAMPLES or eps == eps_list[-1]:
            break
    chosen = fooled[:EXAMPLES]
    if len(chosen) == 0:
        return {}
    records = [
        {
            "index": int(i),
            "eps": eps,
            "attack": source,
            "true": int(y[i]),
            "clean_prediction": int(clean[i].argmax()),
            "clean_confidence": round(float(clean[i].max()), 4),
            "adversarial_prediction": int(attacked[i].argmax()),
            "adversarial_confidence": round(float(attacked[i].max()), 4),
        }
        for i in chosen.tolist()
    ]
    return {
        "records": records,
        "originals": bounds.from_unit(z[chosen]).cpu(),
        "adversarial": bounds.from_unit(adv[chosen]).cpu(),
    }


# ----------------------------------------------------------------------------------------------
# text


def _text_robustness(
    model: nn.Module,
    tokens: torch.Tensor,
    y: torch.Tensor,
    eps_list: list[float],
    attacks: list[str],
    options: dict[str, dict[str, Any]],
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    worst_case: bool = True,
    apgd_steps: int = 100,
    target_classes: int = 3,
    precision: str = "fp32",
    bar: Any = None,
) -> RobustnessResult:
    """Token models, in embedding space: the PGD curve and the worst case over APGD-CE and APGD-DLR targeted."""
    if attacks != ["pgd"] and set(attacks) != {"pgd", "fgsm"}:
        raise ConfigError(
            f"text models are attacked in embedding space with pgd only. Received: attack={', '.join(attacks)}"
        )
    tokens, y = tokens.to(device), y.to(device)
    clean = _predict(model, tokens, batch_size)
    correct = clean.argmax(1) == y
    result = RobustnessResult(
        norm="l2-per-token",
        eps=eps_list,
        space="embedding",
        bounds="per-token L2 ball, radius eps x the mean embedding norm (not edits to the text)",
        examples=len(y),
        clean_accuracy=_mean(correct),
        precision=precision,
    )
    attacker = _attacker(model, precision, device)
    kwargs = options.get("pgd", {})
    result.settings["embedding-pgd"] = dict(kwargs)
    start, curve = time.perf_counter(), []
    for eps in eps_list:
        _step(bar, f"embedding-pgd eps={eps:g}")
        robust = torch.zeros_like(correct)
        for index in _batches(correct.nonzero().squeeze(1), batch_size):
            delta = embedding_pgd(attacker, tokens[index], y[index], eps, generator=generator, **kwargs)
            with torch.no_grad(), perturbed(model, delta):
                robust[index] = model(tokens[index]).argmax(1) == y[index]
        curve.append(_mean(robust))
        _done(bar)
    elapsed = time.perf_counter() - start
    result.curves["embedding-pgd"] = curve
    result.timing["embedding-pgd"] = {
        "seconds": round(elapsed, 3),
        "examples_per_s": round(len(y) * len(eps_list) / max(elapsed, 1e-9), 1),
    }
    if worst_case:
        start = time.perf_counter()
        result.worst_case = _text_worst_case(
            model, tokens, y, correct, eps_list, batch_size, apgd_steps, target_classes, generator, attacker, bar
        )
        elapsed = time.perf_counter() - start
        result.timing["worst-case"] = {
            "seconds": round(elapsed, 3),
            "examples_per_s": round(len(y) * len(eps_list) / max(elapsed, 1e-9), 1),
        }
        result.settings["worst-case"] = {
            "attacks": list(TEXT_WORST_CASE),
            "space": "embedding",
            "apgd_steps": apgd_steps,
            "target_classes": target_classes,
            "square_queries": None,
            "square": NO_SQUARE_IN_EMBEDDING_SPACE,
        }
    curves = dict(result.curves)
    if result.worst_case is not None:
        curves["worst-case"] = result.worst_case["accuracy"]
    rises = []
    for name, values in curves.items():
        values = [result.clean_accuracy, *values]
        rises += [(name, eps_list[i]) for i in range(len(eps_list)) if values[i + 1] > values[i] + TOLERANCE]
    result.checks.append(
        {
            "name": "accuracy_falls_with_eps",
            "passed": not rises,
            "detail": ", ".join(f"{n} rises at eps={e:g}" for n, e in rises) or "every curve falls or stays level",
        }
    )
    if rises:
        result.warnings.append(
            "Accuracy rises as the embedding attack gets a larger budget ("
            + ", ".join(f"{n} at eps={e:g}" for n, e in rises)
            + "): the attack is failing to optimise, so the figures are too optimistic."
        )
    return result


def _text_worst_case(
    model: nn.Module,
    tokens: torch.Tensor,
    y: torch.Tensor,
    correct: torch.Tensor,
    eps_list: list[float],
    batch_size: int,
    apgd_steps: int,
    target_classes: int,
    generator: torch.Generator,
    attacker: nn.Module | None = None,
    bar: Any = None,
) -> dict[str, Any]:
    """Per eps, in embedding space: APGD-CE, then APGD-DLR targeted, each on the examples still standing."""
    accuracy, after = [], {name: [] for name in TEXT_WORST_CASE}
    attacker = attacker or model
    for eps in eps_list:
        robust = correct.clone()
        for name in TEXT_WORST_CASE:
            _step(bar, f"worst case: {name} eps={eps:g}")
            for index in _batches(robust.nonzero().squeeze(1), batch_size):
                t0, y0 = tokens[index], y[index]
                if name == "apgd-ce":
                    delta = embedding_apgd(attacker, t0, y0, eps, "ce", apgd_steps, generator=generator)
                else:
                    delta = embedding_apgd(
                        attacker, t0, y0, eps, "dlr", apgd_steps, target_classes, generator=generator
                    )
                with torch.no_grad(), perturbed(model, delta):
                    fooled = model(t0).argmax(1) != y0
                robust[index[fooled]] = False
            after[name].append(round(_mean(robust), 6))
            _done(bar)
        accuracy.append(round(_mean(robust), 6))
    return {
        "accuracy": accuracy,
        "attacks": list(TEXT_WORST_CASE),
        "after": after,
        "space": "embedding",
        "omitted": {"square": NO_SQUARE_IN_EMBEDDING_SPACE},
    }


__all__ = ["RobustnessResult", "robustness", "margin"]
