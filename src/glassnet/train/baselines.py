"""Classical baselines: is the network worth it?

Every supervised run also fits classical models on the same training split and scores them with
the task's own metrics on the same validation and test examples: scikit-learn's logistic regression
or ridge on the standardised inputs (tables, pixels, spectrograms, windows), TF-IDF word 1-2 grams
and a linear model for text, persistence and seasonal-naive forecasts, PCA reconstruction, unigram
and bigram language models, the majority tag and rules for tagging, and always a trivial predictor
(the majority class, the training mean). The candidate that is best on the validation split is
*the* baseline; the network's test figure is compared with its test figure and the verdict (beats,
ties, trails) goes into ``results/train.json`` (``baseline``), the command line and the report.

Candidates come from a registry per task (``register_baselines``), so a new task brings its own.
Fitting is bounded: above ``MAX_CELLS`` training values (examples x features) a seeded subsample of
the training split is fitted, and the block records how many examples were used.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from glassnet.data.bundle import DataBundle, split_tensors
from glassnet.data.spec import DataSpec
from glassnet.data.subword import SUBWORD, from_spec_extra
from glassnet.errors import DataError
from glassnet.train.tasks import Task

MAX_CELLS = 10_000_000  # training examples x features a baseline is fitted on, at most
TIE_POINTS = 0.005  # bounded metrics (accuracy, F1, AUROC): closer than half a point is a tie ...
TIE_RELATIVE = 0.01  # ... error metrics (MAE, RMSE, perplexity): closer than 1% is a tie

Predictor = Callable[[torch.Tensor], Any]


@dataclass
class Baseline:
    """One classical candidate.

    Attributes:
        name: a short identifier (``logistic_regression``).
        description: what it is, in words for the report.
        fit: ``fit(x_train, y_train) -> predict``; ``predict(x)`` returns outputs the task scores
            like a network's (logits, log-probabilities, values, reconstructions).
        floor: a trivial predictor (majority class, training mean): listed, never *the* baseline
            when another candidate exists.
        score: ``score(predict, x, y) -> metrics`` when the task's metrics do not apply to the
            outputs as they are (a rule's tags, a language model's perplexity without V-wide logits).
    """

    name: str
    description: str
    fit: Callable[[torch.Tensor, torch.Tensor], Predictor]
    floor: bool = False
    score: Callable[[Predictor, torch.Tensor, torch.Tensor], dict[str, float]] | None = None


Candidates = Callable[[DataSpec, DataBundle], list[Baseline]]
_CANDIDATES: dict[str, Candidates] = {}


def register_baselines(task: str) -> Callable[[Candidates], Candidates]:
    """Register ``candidates(spec, bundle) -> [Baseline, ...]`` for the task called ``task``."""

    def decorate(candidates: Candidates) -> Candidates:
        _CANDIDATES[task] = candidates
        return candidates

    return decorate


def comparison_metric(task: Task, bundle: DataBundle) -> str:
    """The metric a task's network and baseline are compared on (the task's first headline metric)."""
    chooser = getattr(task, "comparison_metric", None)
    return chooser(bundle) if callable(chooser) else task.headline_metrics[0]


def fit_baselines(
    task: Task, bundle: DataBundle, network: dict[str, float] | None = None, seed: int = 0
) -> dict[str, Any]:
    """Fit the task's candidates on ``bundle.train``; score them on ``val`` and ``test``; compare.

    Args:
        task: the run's task (its metrics and directions).
        bundle: the data the network trained on (the same splits).
        network: the network's test metrics, for the comparison (None: no comparison).
        seed: seeds the subsample of large training splits.

    Returns:
        The ``baseline`` block of ``results/train.json``: the chosen baseline's name, description,
        ``val`` and ``test`` metrics, fit time, training examples used, every candidate, and
        ``comparison`` (metric, both values, difference, verdict); or ``{"skipped": reason}``.
    """
    own = getattr(task, "baselines", None)
    if callable(own):  # a task whose baseline is not a model fitted on examples (an agent's: a random policy)
        return own(bundle, network, seed)
    spec = bundle.spec
    if task.name not in _CANDIDATES:
        return {"skipped": f"no classical baseline is defined for the {task.name} task"}
    candidates = _CANDIDATES[task.name](spec, bundle)
    if not candidates:
        return {"skipped": f"no classical baseline applies to this {spec.modality} {task.name} data"}
    _import_scikit_learn()  # once, outside the timed fits
    x, y = split_tensors(bundle.train)
    used, total = _subsample(x, seed)
    x, y = x[used], y[used]
    metric = comparison_metric(task, bundle)
    mode = task.mode(metric)
    records = []
    for candidate in candidates:
        start = time.perf_counter()
        with warnings.catch_warnings():  # convergence and constant-label notices; the scores say how it went
            warnings.simplefilter("ignore")
            predict = candidate.fit(x, y)
        fitted = time.perf_counter() - start
        scores = {split: _score(task, candidate, predict, bundle, split) for split in ("val", "test")}
        records.append(
            {
                "name": candidate.name,
                "description": candidate.description,
                "floor": candidate.floor,
                "fit_time_s": round(fitted, 3),
                **scores,
            }  # fmt: skip
        )
    chosen = _choose(records, metric, mode)
    block = {
        "name": chosen["name"],
        "description": chosen["description"],
        "val": chosen["val"],
        "test": chosen["test"],
        "fit_time_s": chosen["fit_time_s"],
        "train_examples": len(used),
        "subsampled_from": total if len(used) < total else None,
        "chosen_on": "val" if chosen["val"] else "first candidate (no validation split)",
        "candidates": records,
    }
    if network is not None:
        block["comparison"] = compare(network, chosen["test"], metric, mode, len(bundle.test))
    return block


def compare(network: dict[str, float], baseline: dict[str, float], metric: str, mode: str, examples: int) -> dict:
    """How the network's ``metric`` stands against the baseline's: ``beats``, ``ties`` or ``trails``.

    Bounded metrics tie within ``max(TIE_POINTS, 1 / examples)`` (one test example); error metrics
    within ``TIE_RELATIVE`` of the baseline's value.
    """
    mine, theirs = network.get(metric), baseline.get(metric)
    if mine is None or theirs is None or not (math.isfinite(mine) and math.isfinite(theirs)):
        return {"metric": metric, "verdict": None, "reason": f"{metric} is missing for the network or the baseline"}
    difference = mine - theirs
    better = difference if mode == "max" else -difference
    bounded = 0.0 <= mine <= 1.0 and 0.0 <= theirs <= 1.0 and mode == "max"
    band = max(TIE_POINTS, 1.0 / max(examples, 1)) if bounded else TIE_RELATIVE * abs(theirs)
    verdict = "ties" if abs(difference) <= band else ("beats" if better > 0 else "trails")
    out = {"metric": metric, "mode": mode, "network": mine, "baseline": theirs, "difference": round(difference, 6)}
    out.update(verdict=verdict, tie_band=round(band, 6), bounded=bounded)
    if not bounded and theirs:
        out["relative"] = round(difference / abs(theirs), 6)
    return out


def sentence(block: dict[str, Any]) -> str | None:
    """The verdict in words, e.g. ``the network beats the baseline (a logistic regression ...) by 3.1 points of
    accuracy (0.9926 vs 0.9630)`` or ``... trails the baseline (the last observed value ...): its mae is 1.7x
    the baseline's (38.4969 vs 22.4543)``."""
    comparison = block.get("comparison") or {}
    verdict = comparison.get("verdict")
    if verdict is None:
        return None
    metric, mine, theirs = comparison["metric"], comparison["network"], comparison["baseline"]
    if comparison["bounded"]:
        size = f" by {abs(comparison['difference']) * 100:.1f} points of {metric}"
    elif theirs and mine / theirs >= 2:
        size = f": its {metric} is {mine / theirs:.1f}x the baseline's"
    else:
        direction = "higher" if mine > theirs else "lower"
        size = f": its {metric} is {abs(comparison.get('relative', 0.0)) * 100:.1f}% {direction}"
    head = f"the network {verdict} the baseline ({block['description']})"
    return f"{head}{'' if verdict == 'ties' else size} ({mine:.4f} vs {theirs:.4f})"


