"""Benchmark: a per-character tagger (``tag`` task) restoring capitals against truecasing baselines.

    GLASSNET_DATA=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tagging_truecase.py \\
        [--model gru] [--max-texts 38158] [--epochs 4] [--hidden 128] [--embedding-dim 32] [--lr 0.005]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tagging_truecase.py --data truecase-generated --n 1000 \\
        --max-length 64 --model transformer --d-model 64 --layers 2 --lr 0.003 --epochs 25

Data: ``truecase`` (the sentiment corpus' short texts, lower-cased; one tag per character: lower,
upper, other), split by text 70/15/15 with seed 0; or ``truecase-generated`` (``--data``), which
needs no files. The tagger trains with glassnet's Trainer (the
epoch with the best validation macro-F1 is kept) and is scored on the test split's characters.
Baselines, scored on the same characters:

- ``majority``: every character tagged ``lower``;
- ``rule``: capitalise the first letter of each text and sentence and the word "i";
- ``word_case``: the classic unigram truecaser: each word takes the casing it has most often in
  the training texts (per character), sentence starts and "i" capitalised as by the rule; words
  never seen in training fall back to the rule.

Prints each predictor's token accuracy, macro-F1 and F1 of the ``upper`` tag, and the model's
ratios to the best baseline; the last line is the same figures as JSON, for docs/models.md.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter, defaultdict

import torch

import glassnet as gn
from glassnet.data.tagging import IGNORE_INDEX, UPPER, decode_chars, rule_baseline
from glassnet.train import BestModel, Trainer, seed_everything
from glassnet.train.tagging import per_tag_scores, tag_confusion, tag_metrics

WORD = re.compile(r"[^\W\d_]+")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gru", help="rnn, lstm, gru or transformer")
    parser.add_argument("--data", default="truecase", choices=["truecase", "truecase-generated"])
    parser.add_argument("--max-texts", type=int, default=None, help="truecase: texts used (all 38,158 by default)")
    parser.add_argument("--n", type=int, default=2000, help="truecase-generated: number of texts")
    parser.add_argument("--max-length", type=int, default=None, help="characters per row (the dataset's default)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=128, help="hidden units per direction (RNNs)")
    parser.add_argument("--embedding-dim", type=int, default=32, help="character embedding size (RNNs)")
    parser.add_argument("--d-model", type=int, default=64, help="transformer feature size")
    parser.add_argument("--layers", type=int, default=2, help="transformer layers")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def word_case_baseline(bundle: gn.DataBundle, inputs: torch.Tensor) -> torch.Tensor:
    """Most frequent training casing of each word (per character), over the sentence-start rule."""
    vocab = bundle.spec.extra["vocab"]
    train_x, train_y = bundle.train.tensors
    votes: dict[str, Counter] = defaultdict(Counter)
    for text, tags in zip(decode_chars(train_x, vocab), train_y.tolist()):
        for match in WORD.finditer(text):
            if match.start() == 0 or text[: match.start()].rstrip()[-1:] in ".!?":
                continue  # a sentence start says nothing about the word's own casing
            votes[match.group()][tuple(tags[match.start() : match.end()])] += 1
    casing = {word: counts.most_common(1)[0][0] for word, counts in votes.items()}
    guess = rule_baseline(bundle.spec, inputs)
    for row, text in enumerate(decode_chars(inputs, vocab)):
        for match in WORD.finditer(text):
            seen = casing.get(match.group())
            if seen is None:
                continue
            span = guess[row, match.start() : match.end()]
            # keep the rule's capital at a sentence start; take the word's usual casing elsewhere
            guess[row, match.start() : match.end()] = (
                torch.maximum(span, torch.tensor(seen)) if span[0] == UPPER else torch.tensor(seen)
            )
    return guess


def scores(predicted: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    metrics = tag_metrics(predicted, targets, 3)
    upper_f1 = float(per_tag_scores(tag_confusion(predicted, targets, 3))["f1"][UPPER])
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "upper_f1": round(upper_f1, 4),
    }


def main() -> None:
    args = parse_args()
    options = {"max_texts": args.max_texts} if args.data == "truecase" else {"n": args.n}
    if args.max_length is not None:
        options["max_length"] = args.max_length
    bundle = gn.load_dataset(args.data, **options)
    inputs, targets = bundle.test.tensors
    print(
        f"{args.data}: {len(bundle.train):,} train / {len(bundle.val):,} val / {len(bundle.test):,} test rows of "
        f"{bundle.spec.input_shape[0]} characters; {int((targets != IGNORE_INDEX).sum()):,} test characters"
    )
    figures = {
        "majority": scores(torch.zeros_like(targets).masked_fill(targets == IGNORE_INDEX, IGNORE_INDEX), targets),
        "rule": scores(rule_baseline(bundle.spec, inputs), targets),
        "word_case": scores(word_case_baseline(bundle, inputs), targets),
    }
    if args.model == "transformer":
        hparams = {"d_model": args.d_model, "layers": args.layers}
    else:
        hparams = {"hidden": args.hidden, "embedding_dim": args.embedding_dim}
    seed_everything(args.seed)
    model = gn.create_model(args.model, bundle.spec, **hparams)
    best = BestModel(monitor="val/macro_f1")
    trainer = Trainer(
        task="tag", max_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, callbacks=[best]
    )
    start = time.perf_counter()
    trainer.fit(model, bundle)
    seconds = time.perf_counter() - start
    predicted = trainer.predict(model, bundle.test).prediction
    figures[args.model] = {
        **scores(predicted, targets),
        "train_time_s": round(seconds, 1),
        "best_epoch": best.best_epoch,
    }
    for name, values in figures.items():
        print(f"{name:<10} " + "  ".join(f"{k} {v}" for k, v in values.items()))
    reference = max(("rule", "word_case"), key=lambda name: figures[name]["macro_f1"])
    for key in ("macro_f1", "upper_f1"):
        ratio = figures[args.model][key] / max(figures[reference][key], 1e-9)
        print(f"{args.model} {key} / best baseline ({reference}): {ratio:.3f}")
    print(json.dumps({"args": vars(args), "figures": figures}))


if __name__ == "__main__":
    main()
