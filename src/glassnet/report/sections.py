"""Report sections of the train stage: data, model, training, test metrics, errors, reconstructions."""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, esc, fmt, key_values, section, table


@section("Test metrics", order=10)
def test_metrics(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("train")
    if not result:
        return None
    test = {k: v for k, v in result["test"].items() if isinstance(v, (int, float))}
    tiles = "".join(f'<div class="metric">{esc(k.replace("_", " "))}<b>{fmt(v)}</b></div>' for k, v in test.items())
    size = result["data"]["splits"]["test"]["size"]
    note = (
        f'<p class="note">On the held-out test split ({size:,} examples), '
        "never used for training or model selection.</p>"
    )
    evaluation = ctx.result("evaluate")
    extra = ""
    if evaluation:
        split = evaluation["split"]
        rows = [[k, fmt(v)] for k, v in evaluation[split].items()]
        extra = f"<h3>Latest <code>glassnet evaluate</code> ({esc(evaluation['data'])}, {esc(split)})</h3>" + table(
            ["metric", "value"], rows
        )
        extra += _verdict(evaluation.get("baseline"))
    return f'<div class="metrics">{tiles}</div>{_verdict(result.get("baseline"))}{note}{extra}'


def _verdict(block: dict[str, Any] | None) -> str:
    """The network against its classical baseline, in one highlighted sentence."""
    from glassnet.train.baselines import sentence

    line = sentence(block) if block and "comparison" in block else None
    if line is None:
        return ""
    verdict = block["comparison"]["verdict"]
    warning = " A classical model does better on this data." if verdict == "trails" else ""
    return f'<p class="verdict {esc(verdict)}"><b>{esc(line[0].upper() + line[1:])}.</b>{esc(warning)}</p>'


@section("Baseline", order=15)
def baseline(ctx: ReportContext) -> str | None:
    """Every classical candidate on the same validation and test examples, and which one is the baseline."""
    if ctx.control:  # an agent: report.control writes this part
        return None
    block = (ctx.result("train") or {}).get("baseline")
    if not block:
        return None
    if "skipped" in block:
        return f'<p class="note">No baseline: {esc(block["skipped"])}.</p>'
    metric = block.get("comparison", {}).get("metric")
    keys = [k for k in block["test"] if k != metric]
    header = ["candidate", "role", f"val {metric}", f"test {metric}", *(f"test {k}" for k in keys), "fit s"]
    rows = [
        [
            c["description"],
            "the baseline" if c["name"] == block["name"] else ("trivial" if c["floor"] else ""),
            fmt(c["val"].get(metric)),
            fmt(c["test"].get(metric)),
            *(fmt(c["test"].get(k)) for k in keys),
            f"{c['fit_time_s']:.2f}",
        ]
        for c in block["candidates"]
    ]
    used = f"{block['train_examples']:,} training examples"
    if block.get("subsampled_from"):
        used += f" (a seeded sample of {block['subsampled_from']:,}, to bound the fit time)"
    return (
        f'<p class="note">Classical models fitted on the same training split ({esc(used)}) and scored with the '
        "same metrics on the same examples; the baseline is the best on the validation split (trivial "
        "predictors are listed but never chosen).</p>" + table(header, rows, numeric_from=2)
    )


@section("Data", order=20)
def data_summary(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("train")
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
            f"stratified, seed {data.get('split_seed')}; "
            f"val {data.get('val_fraction')}, test {data.get('test_fraction')}",
        ],
    ]
    out = key_values(facts)
    names = data.get("class_names") or []
    splits = data["splits"]
    if names and all("class_counts" in splits[s] for s in splits):
        rows = [
            [name] + [splits[s]["class_counts"][i] for s in ("train", "val", "test")] for i, name in enumerate(names)
        ]
        rows.append(["total"] + [splits[s]["size"] for s in ("train", "val", "test")])
        out += "<h3>Examples per class and split</h3>" + table(["class", "train", "val", "test"], rows)
    else:
        out += table(["split", "examples"], [[s, splits[s]["size"]] for s in splits])
    return out


@section("Model", order=30)
def model_summary(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result:
        return None
    model = result["model"]
    hparams = ", ".join(f"{k}={v}" for k, v in model["hparams"].items())
    rows = [
        [
            layer["name"],
            layer["type"],
            " x ".join(map(str, layer["output_shape"] or [])) or "-",
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
    result = ctx.result("train")
    if not result:
        return None
    t = result["training"]
    cfg: dict[str, Any] = ctx.config
    settings = ", ".join(
        f"{k}={cfg[k]}"
        for k in ("optimizer", "lr", "weight_decay", "schedule", "batch_size", "epochs", "seed")
        if k in cfg
    )
    text = (
        f"<p>{t['epochs_run']} of {t['max_epochs']} epochs ({fmt(t['steps'])} steps) in {t['train_time_s']:.1f} s "
        f"on {esc(t['device'])} ({t['samples_per_s']:,.0f} training examples/s). The weights kept are those of "
        f"epoch {t['best_epoch']}, the best on <code>{esc(t['monitor'])}</code> ({fmt(t['best_score'])}).</p>"
        f'<p class="note">Settings: {esc(settings)}. The full configuration is in config.yaml.</p>'
    )
    return text + ctx.figure("training_curves", "training and validation curves")


@section("Generated text", order=52)
def generated_text(ctx: ReportContext) -> str | None:
    sample = (ctx.result("train") or {}).get("sample")
    if not sample:
        return None
    return (
        f'<p class="note">Sampled after the prompt {esc(repr(sample["prompt"]))} at temperature '
        f"{sample['temperature']} (seed {sample['seed']}).</p><pre>{esc(sample['text'])}</pre>"
    )


@section("Test predictions", order=50)
def predictions(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("train")
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
            [
                e["index"],
                names[e["true"]] if names else e["true"],
                names[e["predicted"]] if names else e["predicted"],
                f"{e['confidence']:.1%}",
            ]
            for e in result["test"]["examples"]
        ]
        parts.append("<h3>Examples</h3>" + table(["test row", "true", "predicted", "confidence"], rows, numeric_from=3))
    scatter = ctx.figure("predicted_vs_true", "regression predictions against targets")
    if scatter:
        parts.append(scatter)
    return "".join(parts) or None


@section("Reconstruction", order=55)
def reconstruction(ctx: ReportContext) -> str | None:
    """Anomaly detection, example reconstructions and VAE samples of a reconstruction run."""
    result = ctx.result("train")
    if not result or result.get("task") != "reconstruct":
        return None
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
            f"<h3>Variational bound</h3><p>Test ELBO {fmt(test['elbo'])} nats per example "
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
         f"{test['threshold']:.4g}"],
        ["precision (flagged examples that are abnormal)", fmt(test["precision"])],
        ["recall (abnormal examples flagged)", fmt(test["recall"])],
    ]  # fmt: skip
    return (
        f"<h3>Anomaly detection</h3><p>Trained on the normal classes ({esc(normal)}) only; the anomaly score is "
        f"the reconstruction error. The test split holds {fmt(anomaly['test_normal'])} normal and "
        f"{fmt(anomaly['test_abnormal'])} abnormal examples.</p>" + key_values(rows)
    )
