"""A trained ``ddpm`` on Fashion-MNIST against a VAE of about its parameter count, FID in one feature space.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/generative_fashion.py --ddpm RUN \
        [--vae-epochs 20] [--vae-widths 768 384] [--vae-latent 32] [--etas 0 1] [--json out.json]

``RUN`` is a ``ddpm`` run trained on ``fashion-mnist`` (e.g. ``glassnet train --data fashion-mnist
--model ddpm --epochs 4 precision=bf16 channels_last=true --out RUN``). The script trains a dense
``vae`` (the reconstruction workflow, all classes) with widths chosen to match the U-Net's
parameter count, then draws as many images from each model as the evaluation compares (up to
2,000, the test images' classes for the conditional ``ddpm``; the VAE draws from its prior) and
measures FID and KID against the same test images in the features of the ``ddpm`` run's own
feature classifier (``RUN/feature_classifier``; not Inception features). The issue's goal: the
diffusion model's FID at least 30% below the VAE's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import glassnet as gn
from glassnet.data import split_tensors
from glassnet.generate.evaluation import CLASSIFIER_DIR, MAX_SAMPLES, FeatureExtractor, _distances
from glassnet.models import load_model


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ddpm", required=True, help="a ddpm run trained on fashion-mnist")
    parser.add_argument("--vae-epochs", type=int, default=20)
    parser.add_argument("--vae-widths", type=int, nargs="+", default=[768, 384])
    parser.add_argument("--vae-latent", type=int, default=32)
    parser.add_argument("--etas", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    run = gn.Run.open(args.ddpm)
    ddpm = run.model.cpu().eval()
    bundle = run.data()
    test_x, test_y = split_tensors(bundle.test)
    chosen = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(args.seed))[:MAX_SAMPLES]
    real, labels = test_x[chosen].float(), test_y[chosen].long()
    classifier, _ = load_model(Path(args.ddpm) / CLASSIFIER_DIR)
    extractor = FeatureExtractor(classifier.eval())
    rows = []
    for eta in args.etas:
        generator = torch.Generator().manual_seed(args.seed)
        start = time.perf_counter()
        fake = torch.cat([ddpm.sample(len(p), labels=p, generator=generator, eta=eta) for p in labels.split(500)])
        seconds = time.perf_counter() - start
        scores = _distances(extractor, real, fake, args.seed)
        name = f"ddpm, {ddpm.sample_steps} steps, eta {eta:g}"
        rows.append({"model": name, "parameters": parameters(ddpm.net), **scores, "sample_s": seconds})
        print(f"{name}: FID {scores['fid']:.2f}, KID {scores['kid']:.3f} ({seconds:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        config = gn.RunConfig(
            data=bundle.spec.name or "fashion-mnist",
            model="vae",
            model_args={"widths": args.vae_widths, "latent": args.vae_latent},
            epochs=args.vae_epochs,
            seed=args.seed,
            baseline=False,
        )
        vae_run = gn.train(config, out=Path(tmp) / "vae")
        train_s = time.perf_counter() - start
        vae = gn.Run.open(vae_run.path).model.cpu().eval()
        generator = torch.Generator().manual_seed(args.seed)
        fake = vae.sample(len(real), generator=generator).reshape(real.shape).clamp(0, 1)
        scores = _distances(extractor, real, fake, args.seed)
        name = f"vae {args.vae_widths}, latent {args.vae_latent}, {args.vae_epochs} epochs"
        rows.append({"model": name, "parameters": parameters(vae), **scores, "train_s": train_s})
        print(f"{name}: FID {scores['fid']:.2f}, KID {scores['kid']:.3f} (trained in {train_s:.0f} s)", flush=True)
    best = min(r["fid"] for r in rows[:-1])
    print(f"\n{len(real)} images each, FID in the ddpm run's feature-classifier space")
    for row in rows:
        print(
            f"{row['model']:44s} {row['parameters']:>10,d} parameters  FID {row['fid']:8.2f}  "
            f"precision {row['precision']:.3f}  recall {row['recall']:.3f}"
        )
    print(f"best ddpm FID / VAE FID: {best / rows[-1]['fid']:.3f} (goal <= 0.70)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
