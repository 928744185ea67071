"""glassnet's PGD against IBM ART's and torchattacks' on the same model, data and eps.

Issue 7's bar: glassnet's robust accuracy no higher than the peers' (our attack at least as strong)
and at least 2x ART's examples/s. All run PGD-10, linf, step eps / 4, one random start, batch 128,
on the same trained Fashion-MNIST CNN (the issue's model), in one process, interleaved over
repeats (the order rotates each repeat); throughput is the median of the repeats, robust accuracy
their mean (with its range: each repeat draws new random starts, which moves it by an example or two).

glassnet's ``pgd`` keeps the first adversarial iterate per example (ART and torchattacks return
the last iterate) and drops an example from the batch as soon as it is fooled. The row "glassnet,
full batch" runs the same attack without dropping (every example through every step, as ART and
torchattacks do): the gap between the two rows is the work saved on examples that had already
fallen, and it shrinks when few fall (``--eps 0.02``, or ``--model fgsm-trained``: a CNN trained
with glassnet's fast-FGSM adversarial training).

    pip install adversarial-robustness-toolbox; pip install --no-deps torchattacks   # peers, benchmark only
    OMP_NUM_THREADS=1 GLASSNET_DATA=/work/shared/data nice -n 10 .venv/bin/python benchmarks/robust_vs_peers.py \
        --examples 1024 [--eps 0.02] [--model fgsm-trained]

Without GLASSNET_DATA it falls back to scikit-learn's digits (8x8) and says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import glassnet as gn
from glassnet.robustness import pgd
from glassnet.robustness.attacks import _gradient, ce_loss, succeeded
from glassnet.robustness.evaluate import _attacker, _frozen
from glassnet.train.perturbation import ascent, per_example, project, random_start
from glassnet.train.steps.adversarial import adversarial_step

STEPS, BATCH = 10, 128


def trained_model(examples: int, kind: str):
    if os.environ.get("GLASSNET_DATA"):
        bundle = gn.load_dataset("fashion-mnist", train_size=10_000, val_fraction=0.0)
    else:
        print("GLASSNET_DATA is not set: using digits instead of Fashion-MNIST")
        bundle = gn.load_dataset("digits")
    torch.manual_seed(0)
    model = gn.create_model("cnn", bundle.spec)
    step = None
    if kind == "fgsm-trained":  # fast FGSM (Wong et al. 2020) at eps 0.1: few examples fall at small eps
        step = adversarial_step({"method": "fgsm", "eps": 0.1, "warmup": 0.5}, bundle.spec)
    start = time.perf_counter()
    gn.Trainer(task="classify", max_epochs=2 if step is None else 4, batch_size=128, seed=0, step=step).fit(
        model, bundle.train
    )
    print(f"model: {kind}, trained in {time.perf_counter() - start:.0f} s")
    x, y = bundle.test.tensors
    return model.eval(), x[:examples], y[:examples], bundle.spec


def full_batch_pgd(model, x, y, eps, steps, size):
    """The same PGD without dropping fooled examples: every example through every step (as the peers)."""
    current = random_start(x, eps, "linf", None)
    adv, hit = current.clone(), torch.zeros(len(x), dtype=torch.bool)
    for _ in range(steps):
        _, logits, grad = _gradient(model, current, y, None, ce_loss)
        fooled = succeeded(logits, y) & ~hit
        adv, hit = torch.where(per_example(fooled, adv), current, adv), hit | fooled
        current = project(current + size * ascent(grad, "linf"), x, eps, "linf").detach()
    with torch.no_grad():
        fooled = succeeded(model(current), y) & ~hit
    adv, hit = torch.where(per_example(fooled, adv), current, adv), hit | fooled
    return torch.where(per_example(hit, adv), adv, current)


def glassnet_pgd(model, x, y, eps, precision: str = "fp32", attack=None):
    """PGD as ``glassnet.robustness`` runs it: no parameter gradients, channels-last, batch norm folded."""
    out = []
    x = x.contiguous(memory_format=torch.channels_last)
    with _frozen(model, channels_last=True):
        attacker = _attacker(model, precision, x.device)  # bf16: under autocast
        for i in range(0, len(x), BATCH):
            xb, yb = x[i : i + BATCH], y[i : i + BATCH]
            if attack is None:
                out.append(pgd(attacker, xb, yb, eps, steps=STEPS, step_size=eps / 4))
            else:
                out.append(attack(attacker, xb, yb, eps, STEPS, eps / 4))
    return torch.cat(out)


def art_pgd(model, spec, eps):
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=spec.input_shape,
        nb_classes=spec.num_outputs,
        clip_values=(0.0, 1.0),
    )
    attack = ProjectedGradientDescent(
        classifier, norm=np.inf, eps=eps, eps_step=eps / 4, max_iter=STEPS, num_random_init=1, batch_size=BATCH,
        verbose=False,
    )  # fmt: skip
    return lambda x, y: torch.from_numpy(attack.generate(x.numpy(), y=y.numpy()))


def torchattacks_pgd(model, eps):
    import torchattacks

    attack = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=STEPS, random_start=True)

    def run(x, y):
        return torch.cat([attack(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)])

    return run


class Counting(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, 0

    def forward(self, x):
        self.seen += len(x)
        return self.model(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--model", choices=["undefended", "fgsm-trained"], default="undefended")
    args = parser.parse_args()
    eps = args.eps
    model, x, y, spec = trained_model(args.examples, args.model)
    with torch.no_grad():
        clean = float((model(x).argmax(1) == y).float().mean())
    counting = Counting(model).eval()
    for i in range(0, len(x), BATCH):
        pgd(counting, x[i : i + BATCH], y[i : i + BATCH], eps, steps=STEPS, step_size=eps / 4)
    work = counting.seen / (len(x) * (STEPS + 1))
    attacks = {
        "glassnet": lambda a, b: glassnet_pgd(model, a, b, eps),
        "glassnet, full batch": lambda a, b: glassnet_pgd(model, a, b, eps, attack=full_batch_pgd),
        "glassnet bf16": lambda a, b: glassnet_pgd(model, a, b, eps, "bf16"),
        "ART 1.20": art_pgd(model, spec, eps),
        "torchattacks 3.5": torchattacks_pgd(model, eps),
    }
    rates = {name: [] for name in attacks}
    accuracy = {name: [] for name in attacks}
    load = []
    for repeat in range(args.repeats):
        names = list(attacks)
        names = names[repeat % len(names) :] + names[: repeat % len(names)]  # rotate the order: fair under load
        for name in names:
            torch.manual_seed(repeat)
            start = time.perf_counter()
            adv = attacks[name](x, y)
            rates[name].append(len(x) / (time.perf_counter() - start))
            assert (adv - x).abs().max() <= eps + 1e-5 and adv.min() >= 0 and adv.max() <= 1
            with torch.no_grad():
                accuracy[name].append(float((model(adv).argmax(1) == y).float().mean()))
        load.append(os.getloadavg()[0])
    print(f"{len(x)} test examples, clean accuracy {clean:.4f}; PGD-{STEPS}, linf eps {eps:g}, step {eps / 4:g}, "
          f"batch {BATCH}, {args.repeats} repeats, torch threads {torch.get_num_threads()}, "
          f"load average {min(load):.1f}-{max(load):.1f}")  # fmt: skip
    print(f"glassnet's forward passes: {work:.1%} of the full-batch loop's (fooled examples leave the batch)")
    art = statistics.median(rates["ART 1.20"])
    print(f"{'attack':<22}{'robust accuracy':>16}{'(min-max)':>16}{'examples/s':>12}{'vs ART':>9}")
    for name in attacks:
        rate, low, high = statistics.median(rates[name]), min(accuracy[name]), max(accuracy[name])
        print(f"{name:<22}{statistics.mean(accuracy[name]):>16.4f}{f'{low:.4f}-{high:.4f}':>16}"
              f"{rate:>12.1f}{rate / art:>8.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
