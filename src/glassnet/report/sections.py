"""Report sections of the train stage: data, model, training, test metrics, errors, reconstructions."""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, esc, fmt, key_values, num, section, table
from glassnet.report.validate import ANY, FLAG, NUMBER, TEXT, Each, Kind

# what each section reads of results/train.json (and evaluate.json): checked before it is read
_COMPARISON = {
    "description": ANY,
    "comparison": {
        "verdict?": TEXT, "metric": ANY, "network": NUMBER, "baseline": NUMBER, "bounded": FLAG,
        "difference?": NUMBER, "relative?": NUMBER,
    },
}  # fmt: skip
# a metric is a number (null when it could not be computed) or a table of them (confusion matrix, examples)
_METRIC = Kind("a number or a table", lambda v: v is None or isinstance(v, (int, float, list, dict)))
_TEST_METRICS = {"test": Each(_METRIC), "data": {"splits": {"test": {"size": NUMBER}}}}
_EVALUATION = {"split": TEXT, "data": ANY, "warnings?": [ANY]}
_BASELINE = {
    "comparison?": {"metric?": TEXT},
    "name": ANY,
    "test": Each(ANY),
    "candidates": [{"description": ANY, "name": ANY, "floor": ANY, "val": Each(ANY), "test": Each(ANY),
                    "fit_time_s": NUMBER}],
    "train_examples": NUMBER,
    "subsampled_from?": NUMBER,
}  # fmt: skip
_DATA = {
    "data": {
        "modality": ANY, "task": ANY, "input_shape": [ANY], "class_names?": [ANY],
        "splits": Each({"size": NUMBER, "class_counts?": [ANY]}),
    }
}  # fmt: skip
_MODEL = {
    "model": {
        "name": ANY, "hparams": Each(ANY), "parameters": ANY, "trainable_parameters": ANY,
        "layers": [{"name": ANY, "type": ANY, "output_shape?": [ANY], "parameters": ANY}],
    }
}  # fmt: skip
_TRAINING = {
    "training": {
        "epochs_run": ANY, "max_epochs": ANY, "steps": ANY, "train_time_s": NUMBER, "device": ANY,
        "samples_per_s": NUMBER, "best_epoch": ANY, "monitor": ANY, "best_score": ANY,
    }
}  # fmt: skip
_SAMPLE = {"sample?": {"prompt": ANY, "temperature": ANY, "seed": ANY, "text": ANY}}
_PREDICTIONS = {
    "test": {"examples?": [{"index": ANY, "true": ANY, "predicted": ANY, "confidence": NUMBER}]},
    "data": {"class_names?": [ANY]},
}
_RECONSTRUCTION = {
    "test": Each(ANY),
    "anomaly?": {"normal_classes": [ANY], "threshold_percentile": ANY, "threshold_from": ANY, "test_normal": ANY,
                 "test_abnormal": ANY},
}  # fmt: skip


