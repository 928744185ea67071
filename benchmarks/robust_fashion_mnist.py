"""Adversarial training on Fashion-MNIST: an undefended CNN against its TRADES- or PGD-trained twin.

Targets (issue 7): the undefended CNN falls below 10% accuracy at linf eps = 0.1 under the
worst-case evaluation; the adversarially trained one keeps >= 70% there with clean accuracy >= 80%.

    GLASSNET_DATA=/work/shared/data nice -n 10 .venv/bin/python benchmarks/robust_fashion_mnist.py
    ... --method pgd --epochs 10 --train-size 20000 --limit 500      # shorter runs

Prints clean and worst-case accuracy of both models, the training times and the
gradient-masking checks. Runs on CUDA when available (``--device``).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import glassnet as gn
from glassnet.robustness import robustness
from glassnet.train.steps.adversarial import adversarial_step


class EpochClock(gn.Callback):
    """Prints the elapsed time after each epoch (long runs show their progress)."""

    def __init__(self, label: str) -> None:
        self.label, self.start = label, time.perf_counter()

    def on_epoch_end(self, trainer, model, logs) -> None:
        print(f"{self.label} epoch {trainer.epoch}: {time.perf_counter() - self.start:.1f} s, "
              f"loss {logs.get('train/loss', float('nan')):.4f}", flush=True)  # fmt: skip


def train(bundle, adversarial: dict | None, epochs: int, device: str, batch_size: int, seed: int):
    torch.manual_seed(seed)
    model = gn.create_model("cnn", bundle.spec, channels=[32, 64], hidden=256, dropout=0.1)
    step = adversarial_step(adversarial, bundle.spec) if adversarial else None
    trainer = gn.Trainer(
        task="classify",
        max_epochs=epochs,
        batch_size=batch_size,
        lr=2e-3,
        device=device,
        step=step,
        seed=seed,
        callbacks=[EpochClock(adversarial["method"] if adversarial else "undefended")],
    )
    start = time.perf_counter()
    fit = trainer.fit(model, bundle.train)  # no validation: the test split is measured once at the end
    seconds = time.perf_counter() - start
    clean = trainer.evaluate(model, bundle.test)["accuracy"]
    return model, {"train_time_s": round(seconds, 1), "steps": fit.steps, "clean_accuracy_full_test": round(clean, 4)}


def attack(model, bundle, eps: float, limit: int, apgd_steps: int, queries: int) -> dict:
    start = time.perf_counter()
    result = robustness(
        model, bundle, eps=[eps / 2, eps], attack=["fgsm", "pgd"], limit=limit, apgd_steps=apgd_steps,
        square_queries=queries, batch_size=500,
    )  # fmt: skip
    d = result.to_dict()
    return {
        "examples": d["examples"],
        "clean_accuracy": d["clean_accuracy"],
        "curves": d["curves"],
        "worst_case": d["worst_case"]["accuracy"],
        "worst_case_after": d["worst_case"]["after"],
        "warnings": d["warnings"],
        "checks": {c["name"]: c["passed"] for c in d["checks"]},
        "attack_time_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="trades", choices=["trades", "pgd", "fgsm"])
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--undefended-epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="attack steps during training")
    parser.add_argument("--beta", type=float, default=6.0)
    parser.add_argument("--train-size", type=int, default=None, help="subset of the 60,000 training images")
    parser.add_argument("--limit", type=int, default=1000, help="test examples attacked")
    parser.add_argument("--apgd-steps", type=int, default=100)
    parser.add_argument("--square-queries", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-undefended", action="store_true")
    args = parser.parse_args()

    options = {"val_fraction": 0.0} | ({"train_size": args.train_size} if args.train_size else {})
    bundle = gn.load_dataset("fashion-mnist", **options)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    print(f"device {device}, torch threads {torch.get_num_threads()}, train {len(bundle.train):,}", flush=True)
    report = {"settings": vars(args)}
    if not args.skip_undefended:
        model, facts = train(bundle, None, args.undefended_epochs, device, args.batch_size, args.seed)
        facts.update(attack(model, bundle, args.eps, args.limit, args.apgd_steps, args.square_queries))
        report["undefended"] = facts
        print("undefended", json.dumps(facts), flush=True)
    adversarial = {"method": args.method, "eps": args.eps, "steps": args.steps, "beta": args.beta}
    model, facts = train(bundle, adversarial, args.epochs, device, args.batch_size, args.seed)
    facts.update(attack(model, bundle, args.eps, args.limit, args.apgd_steps, args.square_queries))
    report[args.method] = facts
    print(args.method, json.dumps(facts), flush=True)
    worst = facts["worst_case"][-1]
    print(
        f"\n{args.method} at eps={args.eps}: clean {facts['clean_accuracy_full_test']:.4f} (full test), "
        f"worst case {worst:.4f} on {facts['examples']} examples; trained in {facts['train_time_s']:.0f} s on {device}"
    )
    if "undefended" in report:
        print(f"undefended: clean {report['undefended']['clean_accuracy_full_test']:.4f}, "
              f"worst case {report['undefended']['worst_case'][-1]:.4f}")  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
