"""The classical baseline of each dataset in docs/models.md's table of figures, as the runs compute it.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/baselines.py [--only NAME ...]

For each row, loads the dataset with the options of the run the table quotes and calls
``glassnet.train.baselines.fit_baselines``, the function every ``glassnet train`` calls after
training (the baseline depends on the data and the seed only, not on the network), and prints the
chosen baseline, its test metrics, its fit time, and the training examples it used.
"""

from __future__ import annotations

import argparse
import time

import glassnet as gn
from glassnet.train.baselines import fit_baselines
from glassnet.train.reconstruction import reconstruction_bundle
from glassnet.train.tasks import get_task

ROWS = {
    "breast-cancer": ("breast-cancer", {}),
    "fashion-mnist": ("fashion-mnist", {}),
    "sentiment": ("sentiment", {}),
    "20newsgroups": ("20newsgroups", {"max_length": 128}),  # the transformer row reads the first 128 tokens
    "sunspots": ("sunspots", {}),
    "truecase": ("truecase", {"max_texts": 3000}),
    "truecase-generated": ("truecase-generated", {"n": 1000, "max_length": 64}),
    "20newsgroups-chars": ("20newsgroups-chars", {"max_chars": 500_000}),
    "digits (anomalies)": ("digits", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(ROWS), help="rows to compute (default: all)")
    args = parser.parse_args()
    for row in args.only or list(ROWS):
        name, options = ROWS[row]
        bundle = gn.load_dataset(name, **options)
        if row == "digits (anomalies)":  # the autoencoder's anomaly detection on digits, normal classes 0-4
            bundle = reconstruction_bundle(bundle, normal_classes=[0, 1, 2, 3, 4])
        start = time.perf_counter()
        block = fit_baselines(get_task(bundle.spec.task), bundle)
        total = time.perf_counter() - start
        if "skipped" in block:
            print(f"{row}: no baseline ({block['skipped']})")
            continue
        shown = ", ".join(f"{k} {v:.4f}" for k, v in block["test"].items())
        sample = f" of {block['subsampled_from']:,}" if block["subsampled_from"] else ""
        print(
            f"{row}: {block['description']}: test {shown}; fit {block['fit_time_s']:.1f} s "
            f"({block['train_examples']:,}{sample} training examples; all candidates {total:.1f} s)"
        )


if __name__ == "__main__":
    main()