@section("Test metrics", order=10)
def test_metrics(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("train", _TEST_METRICS)
    if not result:
        return None
    test = {k: v for k, v in result["test"].items() if isinstance(v, (int, float))}
    tiles = "".join(f'<div class="metric">{esc(k.replace("_", " "))}<b>{fmt(v)}</b></div>' for k, v in test.items())
    size = result["data"]["splits"]["test"]["size"]
    note = (
        f'<p class="note">On the held-out test split ({num(size, ",")} examples), '
        "never used for training or model selection.</p>"
    )
    evaluation = ctx.result("evaluate", _EVALUATION)
    extra = ""
    if evaluation:
        split = evaluation["split"]
        ctx.check("evaluate", evaluation, {split: Each(ANY)})
        rows = [[k, fmt(v)] for k, v in evaluation[split].items()]
        extra = f"<h3>Latest <code>glassnet evaluate</code> ({esc(evaluation['data'])}, {esc(split)})</h3>" + table(
            ["metric", "value"], rows
        )
        extra += "".join(f'<p class="note warn">&#9888; {esc(w)}</p>' for w in evaluation.get("warnings") or [])
        extra += _verdict(ctx, "evaluate", evaluation.get("baseline"))
    return f'<div class="metrics">{tiles}</div>{_verdict(ctx, "train", result.get("baseline"))}{note}{extra}'


def baseline_sentence(ctx: ReportContext, stage: str, block: Any) -> tuple[str, str] | None:
    """The verdict of results/``stage``.json's ``baseline`` block and its sentence (``sentence``), or None
    when the block has no comparison or a figure it compares is missing (a NaN metric is stored as null)."""
    from glassnet.train.baselines import sentence

    if not isinstance(block, dict) or "comparison" not in block:
        return None
    comparison = ctx.check(stage, block, _COMPARISON, "baseline")["comparison"]
    needed = (
        ("verdict", "network", "baseline", "difference")
        if comparison["bounded"]
        else ("verdict", "network", "baseline")
    )
    if any(comparison.get(key) is None for key in needed) or comparison.get("relative", 0.0) is None:
        return None
    return comparison["verdict"], sentence(block) or ""


def subset_note(count: Any, split: str, size: Any, accuracy: Any = None, how: str = "") -> str:
    """Which examples a stage used, said plainly: all of the split, or a subset of it and how it was drawn,
    with the accuracy on the whole split beside (a subset's accuracy differs from it)."""
    name = {"val": "validation", "train": "training"}.get(split, split)
    if not isinstance(size, int) or isinstance(size, bool) or not isinstance(count, int) or count >= size:
        return f"all {fmt(count)} {esc(name)} examples"
    said = f"{fmt(count)} of the {fmt(size)} {esc(name)} examples{esc(how)}"
    if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool):
        said += f" (accuracy on the whole {esc(name)} split: {fmt(accuracy)})"
    return said


def _verdict(ctx: ReportContext, stage: str, block: Any) -> str:
    """The network against its classical baseline, in one highlighted sentence."""
    said = baseline_sentence(ctx, stage, block)
    if not said or not said[1]:
        return ""
    verdict, line = said
    warning = " A classical model does better on this data." if verdict == "trails" else ""
    return f'<p class="verdict {esc(verdict)}"><b>{esc(line[0].upper() + line[1:])}.</b>{esc(warning)}</p>'


@section("Baseline", order=15)
def baseline(ctx: ReportContext) -> str | None:
    """Every classical candidate on the same validation and test examples, and which one is the baseline."""
    if ctx.control:  # an agent: report.control writes this part
        return None
    block = (ctx.result("train", {"baseline?": Each(ANY)}) or {}).get("baseline")
    if not block:
        return None
    if "skipped" in block:
        return f'<p class="note">No baseline: {esc(block["skipped"])}.</p>'
    ctx.check("train", block, _BASELINE, "baseline")
    metric = (block.get("comparison") or {}).get("metric")
    keys = [k for k in block["test"] if k != metric]
    header = ["candidate", "role", f"val {metric}", f"test {metric}", *(f"test {k}" for k in keys), "fit s"]
    rows = [
        [
            c["description"],
            "the baseline" if c["name"] == block["name"] else ("trivial" if c["floor"] else ""),
            fmt(c["val"].get(metric)),
            fmt(c["test"].get(metric)),
            *(fmt(c["test"].get(k)) for k in keys),
            num(c["fit_time_s"], ".2f"),
        ]
        for c in block["candidates"]
    ]
    used = f"{num(block['train_examples'], ',')} training examples"
    if block.get("subsampled_from"):
        used += f" (a seeded sample of {num(block['subsampled_from'], ',')}, to bound the fit time)"
    return (
        f'<p class="note">Classical models fitted on the same training split ({esc(used)}) and scored with the '
        "same metrics on the same examples; the baseline is the best on the validation split (trivial "
        "predictors are listed but never chosen).</p>" + table(header, rows, numeric_from=2)
    )


