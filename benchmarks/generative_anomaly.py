"""Anomaly detection with a diffusion model against the conv autoencoder: AUROC on a held-out class.

    .venv/bin/python benchmarks/generative_anomaly.py [--data digits] [--classes 0 1 ...] \
        [--epochs 20] [--ae-epochs 20] [--width 16] [--json out.json]

For each held-out class k, both models learn the other classes only (the training and validation
splits without k, the same images for both) and score the whole test split; class k is the anomaly:

- ``conv_autoencoder`` with glassnet's reconstruction workflow (``normal_classes``): the score is
  the reconstruction error, the AUROC is what ``results/train.json`` reports;
- ``ddpm`` (unconditional) trained with its ``diffusion`` step: the score is minus the model's
  forward pass, i.e. its denoising error at 10%, 30% and 50% of the noise schedule with fixed noise.

Prints the AUROC of each per held-out class and the mean, with the training seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import TensorDataset

import glassnet as gn
from glassnet.data import split_tensors
from glassnet.generate.data import generation_bundle


def without_class(bundle, k: int):
    """The bundle with class ``k`` removed from the training and validation splits (the test split whole)."""

    def keep(split):
        x, y = split_tensors(split)
        mask = y != k
        return TensorDataset(x[mask], y[mask])

    return dataclasses.replace(bundle, train=keep(bundle.train), val=keep(bundle.val))


def diffusion_auroc(bundle, k: int, epochs: int, width: int, seed: int) -> tuple[float, float]:
    data = generation_bundle(without_class(bundle, k))
    torch.manual_seed(seed)
    model = gn.create_model("ddpm", data.spec, width=width, conditional=False)
    start = time.perf_counter()
    gn.Trainer(max_epochs=epochs, batch_size=64, seed=seed, device="cpu").fit(model, data)
    seconds = time.perf_counter() - start
    test_x, test_y = split_tensors(bundle.test)
    model.eval()
    with torch.no_grad():
        scores = torch.cat([-model(part.float()).reshape(-1) for part in test_x.split(256)])
    return float(roc_auc_score((test_y == k).numpy(), scores.numpy())), seconds


def autoencoder_auroc(data: str, k: int, names: list[str], epochs: int, seed: int, out: Path) -> tuple[float, float]:
    normal = [name for i, name in enumerate(names) if i != k]
    start = time.perf_counter()
    config = gn.RunConfig(data=data, model="conv_autoencoder", normal_classes=normal, epochs=epochs, seed=seed)
    run = gn.train(config, out=out)
    seconds = time.perf_counter() - start
    results = json.loads((Path(run.path) / "results" / "train.json").read_text())
    return float(results["test"]["auroc"]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--classes", type=int, nargs="+", default=None, help="held-out classes (default: all)")
    parser.add_argument("--epochs", type=int, default=20, help="ddpm epochs")
    parser.add_argument("--ae-epochs", type=int, default=20)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    bundle = gn.load_dataset(args.data)
    names = list(bundle.spec.class_names)
    classes = args.classes if args.classes is not None else list(range(len(names)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in classes:
            ae, ae_s = autoencoder_auroc(args.data, k, names, args.ae_epochs, args.seed, Path(tmp) / f"ae{k}")
            dm, dm_s = diffusion_auroc(bundle, k, args.epochs, args.width, args.seed)
            rows.append({"held_out": names[k], "ddpm": dm, "conv_autoencoder": ae, "ddpm_s": dm_s, "ae_s": ae_s})
            print(
                f"held out {names[k]:>12s}: ddpm AUROC {dm:.3f} ({dm_s:.0f} s)  conv AE {ae:.3f} ({ae_s:.0f} s)",
                flush=True,
            )
    mean_dm = sum(r["ddpm"] for r in rows) / len(rows)
    mean_ae = sum(r["conv_autoencoder"] for r in rows) / len(rows)
    print(f"\nmean AUROC over {len(rows)} held-out classes: ddpm {mean_dm:.3f}, conv autoencoder {mean_ae:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "ddpm": mean_dm, "conv_autoencoder": mean_ae}, indent=2))


if __name__ == "__main__":
    main()
