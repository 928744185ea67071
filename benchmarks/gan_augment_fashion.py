"""Generated images as training data: a classifier on a small labelled subset of Fashion-MNIST with and
without images drawn from a class-conditional GAN trained on the same subset (issue 14, "augmentation").

    GLASSNET_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/gan_augment_fashion.py \
        [--labels-per-class 100] [--gan-epochs 60] [--epochs 30] [--generated-per-class 100 500] [--json out.json]

1. ``cgan`` is trained on the labelled subset only (``data.labels_per_class=N``: the generator sees
   no image or label the classifier does not), with glassnet's defaults.
2. The default ``cnn`` is trained on the same N images per class, then again with
   ``data.generated=RUN data.generated_per_class=M`` for each M, same epochs and seed. The best
   epoch is picked on the real validation split; accuracy is measured on the real 10,000-image
   test split. A last row adds ordinary augmentation (``augment.hflip=0.5 augment.crop=2``) as the
   cheap alternative every practitioner tries first.

Prints the generator's FID (in glassnet's classifier features) and each classifier's test
accuracy with its gain over the real-only classifier.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import glassnet as gn


def train(out: Path, **settings) -> dict:
    start = time.perf_counter()
    run = gn.train(gn.RunConfig(baseline=False, **settings), out=out)
    results = json.loads((Path(run.path) / "results" / "train.json").read_text())
    return {"test": results["test"], "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels-per-class", type=int, default=100)
    parser.add_argument("--gan-epochs", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--generated-per-class", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    few = {"labels_per_class": args.labels_per_class}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        gan = Path(tmp) / "cgan"
        generator = train(
            gan, data="fashion-mnist", model="cgan", data_args=few, epochs=args.gan_epochs, seed=args.seed
        )
        scores = generator["test"]
        print(
            f"cgan on {10 * args.labels_per_class} images, {args.gan_epochs} epochs: FID {scores.get('fid')} "
            f"(classifier features), agreement {scores.get('agreement')}, {generator['seconds']} s",
            flush=True,
        )
        common = {"data": "fashion-mnist", "model": "cnn", "epochs": args.epochs, "seed": args.seed}
        contenders = [("real only", {}, {})]
        contenders += [
            (f"+ {m} generated per class", {"generated": str(gan), "generated_per_class": m}, {})
            for m in args.generated_per_class
        ]
        contenders.append(("real + flip/crop augmentation", {}, {"hflip": 0.5, "crop": 2}))
        for index, (name, extra, augment) in enumerate(contenders):
            result = train(Path(tmp) / f"cls{index}", data_args={**few, **extra}, augment=augment, **common)
            rows.append({"contender": name, "test_accuracy": result["test"]["accuracy"], "seconds": result["seconds"]})
            print(f"  {name:<34} test accuracy {result['test']['accuracy']:.4f}  ({result['seconds']} s)", flush=True)
    base = rows[0]["test_accuracy"]
    print(f"\n{'contender':<34} {'test acc':>8}  gain")
    for row in rows:
        print(f"{row['contender']:<34} {row['test_accuracy']:>8.4f}  {100 * (row['test_accuracy'] - base):+.1f} points")
    if args.json:
        payload = {"settings": vars(args), "generator": generator, "results": rows}
        Path(args.json).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
