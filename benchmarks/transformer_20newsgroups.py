"""Benchmark: the ``transformer`` model on 20 Newsgroups against TF-IDF + linear SVM on the same test posts.

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/transformer_20newsgroups.py \\
        [--epochs 10] [--max-length 256] [--d-model 128] [--layers 2] [--heads 4] [--device auto]

The transformer trains with glassnet's Trainer on the official training posts less a stratified 15 %
validation split (the epoch with the best validation accuracy is kept) and is scored on the official
7,528 test posts. The baseline (scikit-learn's TfidfVectorizer with sublinear tf + LinearSVC, no
tuning) reads the same CSV files with pandas and trains on all 11,293 training posts. The script
prints both test accuracies, their gap, the times, and whether the issue's bar (transformer test
accuracy >= 0.75) is met; the last line is the same figures as JSON, for docs/models.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score
from sklearn.svm import LinearSVC

import glassnet as gn
import glassnet.models.transformer  # noqa: F401  (registers "transformer" until glassnet.models imports it)
from glassnet.data.locate import find_data
from glassnet.data.text import NEWSGROUPS_FILES

BAR = 0.75


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (the best on validation is kept)")
    parser.add_argument("--max-length", type=int, default=256, help="tokens kept per post (the rest is cut)")
    parser.add_argument("--d-model", type=int, default=128, help="the transformer's feature size")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (must divide --d-model)")
    parser.add_argument("--layers", type=int, default=2, help="encoder layers")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout in the encoder and before the head")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--seed", type=int, default=0, help="seeds initialisation and shuffling")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    return parser.parse_args()


def train_transformer(args: argparse.Namespace) -> dict[str, Any]:
    """Load 20 Newsgroups as token ids, train ``transformer`` and score it on the test posts."""
    start = time.perf_counter()
    bundle = gn.load_dataset("20newsgroups", max_length=args.max_length)
    load_s = time.perf_counter() - start
    torch.manual_seed(args.seed)
    best = gn.BestModel(monitor="val/accuracy")
    model = gn.create_model(
        "transformer", bundle.spec, d_model=args.d_model, heads=args.heads, layers=args.layers, dropout=args.dropout
    )
    trainer = gn.Trainer(
        task=bundle.spec.task,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        callbacks=[best],
    )
    fit = trainer.fit(model, bundle)
    test = trainer.evaluate(model, bundle.test)
    for record in fit.history:
        print(f"  epoch {record['epoch']:>2}: train loss {record['train/loss']:.3f}, "
              f"val accuracy {record['val/accuracy']:.3f} ({record['time_s']:.0f} s)")  # fmt: skip
    return {
        "accuracy": round(test["accuracy"], 4),
        "macro_f1": round(test["macro_f1"], 4),
        "best_epoch": best.best_epoch,
        "train_s": round(fit.train_time_s, 1),
        "load_s": round(load_s, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(trainer.device),
    }


def tfidf_svm() -> dict[str, Any]:
    """The classical baseline on the raw texts: TF-IDF (sublinear tf, words seen twice) + LinearSVC."""
    start = time.perf_counter()
    train, test = (read_posts(relative) for relative in NEWSGROUPS_FILES)
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2)
    classifier = LinearSVC().fit(vectorizer.fit_transform(train["text"]), train["label"])
    predicted = classifier.predict(vectorizer.transform(test["text"]))
    return {
        "accuracy": round(float(accuracy_score(test["label"], predicted)), 4),
        "time_s": round(time.perf_counter() - start, 1),
    }


def read_posts(relative: str) -> pd.DataFrame:
    """One of the 20 Newsgroups CSV files (``label``, ``text``), as glassnet finds it."""
    path: Path | None = find_data(relative)
    if path is None:
        raise SystemExit(f"'{relative}' not found: set GLASSNET_DATA to the folder that holds it (../shared/data)")
    return pd.read_csv(path, usecols=["label", "text"], dtype={"label": str, "text": str}, keep_default_na=False)


def main() -> None:
    args = parse_args()
    print(f"transformer d_model={args.d_model} heads={args.heads} layers={args.layers} "
          f"max_length={args.max_length} epochs={args.epochs}")  # fmt: skip
    net = train_transformer(args)
    baseline = tfidf_svm()
    gap = round(baseline["accuracy"] - net["accuracy"], 4)
    print(f"transformer      test accuracy {net['accuracy']:.4f}  (macro-F1 {net['macro_f1']:.4f}, "
          f"{net['parameters']:,} parameters, trained in {net['train_s']:.0f} s on {net['device']}, "
          f"data loaded in {net['load_s']:.0f} s)")  # fmt: skip
    print(f"TF-IDF + SVM     test accuracy {baseline['accuracy']:.4f}  ({baseline['time_s']:.0f} s)")
    verdict = "met" if net["accuracy"] >= BAR else "NOT met"
    print(f"gap (baseline - transformer): {gap:+.4f}; bar test accuracy >= {BAR}: {verdict}")
    print(json.dumps({"args": vars(args), "transformer": net, "tfidf_svm": baseline, "gap": gap}))


if __name__ == "__main__":
    main()