# --- shared pieces ------------------------------------------------------------------------------


def _import_scikit_learn() -> None:
    import sklearn.decomposition  # noqa: F401
    import sklearn.feature_extraction.text  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.svm  # noqa: F401


def _subsample(x: torch.Tensor, seed: int) -> tuple[torch.Tensor, int]:
    """Indices of the training examples to fit on: all of them, or a seeded sample within ``MAX_CELLS``."""
    total = len(x)
    width = max(1, int(np.prod(x.shape[1:]))) if x.dim() > 1 else 1
    limit = max(1000, MAX_CELLS // width)
    if total <= limit:
        return torch.arange(total), total
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:limit].sort().values, total


def _score(task: Task, candidate: Baseline, predict: Predictor, bundle: DataBundle, split: str) -> dict[str, float]:
    data = bundle.split(split)
    if len(data) == 0:
        return {}
    x, y = split_tensors(data)
    if candidate.score is not None:
        metrics = candidate.score(predict, x, y)
    else:
        outputs = predict(x)
        metrics = task.metrics(outputs.contiguous() if isinstance(outputs, torch.Tensor) else outputs, y)
    return {k: round(float(v), 6) for k, v in metrics.items() if isinstance(v, (int, float))}


def _choose(records: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any]:
    """The best non-trivial candidate on the validation split, never on the test split.

    By the compared metric when validation has it, else by the lowest validation loss (e.g. an
    anomaly AUROC exists on the test split only); without a validation split, the first candidate.
    """
    pool = [r for r in records if not r["floor"]] or records
    if all(metric in r["val"] for r in pool):
        sign = 1 if mode == "max" else -1
        return max(pool, key=lambda r: sign * r["val"][metric])
    if all("loss" in r["val"] for r in pool):
        return min(pool, key=lambda r: r["val"]["loss"])
    return pool[0]


