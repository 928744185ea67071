"""glassnet's PGD against IBM ART's and torchattacks' on the same model, data and eps.

Issue 7's bar: glassnet's robust accuracy no higher than the peers' (our attack at least as strong)
and at least 2x ART's examples/s. All three run PGD-10, linf eps = 0.1, step 0.025, one random
start, batch 128, on the same trained Fashion-MNIST CNN (the issue's model), in one process,
interleaved over repeats; throughput is the median of the repeats, robust accuracy their mean.

    pip install adversarial-robustness-toolbox; pip install --no-deps torchattacks   # peers, benchmark only
    GLASSNET_DATA=/work/shared/data nice -n 10 .venv/bin/python benchmarks/robust_vs_peers.py

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
from glassnet.robust import pgd
from glassnet.robust.evaluate import _frozen

EPS, STEPS, STEP_SIZE, BATCH = 0.1, 10, 0.025, 128


def trained_model(examples: int):
    if os.environ.get("GLASSNET_DATA"):
        bundle = gn.load_dataset("fashion-mnist", train_size=10_000, val_fraction=0.0)
    else:
        print("GLASSNET_DATA is not set: using digits instead of Fashion-MNIST")
        bundle = gn.load_dataset("digits")
    torch.manual_seed(0)
    model = gn.create_model("cnn", bundle.spec)
    gn.Trainer(task="classify", max_epochs=2, batch_size=128, seed=0).fit(model, bundle.train)
    x, y = bundle.test.tensors
    return model.eval(), x[:examples], y[:examples], bundle.spec


def glassnet_pgd(model, x, y, precision: str = "fp32"):
    out = []
    x = x.contiguous(memory_format=torch.channels_last)
    with _frozen(model, channels_last=True):  # as glassnet.robustness: no parameter gradients, channels-last
        for i in range(0, len(x), BATCH):
            if precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    adv = pgd(model, x[i : i + BATCH], y[i : i + BATCH], EPS, steps=STEPS, step_size=STEP_SIZE)
            else:
                adv = pgd(model, x[i : i + BATCH], y[i : i + BATCH], EPS, steps=STEPS, step_size=STEP_SIZE)
            out.append(adv)
    return torch.cat(out)


def art_pgd(model, spec):
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
        classifier, norm=np.inf, eps=EPS, eps_step=STEP_SIZE, max_iter=STEPS, num_random_init=1, batch_size=BATCH,
        verbose=False,
    )  # fmt: skip
    return lambda x, y: torch.from_numpy(attack.generate(x.numpy(), y=y.numpy()))


def torchattacks_pgd(model):
    import torchattacks

    attack = torchattacks.PGD(model, eps=EPS, alpha=STEP_SIZE, steps=STEPS, random_start=True)

    def run(x, y):
        return torch.cat([attack(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)])

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model, x, y, spec = trained_model(args.examples)
    with torch.no_grad():
        clean = float((model(x).argmax(1) == y).float().mean())
    attacks = {
        "glassnet": lambda a, b: glassnet_pgd(model, a, b),
        "glassnet bf16": lambda a, b: glassnet_pgd(model, a, b, "bf16"),
        "ART 1.20": art_pgd(model, spec),
        "torchattacks 3.5": torchattacks_pgd(model),
    }
    rates = {name: [] for name in attacks}
    accuracy = {name: [] for name in attacks}
    for repeat in range(args.repeats):
        names = list(attacks)
        names = names[repeat % len(names) :] + names[: repeat % len(names)]  # rotate the order: fair under load
        for name in names:
            torch.manual_seed(repeat)
            start = time.perf_counter()
            adv = attacks[name](x, y)
            rates[name].append(len(x) / (time.perf_counter() - start))
            assert (adv - x).abs().max() <= EPS + 1e-5 and adv.min() >= 0 and adv.max() <= 1
            with torch.no_grad():
                accuracy[name].append(float((model(adv).argmax(1) == y).float().mean()))
    print(f"{len(x)} test examples, clean accuracy {clean:.4f}; PGD-{STEPS}, linf eps {EPS}, step {STEP_SIZE}, "
          f"batch {BATCH}, {args.repeats} repeats, torch threads {torch.get_num_threads()}")  # fmt: skip
    art = statistics.median(rates["ART 1.20"])
    print(f"{'attack':<18}{'robust accuracy':>16}{'examples/s':>12}{'vs ART':>9}")
    for name in attacks:
        rate = statistics.median(rates[name])
        print(f"{name:<18}{statistics.mean(accuracy[name]):>16.4f}{rate:>12.1f}{rate / art:>8.2f}x")


if __name__ == "__main__":
    main()
