"""Test details of a sequence-labelling (``tag``) run: per-tag scores, baselines, examples and predictions."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import TensorDataset

from glassnet.data import DataBundle, DataSpec
from glassnet.data.tagging import IGNORE_INDEX, render_tags, rule_baseline
from glassnet.report import figures
from glassnet.runs import RunDir
from glassnet.train.tagging import Tagging, per_tag_scores, tag_metrics

EXAMPLES = 8


def tagging_details(run: RunDir, bundle: DataBundle, predictions: Any, results: dict[str, Any]) -> None:
    """Add the test split's confusion matrix, per-tag scores, baselines and examples to ``results``.

    Writes ``figures/confusion_matrix.png``. ``results["test"]`` gains ``confusion_matrix`` (true
    tags as rows) and ``per_tag`` (precision, recall, F1, support of each tag);
    ``results["baselines"]`` scores what needs no learning on the same steps: ``majority`` (the
    most frequent training tag everywhere) and, for truecasing, ``rule`` (capitalise sentence
    starts and "i"); ``results["examples"]`` holds test rows as text with the true and predicted tags.
    """
    spec = bundle.spec
    inputs, targets = _tensors(bundle.test)
    names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
    matrix = Tagging(int(spec.extra.get("ignore_index", IGNORE_INDEX))).confusion_matrix(predictions.outputs, targets)
    results["test"]["confusion_matrix"] = matrix
    figures.confusion_matrix(matrix, names, run.figure("confusion_matrix"))
    scores = per_tag_scores(matrix)
    results["test"]["per_tag"] = {
        name: {key: round(float(scores[key][i]), 6) for key in ("precision", "recall", "f1")}
        | {"support": int(scores["support"][i])}
        for i, name in enumerate(names)
    }
    results["baselines"] = baselines(spec, bundle, inputs, targets)
    results["examples"] = examples(spec, inputs, targets, predictions.prediction)


def baselines(spec: DataSpec, bundle: DataBundle, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    """Scores of the majority tag and (truecase) the sentence-start rule on ``targets``."""
    _, train_targets = _tensors(bundle.train)
    tagged = train_targets[train_targets != IGNORE_INDEX]
    majority = int(torch.bincount(tagged, minlength=spec.num_outputs).argmax())
    guesses = {"majority": torch.full_like(targets, majority)}
    rule = rule_baseline(spec, inputs) if spec.modality == "text" else None
    if rule is not None:
        guesses["rule"] = rule
    out: dict[str, Any] = {}
    for name, guess in guesses.items():
        metrics = tag_metrics(guess, targets, spec.num_outputs)
        out[name] = {k: round(v, 6) for k, v in metrics.items()}
    out["majority"]["tag"] = spec.class_names[majority] if spec.class_names else majority
    if "rule" in out:
        out["rule"]["description"] = "capitalise the first letter of the text, of each sentence and the word 'i'"
    return out


def examples(spec: DataSpec, inputs: torch.Tensor, targets: torch.Tensor, predicted: torch.Tensor) -> list[dict]:
    """Up to ``EXAMPLES`` test rows, half with mistakes, as ``{index, true, predicted, errors}``."""
    valid = targets != IGNORE_INDEX
    errors = ((predicted != targets) & valid).sum(dim=1)
    wrong = torch.nonzero(errors > 0).flatten()[: EXAMPLES // 2]
    right = torch.nonzero(errors == 0).flatten()[: EXAMPLES - len(wrong)]
    chosen = sorted(int(i) for i in torch.cat([wrong, right]))
    if not chosen:
        return []
    rows = torch.tensor(chosen)
    true_text = render_tags(spec, inputs[rows], targets[rows])
    predicted_text = render_tags(spec, inputs[rows], predicted[rows].masked_fill(~valid[rows], IGNORE_INDEX))
    return [
        {"index": i, "true": t, "predicted": p, "errors": int(errors[i])}
        for i, t, p in zip(chosen, true_text, predicted_text)
    ]


def tag_records(
    spec: DataSpec, inputs: torch.Tensor, predicted: torch.Tensor, truth: torch.Tensor | None
) -> list[dict[str, Any]]:
    """One record per row: ``prediction`` (re-cased text, or the tag names) and ``true`` when ``truth`` is given.

    Steps that are padding in the inputs are not shown.
    """
    if spec.modality == "text":
        padding = inputs == int(spec.extra.get("pad_index", 0))
        predicted = predicted.masked_fill(padding, IGNORE_INDEX)
    shown = render_tags(spec, inputs, predicted)
    records = [{"prediction": text} for text in shown]
    if truth is not None:
        for record, text in zip(records, render_tags(spec, inputs, truth)):
            record["true"] = text
    return records


def _tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, TensorDataset):
        return data.tensors[0], data.tensors[1]
    pairs = [data[i] for i in range(len(data))]
    return torch.stack([torch.as_tensor(p[0]) for p in pairs]), torch.stack([torch.as_tensor(p[1]) for p in pairs])