def flat(x: torch.Tensor) -> np.ndarray:
    """Examples as rows of float64 features."""
    return x.reshape(len(x), -1).double().numpy()


def _standardised(model: Any) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), model)


def _class_log_probabilities(model: Any, features: Any, classes: int) -> torch.Tensor:
    """``N x classes`` log-probabilities, classes the training subsample lacked at about -20."""
    proba = model.predict_proba(features)
    full = np.full((proba.shape[0], classes), 1e-9)
    full[:, model.classes_.astype(int)] = np.maximum(proba, 1e-9)
    return torch.from_numpy(np.log(full)).float()


def texts(spec: DataSpec, tokens: torch.Tensor) -> list[str]:
    """The token ids of a text run back as strings (padding dropped; ``<unk>`` kept as a word)."""
    if spec.extra.get("tokenizer") == SUBWORD:  # a pretrained encoder's pieces, joined back into words
        return from_spec_extra(spec.extra).tokenizer.decode_batch([row.tolist() for row in tokens])
    vocab = spec.extra["vocab"]
    joiner = "" if spec.extra.get("tokenizer") == "char" else " "
    pad = int(spec.extra.get("pad_index", 0))
    return [joiner.join(vocab[i] for i in row.tolist() if i != pad) for row in tokens]


# --- classification -----------------------------------------------------------------------------


def majority_class(classes: int) -> Baseline:
    def fit(x: torch.Tensor, y: torch.Tensor) -> Predictor:
        counts = torch.bincount(y.long(), minlength=classes).double() + 1e-9
        log_prior = (counts / counts.sum()).log().float()
        return lambda inputs: log_prior.expand(len(inputs), -1).clone()

    return Baseline("majority", "the most frequent training class, always", fit, floor=True)


@register_baselines("classify")
def _classification(spec: DataSpec, bundle: DataBundle) -> list[Baseline]:
    classes = spec.num_outputs
    if spec.modality == "text":
        linear = Baseline(
            "tfidf_linear_svm",
            "TF-IDF of word 1-2 grams and a linear SVM",
            lambda x, y: _text_classifier(spec, x, y, classes),
            score=_without_loss,
        )
    else:
        linear = Baseline(
            "logistic_regression",
            "a logistic regression on the standardised inputs",
            lambda x, y: _linear_classifier(x, y, classes),
        )
    return [linear, majority_class(classes)]


def _linear_classifier(x: torch.Tensor, y: torch.Tensor, classes: int) -> Predictor:
    from sklearn.linear_model import LogisticRegression

    model = _standardised(LogisticRegression(max_iter=300, C=1.0))
    model.fit(flat(x), y.numpy())
    return lambda inputs: _class_log_probabilities(model, flat(inputs), classes)


def _text_classifier(spec: DataSpec, x: torch.Tensor, y: torch.Tensor, classes: int) -> Predictor:
    """TF-IDF + linear SVM: the strong classical text classifier, and seconds to fit where a logistic
    regression over the same 200,000 n-grams takes minutes. Its outputs are decision scores."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    analyzer = "char_wb" if spec.extra.get("tokenizer") == "char" else "word"
    ngrams = (2, 4) if analyzer == "char_wb" else (1, 2)
    vectorizer = TfidfVectorizer(ngram_range=ngrams, analyzer=analyzer, min_df=2, sublinear_tf=True)
    model = make_pipeline(vectorizer, LinearSVC(C=1.0))
    model.fit(texts(spec, x), y.numpy())

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        scores = np.asarray(model.decision_function(texts(spec, inputs)))
        if scores.ndim == 1:  # two classes: one score for the second
            scores = np.stack([-scores / 2, scores / 2], axis=1)
        full = np.full((len(scores), classes), -1e3)
        full[:, model.classes_.astype(int)] = scores
        return torch.from_numpy(full).float()

    return predict


def _without_loss(predict: Predictor, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The classification metrics of decision scores, without the loss (scores are not log-probabilities)."""
    from glassnet.train.tasks import Classification

    metrics = Classification().metrics(predict(x), y)
    metrics.pop("loss")
    return metrics


