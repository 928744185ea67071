"""DDIM in few steps against the full schedule: FID of one trained ``ddpm`` run by sampler and step count.

    .venv/bin/python benchmarks/ddpm_sampling.py [--data digits] [--epochs 40] [--width 32] \
        [--run RUN] [--steps 10 25 50 100] [--json out.json]

Trains ``ddpm`` on ``--data`` (or takes the trained ``--run``), then draws one image for each of
the evaluation's real test images (the same classes, the same seed) with

- each of ``--steps`` step counts with each of ``--etas`` (0: deterministic DDIM; 1: as much fresh
  noise per step as DDPM), and DDIM in all T steps;
- the original DDPM ancestral sampler (``eta=1``) over all T steps: "the full schedule" (both T-step
  samplers are skipped with ``--no-full``);

and measures FID and KID against the test images in the features of the run's own feature
classifier (``RUN/feature_classifier``, the one ``results/generate.json`` used: not Inception
features), the seconds each sampler takes, and the FID ratio to the full schedule. The issue's goal:
DDIM in <= 50 steps within 10% of the full schedule's FID. Also times ``glassnet generate``'s
default (64 images, the model's ``sample_steps``).
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


def draw(model, labels, seed, **options) -> tuple[torch.Tensor, float]:
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    parts = [
        model.sample(len(part), labels=part if model.conditional else None, generator=generator, **options)
        for part in labels.split(500)
    ]
    return torch.cat(parts), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--run", default=None, help="a trained ddpm run (skips training)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100])
    parser.add_argument("--etas", type=float, nargs="+", default=[0.0, 1.0], help="0: DDIM, 1: DDPM's noise")
    parser.add_argument("--no-full", action="store_true", help="skip the T-step samplers (slow on large images)")
    parser.add_argument("--keep", default=None, help="train into this folder and keep the run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.run or args.keep or Path(tmp) / "ddpm")
        if not args.run:
            start = time.perf_counter()
            config = gn.RunConfig(
                data=args.data, model="ddpm", model_args={"width": args.width}, epochs=args.epochs, seed=args.seed
            )
            gn.train(config, out=path)
            print(f"trained ddpm on {args.data}, {args.epochs} epochs: {time.perf_counter() - start:.0f} s", flush=True)
        run = gn.Run.open(path)
        model = run.model.cpu().eval()
        bundle = run.data()
        test_x, test_y = split_tensors(bundle.test)
        chosen = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(args.seed))[:MAX_SAMPLES]
        real, labels = test_x[chosen].float(), test_y[chosen].long()
        classifier, _ = load_model(path / CLASSIFIER_DIR)
        extractor = FeatureExtractor(classifier.eval())
        T = model.timesteps
        samplers = [
            (f"{k} steps, eta {eta:g}", {"steps": k, "eta": eta}) for k in args.steps if k < T for eta in args.etas
        ]
        if not args.no_full:
            samplers += [
                (f"DDIM {T} steps", {"steps": T, "eta": 0.0}),
                (f"DDPM {T} steps (full)", {"steps": T, "eta": 1.0}),
            ]
        rows = []
        for name, options in samplers:
            fake, seconds = draw(model, labels, args.seed, **options)
            scores = _distances(extractor, real, fake, args.seed)
            rows.append({"sampler": name, **options, "fid": scores["fid"], "kid": scores["kid"], "seconds": seconds})
            print(f"{name:24s} FID {scores['fid']:8.2f}  KID {scores['kid']:8.3f}  {seconds:7.1f} s", flush=True)
        full = rows[-1]["fid"] if not args.no_full else None
        start = time.perf_counter()
        gn.generate(path, 64)
        default_s = time.perf_counter() - start
    print(f"\n{len(real)} images each; FID in the run's feature-classifier space; ratio to the full schedule:")
    print(f"{'sampler':24s} {'FID':>8s} {'/ full':>7s} {'seconds':>8s}")
    for row in rows:
        row["ratio_to_full"] = round(row["fid"] / full, 3) if full else None
        ratio = f"{row['ratio_to_full']:7.3f}" if full else "      -"
        print(f"{row['sampler']:24s} {row['fid']:8.2f} {ratio} {row['seconds']:8.1f}")
    print(f"gn.generate(run, 64) with the default {model.sample_steps} steps: {default_s:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "generate_64_s": default_s, "data": args.data}, indent=2))


if __name__ == "__main__":
    main()