@section("Data", order=20)
def data_summary(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("train", _DATA)
    if not result:
        return None
    data = result["data"]
    facts = [
        ["dataset", data.get("name") or "user data"],
        ["description", data.get("description", "")],
        ["source", data.get("source", "")],
        ["modality / task", f"{data['modality']} / {data['task']}"],
        ["input shape", " x ".join(map(str, data["input_shape"]))],
        [
            "split",
            f"{data['split'] if isinstance(data.get('split'), str) else 'stratified'}, seed {data.get('split_seed')}; "
            f"val {data.get('val_fraction')}, test {data.get('test_fraction')}",
        ],
    ]
    out = key_values(facts)
    names = data.get("class_names") or []
    splits = data["splits"]
    counts = [(splits.get(s) or {}).get("class_counts") for s in ("train", "val", "test")]
    if names and all(isinstance(c, list) and len(c) == len(names) for c in counts):
        rows = [[name] + [c[i] for c in counts] for i, name in enumerate(names)]
        total = ["total"] + [splits[s]["size"] for s in ("train", "val", "test")]
        out += "<h3>Examples per class and split</h3>" + table(["class", "train", "val", "test"], rows, foot=[total])
    else:
        out += table(["split", "examples"], [[s, splits[s]["size"]] for s in splits])
    return out


@section("Model", order=30)
def model_summary(ctx: ReportContext) -> str | None:
    result = ctx.result("train", _MODEL)
    if not result:
        return None
    model = result["model"]
    hparams = ", ".join(f"{k}={v}" for k, v in model["hparams"].items())
    rows = [
        [
            layer["name"],
            layer["type"],
            " x ".join(map(str, layer.get("output_shape") or [])) or "-",
            fmt(layer["parameters"]),
        ]
        for layer in model["layers"]
    ]
    return (
        f"<p><b>{esc(model['name'])}</b>({esc(hparams)}): {fmt(model['parameters'])} parameters "
        f"({fmt(model['trainable_parameters'])} trainable), {fmt(model.get('flops'))} FLOPs per example.</p>"
        + "<details open><summary>Layers</summary>"
        + table(["layer", "type", "output shape (per example)", "parameters"], rows, numeric_from=3)
        + "</details>"
    )


@section("Training", order=40)
def training(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("train", _TRAINING)
    if not result:
        return None
    t = result["training"]
    from glassnet.figures.training import metric_label

    monitor = t["monitor"]
    best = f"the best {esc(metric_label(monitor))}" if isinstance(monitor, str) else f"the best on {esc(monitor)}"
    text = (
        f"<p>{esc(t['epochs_run'])} of {esc(t['max_epochs'])} epochs ({fmt(t['steps'])} steps) in "
        f"{num(t['train_time_s'], '.1f')} s on {esc(t['device'])} ({num(t['samples_per_s'], ',.0f')} training "
        f"examples/s). The weights kept are those of epoch {esc(t['best_epoch'])}, {best} "
        f"({fmt(t['best_score'])}; <code>{esc(monitor)}</code>), marked on the curves.</p>"
        f'<p class="note">Settings: {esc(training_settings(ctx.config))}. The full configuration is in '
        "config.yaml.</p>"
    )
    return text + ctx.figure("training_curves", "training and validation curves")


_OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD with momentum"}
_SCHEDULES = {
    "onecycle": "one-cycle schedule (learning rate warmed up, then decayed along a cosine)",
    "cosine": "learning rate decayed along a cosine",
    "plateau": "learning rate lowered when the validation loss stalls",
    "none": "constant learning rate",
}


def training_settings(config: dict[str, Any]) -> str:
    """The main training settings of config.yaml in words (its option names in brackets, as config.yaml spells
    them)."""
    said = []
    if "optimizer" in config:
        said.append(f"{_OPTIMIZERS.get(str(config['optimizer']), config['optimizer'])} optimiser")
    for key, words in (("lr", "learning rate"), ("weight_decay", "weight decay")):
        if key in config:
            said.append(f"{words} {config[key]} ({key})")
    if "schedule" in config:
        schedule = str(config["schedule"])
        said.append(f"{_SCHEDULES.get(schedule, schedule + ' schedule')}")
    if "batch_size" in config:
        said.append(f"batches of {config['batch_size']} examples")
    if "epochs" in config:
        said.append(f"at most {config['epochs']} epochs")
    if "seed" in config:
        said.append(f"seed {config['seed']}")
    return ", ".join(map(str, said)) or "defaults"


@section("Generated text", order=52)
def generated_text(ctx: ReportContext) -> str | None:
    sample = (ctx.result("train", _SAMPLE) or {}).get("sample")
    if not sample:
        return None
    return (
        f'<p class="note">Sampled after the prompt {esc(repr(sample["prompt"]))} at temperature '
        f"{esc(sample['temperature'])} (seed {esc(sample['seed'])}).</p><pre>{esc(sample['text'])}</pre>"
    )


@section("Test predictions", order=50)
def predictions(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("train", _PREDICTIONS)
    if not result:
        return None
    parts = []
    matrix = ctx.figure("confusion_matrix", "confusion matrix on the test split")
    if matrix:
        parts.append(
            '<p class="note">Rows are the true classes, columns the predicted ones: everything off the diagonal '
            "is a mistake.</p>" + matrix
        )
    grid = ctx.figure("predictions", "test images with predicted and true classes")
    if grid:
        parts.append(
            '<h3>Examples</h3><p class="note">Predicted class (confidence) above the true class; mistakes in red.</p>'
            + grid
        )
    elif result["test"].get("examples"):
        names = result["data"].get("class_names") or []
        rows = [
            [e["index"], _label(names, e["true"]), _label(names, e["predicted"]), num(e["confidence"], ".1%")]
            for e in result["test"]["examples"]
        ]
        parts.append("<h3>Examples</h3>" + table(["test row", "true", "predicted", "confidence"], rows, numeric_from=3))
    scatter = ctx.figure("predicted_vs_true", "regression predictions against targets")
    if scatter:
        parts.append(scatter)
    return "".join(parts) or None


def _label(names: list[Any], index: Any) -> Any:
    """The class name of a class index (the index itself when it names no class)."""
    valid = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(names)
    return names[index] if valid else index


@section("Reconstruction", order=55)
def reconstruction(ctx: ReportContext) -> str | None:
    """Anomaly detection, example reconstructions and VAE samples of a reconstruction run."""
    result = ctx.result("train")
    if not result or result.get("task") != "reconstruct":
        return None
    ctx.check("train", result, _RECONSTRUCTION)
    parts = [_anomaly_detection(result)] if result.get("anomaly") else []
    parts.append(ctx.figure("anomaly_scores", "test anomaly scores of normal and abnormal examples"))
    pairs = ctx.figure("reconstructions", "test examples and their reconstructions")
    if pairs:
        parts.append(
            '<h3>Reconstructions</h3><p class="note">Test examples and what the model rebuilds from its latent code '
            "(pictures: originals above; signals: originals solid, reconstructions dashed; tables: bar pairs in "
            "standardised units).</p>" + pairs
        )
    test = result["test"]
    samples = ctx.figure("vae_samples", "images decoded from latent codes drawn from the prior")
    if "elbo" in test:
        parts.append(
            f"<h3>Variational bound</h3><p>Test ELBO {fmt(test.get('elbo'))} nats per example "
            f"(KL of the posterior from the prior {fmt(test.get('kl'))} nats).</p>"
        )
    if samples:
        parts.append('<p class="note">New images decoded from latent codes drawn from the prior:</p>' + samples)
    return "".join(parts) or None


def _anomaly_detection(result: dict[str, Any]) -> str:
    anomaly, test = result["anomaly"], result["test"]
    normal = ", ".join(map(str, anomaly["normal_classes"]))
    rows = [
        ["AUROC of the anomaly score", fmt(test.get("auroc"))],
        [f"threshold ({anomaly['threshold_percentile']}th percentile of {anomaly['threshold_from']} scores)",
         num(test.get("threshold"), ".4g")],
        ["precision (flagged examples that are abnormal)", fmt(test.get("precision"))],
        ["recall (abnormal examples flagged)", fmt(test.get("recall"))],
    ]  # fmt: skip
    return (
        f"<h3>Anomaly detection</h3><p>Trained on the normal classes ({esc(normal)}) only; the anomaly score is "
        f"the reconstruction error. The test split holds {fmt(anomaly['test_normal'])} normal and "
        f"{fmt(anomaly['test_abnormal'])} abnormal examples.</p>" + key_values(rows)
    )