@register_baselines("multilabel")
def _multilabel(spec: DataSpec, bundle: DataBundle) -> list[Baseline]:
    def linear(x: torch.Tensor, y: torch.Tensor) -> Predictor:
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        model = _standardised(OneVsRestClassifier(LogisticRegression(max_iter=300)))
        model.fit(flat(x), y.long().numpy())

        def predict(inputs: torch.Tensor) -> torch.Tensor:
            p = np.clip(model.predict_proba(flat(inputs)), 1e-6, 1 - 1e-6)
            return torch.from_numpy(np.log(p / (1 - p))).float()

        return predict

    def majority(x: torch.Tensor, y: torch.Tensor) -> Predictor:
        rate = y.double().mean(dim=0).clamp(1e-6, 1 - 1e-6)
        logit = (rate / (1 - rate)).log().float()
        return lambda inputs: logit.expand(len(inputs), -1).clone()

    return [
        Baseline("logistic_regression", "one logistic regression per label on the standardised inputs", linear),
        Baseline("majority", "each label's most frequent training value, always", majority, floor=True),
    ]


# --- regression and forecasting -----------------------------------------------------------------


def mean_target() -> Baseline:
    def fit(x: torch.Tensor, y: torch.Tensor) -> Predictor:
        mean = y.reshape(len(y), -1).double().mean(dim=0).float()
        return lambda inputs: mean.expand(len(inputs), -1).clone()

    return Baseline("mean", "the training mean of each target, always", fit, floor=True)


@register_baselines("regress")
def _regression(spec: DataSpec, bundle: DataBundle) -> list[Baseline]:
    def ridge(x: torch.Tensor, y: torch.Tensor) -> Predictor:
        from sklearn.linear_model import RidgeCV

        model = _standardised(RidgeCV(alphas=np.logspace(-3, 3, 7)))
        model.fit(flat(x), y.reshape(len(y), -1).double().numpy())
        return lambda inputs: torch.from_numpy(np.asarray(model.predict(flat(inputs)))).float().reshape(len(inputs), -1)

    if spec.modality == "text":
        return [mean_target()]
    return [Baseline("ridge", "a ridge regression on the standardised inputs (alpha by cross-validation)", ridge),
            mean_target()]  # fmt: skip


@register_baselines("forecast")
def _forecasting(spec: DataSpec, bundle: DataBundle) -> list[Baseline]:
    names = list(spec.feature_names)
    targets = [names.index(t) for t in spec.extra.get("target_names", []) if t in names]
    horizon = int(spec.extra.get("horizon", 1))
    if spec.modality != "sequence" or not targets:
        return [mean_target()]

    def persistence(x: torch.Tensor, y: torch.Tensor) -> Predictor:
        return lambda inputs: (
            inputs[:, -1, targets].float()[:, None, :].expand(-1, horizon, -1).reshape(len(inputs), -1)
        )

    candidates = [Baseline("persistence", "the last observed value, repeated over the horizon", persistence)]
    x_train, _ = split_tensors(bundle.train)
    season = seasonal_period(x_train[:, :, targets[0]])
    if season is not None:

        def seasonal(x: torch.Tensor, y: torch.Tensor) -> Predictor:
            steps = torch.arange(horizon)
            lags = -season + (steps % season)  # the value one season before each forecast step
            return lambda inputs: inputs[:, lags][:, :, targets].float().reshape(len(inputs), -1)

        candidates.append(
            Baseline("seasonal_naive", f"the value one season ({season} steps) before, repeated", seasonal)
        )
    return [*candidates, mean_target()]


def seasonal_period(windows: torch.Tensor, threshold: float = 0.2) -> int | None:
    """The lag of the highest peak of the windows' mean autocorrelation (lags 2 .. length - 2), if above ``threshold``.

    Estimated within each window (``N x T``), which biases long lags low: the threshold is lenient,
    and the seasonal-naive forecast only becomes the baseline when it wins on the validation split.
    """
    series = windows.double()
    series = series - series.mean(dim=1, keepdim=True)
    length = series.shape[1]
    if length < 4:
        return None
    variance = series.pow(2).sum(dim=1).clamp_min(1e-12)
    best, best_lag = -1.0, None
    correlations = []
    for lag in range(1, length - 1):
        correlation = float(((series[:, lag:] * series[:, :-lag]).sum(dim=1) / variance).mean())
        correlations.append(correlation)
        # a season is a local peak of the autocorrelation, not the slow decay of a trend at lag 1
        if lag >= 2 and correlation > best and correlation >= correlations[-2]:
            best, best_lag = correlation, lag
    return best_lag if best_lag is not None and best >= threshold else None


