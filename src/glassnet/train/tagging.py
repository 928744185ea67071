"""The ``tag`` task (sequence labelling): per-step cross-entropy, token accuracy and macro-F1 over tags.

Inputs are sequences ``N x T`` (token ids) or ``N x T x C``; targets are tag ids ``N x T`` with
``ignore_index`` (-100, PyTorch's default) at padding; models return logits ``N x T x K``, one
prediction per step. Padding never counts: not in the loss, not in any metric.
"""

from __future__ import annotations

from typing import Any

import torch

from glassnet.data.bundle import split_tensors
from glassnet.data.spec import DataSpec
from glassnet.data.tagging import render_tags, rule_baseline
from glassnet.errors import DataError
from glassnet.train.baselines import Baseline, register_baselines
from glassnet.train.tasks import TaskContext, TokenTask, register_task

IGNORE_INDEX = -100


@register_task
class Tagging(TokenTask):
    """One class per time step, scored over the steps that are not padding.

    Metrics:
        ``loss``: mean cross-entropy per tagged step (nats).
        ``accuracy``: share of tagged steps whose tag is right (token accuracy).
        ``macro_f1``: F1 of each tag (one against the rest), averaged over the tags that occur in
            the targets or the predictions (as scikit-learn's ``f1_score(average="macro")``).
        ``sequence_accuracy``: share of sequences with every tagged step right.

    Args:
        ignore_index: the target id of padding steps.
    """

    name = "tag"
    monitor_modes = {"loss": "min", "accuracy": "max", "macro_f1": "max", "sequence_accuracy": "max"}
    headline_metrics = ("accuracy", "macro_f1")
    ignore_index = IGNORE_INDEX

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss``, ``accuracy``, ``macro_f1`` and ``sequence_accuracy`` (see the class docstring).

        Raises:
            DataError: the shapes do not match, or every target is padding.
        """
        self.align(outputs, targets)
        scores = tag_metrics(outputs.argmax(dim=2), targets, outputs.shape[2], self.ignore_index)
        return {"loss": self.loss(outputs.float(), targets).item(), **scores}

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The most likely tag of each step ``N x T``, its probability, and all probabilities ``N x T x K``."""
        probabilities = outputs.float().softmax(dim=2)
        confidence, prediction = probabilities.max(dim=2)
        return {"prediction": prediction, "confidence": confidence, "probabilities": probabilities}

    def confusion_matrix(self, outputs: torch.Tensor, targets: torch.Tensor) -> list[list[int]]:
        """Counts over the tagged steps, true tags as rows and predicted tags as columns."""
        self.align(outputs, targets)
        return tag_confusion(outputs.argmax(dim=2), targets, outputs.shape[2], self.ignore_index).tolist()

    def align(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The targets, checked: ``N x T`` tag ids in range (or padding) for ``N x T x K`` logits."""
        super().align(outputs, targets)
        tagged = targets[targets != self.ignore_index]
        if len(tagged) and (tagged.min() < 0 or tagged.max() >= outputs.shape[2]):
            raise DataError(
                f"tag ids must be in 0..{outputs.shape[2] - 1} (or {self.ignore_index} for padding). "
                f"Received ids from {int(tagged.min())} to {int(tagged.max())}"
            )
        return targets

    def details(self, context: TaskContext) -> None:
        """Confusion matrix, per-tag scores, baselines (majority tag, sentence-start rule) and example rows."""
        tagging_details(context)

    def comparison_metric(self, bundle: Any) -> str:
        """Tags are unbalanced (most characters are lower case): compared on macro-F1, not accuracy."""
        return "macro_f1"

    def records(
        self, spec: DataSpec, inputs: torch.Tensor, predictions: Any, truth: torch.Tensor | None
    ) -> list[dict[str, Any]]:
        """One record per row: the re-cased text (or the tag names), and the true one with ``truth``."""
        return tag_records(spec, inputs, predictions.prediction, truth)


def tag_confusion(
    predicted: torch.Tensor, targets: torch.Tensor, num_tags: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """int64 counts ``num_tags x num_tags`` over the tagged steps (true rows, predicted columns)."""
    valid = targets != ignore_index
    pairs = targets[valid].long() * num_tags + predicted[valid].long()
    return torch.bincount(pairs, minlength=num_tags * num_tags).reshape(num_tags, num_tags)


def tag_metrics(
    predicted: torch.Tensor, targets: torch.Tensor, num_tags: int, ignore_index: int = IGNORE_INDEX
) -> dict[str, float]:
    """``accuracy``, ``macro_f1`` and ``sequence_accuracy`` of predicted tag ids ``N x T`` (see ``Tagging``).

    Also scores predictions that do not come from a model (e.g. a rule), so baselines and models
    are measured alike.

    Raises:
        DataError: the shapes differ or every target is padding.
    """
    if predicted.shape != targets.shape:
        raise DataError(f"predicted tags {tuple(predicted.shape)} and targets {tuple(targets.shape)} differ in shape")
    valid = targets != ignore_index
    if not valid.any():
        raise DataError(f"every target is padding ({ignore_index}); there is nothing to score")
    matrix = tag_confusion(predicted, targets, num_tags, ignore_index).double()
    right = (predicted == targets) | ~valid
    return {
        "accuracy": (matrix.diagonal().sum() / matrix.sum()).item(),
        "macro_f1": float(per_tag_scores(matrix)["f1"][_present(matrix)].mean()),
        "sequence_accuracy": right.all(dim=1).double().mean().item(),
    }


def per_tag_scores(matrix: Any) -> dict[str, torch.Tensor]:
    """Precision, recall, F1 and support of each tag from a confusion matrix (true rows, predicted columns).

    A score whose denominator is zero is 0, as in scikit-learn with ``zero_division=0``.
    """
    counts = torch.as_tensor(matrix, dtype=torch.float64)
    hits = counts.diagonal()
    predicted, actual = counts.sum(dim=0), counts.sum(dim=1)
    precision = hits / predicted.clamp_min(1)
    recall = hits / actual.clamp_min(1)
    f1 = 2 * hits / (predicted + actual).clamp_min(1)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def _present(matrix: torch.Tensor) -> torch.Tensor:
    """Tags that occur among the targets or the predictions."""
    return (matrix.sum(dim=0) + matrix.sum(dim=1)) > 0


EXAMPLES = 8


def tagging_details(context: TaskContext) -> None:
    """Add the test split's confusion matrix, per-tag scores, baselines and examples to the results.

    Writes ``figures/confusion_matrix.png``. ``results["test"]`` gains ``confusion_matrix`` (true
    tags as rows) and ``per_tag`` (precision, recall, F1, support of each tag);
    ``results["baselines"]`` scores what needs no learning on the same steps: ``majority`` (the
    most frequent training tag everywhere) and, for truecasing, ``rule`` (capitalise sentence
    starts and "i"); ``results["examples"]`` holds test rows as text with the true and predicted tags.
    """
    from glassnet.figures import training as figures

    run, bundle, predictions, results = context.run, context.bundle, context.predictions, context.results
    spec = bundle.spec
    inputs, targets = split_tensors(bundle.test)
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


def baselines(spec: DataSpec, bundle: Any, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    """Scores of the majority tag and (truecase) the sentence-start rule on ``targets``."""
    _, train_targets = split_tensors(bundle.train)
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


@register_baselines("tag")
def _tag_baselines(spec: DataSpec, bundle: Any) -> list[Baseline]:
    """The majority tag everywhere and, for truecasing, the sentence-start rule."""

    def score(predict: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return tag_metrics(predict(x), y, spec.num_outputs)

    def majority(x: torch.Tensor, y: torch.Tensor) -> Any:
        tagged = y[y != IGNORE_INDEX]
        tag = int(torch.bincount(tagged, minlength=spec.num_outputs).argmax())
        return lambda inputs: torch.full(inputs.shape[:2], tag, dtype=torch.long)

    candidates = [Baseline("majority", "the most frequent training tag everywhere", majority, floor=True, score=score)]
    if spec.modality == "text" and spec.extra.get("tag_scheme") == "truecase":
        candidates.insert(
            0,
            Baseline(
                "rule",
                "capitalise the first letter of the text, of each sentence and the word 'i'",
                lambda x, y: lambda inputs: rule_baseline(spec, inputs),
                score=score,
            ),
        )
    return candidates