# --- reconstruction -----------------------------------------------------------------------------


@register_baselines("reconstruct")
def _reconstruction(spec: DataSpec, bundle: DataBundle) -> list[Baseline]:
    features = int(np.prod(spec.input_shape))
    components = max(1, min(16, features // 2))

    def pca(x: torch.Tensor, y: torch.Tensor) -> Predictor:
        from sklearn.decomposition import PCA

        model = PCA(n_components=min(components, len(x)), random_state=0)
        model.fit(flat(x))

        def predict(inputs: torch.Tensor) -> torch.Tensor:
            rebuilt = model.inverse_transform(model.transform(flat(inputs)))
            return torch.from_numpy(rebuilt).float().reshape(inputs.shape)

        return predict

    from glassnet.train.reconstruction import has_anomalies

    score = _anomaly_score(bundle) if has_anomalies(bundle) else None
    return [
        Baseline("pca", f"a PCA reconstruction from {components} principal components", pca, score=score),
        Baseline("mean", "the training mean input, always", _mean_input, floor=True, score=score),
    ]


def _mean_input(x: torch.Tensor, y: torch.Tensor) -> Predictor:
    mean = x.double().mean(dim=0).float()
    return lambda inputs: mean.expand_as(inputs).clone()


def _anomaly_score(bundle: DataBundle) -> Callable[[Predictor, torch.Tensor, torch.Tensor], dict[str, float]]:
    """Reconstruction metrics plus, on the test split, the AUROC of the reconstruction error as an anomaly score."""
    from glassnet.train.reconstruction import Reconstruction

    test_inputs = bundle.test.tensors[0]
    labels = torch.as_tensor(bundle.info["test_labels"])
    abnormal = (~torch.isin(labels, torch.as_tensor(bundle.info["normal_classes"]))).numpy()

    def score(predict: Predictor, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        rebuilt = predict(x)
        metrics = Reconstruction().metrics(rebuilt, y)
        is_test = len(abnormal) == len(x) and x.shape == test_inputs.shape and torch.equal(x, test_inputs)
        if is_test and abnormal.any() and not abnormal.all():
            from sklearn.metrics import roc_auc_score

            errors = (rebuilt - y.reshape(rebuilt.shape)).pow(2).reshape(len(x), -1).mean(dim=1).numpy()
            metrics["auroc"] = float(roc_auc_score(abnormal, errors))
        return metrics

    return score


# --- language models ----------------------------------------------------------------------------


@register_baselines("language_model")
def _language_model(spec: DataSpec, bundle: DataBundle) -> list[Baseline]:
    size, pad = spec.num_outputs, int(spec.extra.get("pad_index", 0))

    def counts_of(x: torch.Tensor, y: torch.Tensor, context: bool) -> torch.Tensor:
        keep = y != pad
        rows = x[keep].long() if context else torch.zeros(int(keep.sum()), dtype=torch.long)
        table = torch.ones(size if context else 1, size, dtype=torch.float64)  # add-one smoothing
        table.index_put_((rows, y[keep].long()), torch.ones(len(rows), dtype=torch.float64), accumulate=True)
        return (table / table.sum(dim=1, keepdim=True)).log()

    def model(context: bool) -> Callable[[torch.Tensor, torch.Tensor], Predictor]:
        def fit(x: torch.Tensor, y: torch.Tensor) -> Predictor:
            table = counts_of(x, y, context)
            return lambda inputs: (table, inputs)

        return fit

    def perplexity(predict: Predictor, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        table, inputs = predict(x)
        keep = y != pad
        rows = inputs[keep].long() if table.shape[0] > 1 else torch.zeros(int(keep.sum()), dtype=torch.long)
        if not keep.any():
            raise DataError("every target is padding; there is nothing to score")
        loss = float(-table[rows, y[keep].long()].mean())
        return {"loss": loss, "perplexity": math.exp(loss), "bits_per_char": loss / math.log(2)}

    return [
        Baseline("bigram", "a bigram model (the next token given this one), add-one smoothing", model(True),
                 score=perplexity),
        Baseline("unigram", "token frequencies alone, add-one smoothing", model(False), floor=True, score=perplexity),
    ]  # fmt: skip
