"""Report section of the attack stage: accuracy under attack, adversarial examples, masking warnings."""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, esc, fmt, num, section, table
from glassnet.report.sections import subset_note
from glassnet.report.validate import ANY, NUMBER, NUMBERS, TEXT, Each

# what the section reads of results/robustness.json: checked before it is read
_ROBUSTNESS = {
    "space": ANY,
    "clean_accuracy": ANY,
    "examples": ANY,
    "split": ANY,
    "norm": ANY,
    "eps": NUMBERS,
    "curves": Each([ANY]),
    "robust_accuracy?": Each(ANY),
    "worst_case?": {"attacks": [TEXT], "accuracy": [ANY], "omitted?": Each(ANY)},
    "minimum_norms?": Each({"found": ANY, "attacked": ANY, "median": ANY}),
    "adversarial_examples?": [
        {"attack": ANY, "eps": NUMBER, "changed_features?": ANY,
         "changes?": [{"feature": ANY, "original": NUMBER, "adversarial": NUMBER, "change": NUMBER,
                       "change_sd?": NUMBER}]}
    ],
    "warnings?": [ANY],
    "checks?": [{"name": TEXT, "passed": ANY, "detail": ANY}],
    "adversarial_training?": Each(ANY),
}  # fmt: skip
# a segmentation or detection run's record (glassnet.robustness.dense)
_DENSE = {
    "metric": TEXT, "examples": ANY, "split": ANY, "units": ANY, "eps": NUMBERS, "clean": Each(ANY),
    "eps_shown?": {"factor": NUMBER, "suffix": TEXT}, "mode?": TEXT,
    "curves": Each([Each(ANY)]), "warnings?": [ANY],
}  # fmt: skip
# what it reads of results/train.json: the whole split's accuracy, beside the attacked examples' own
_SPLITS = {"test?": Each(ANY), "val?": Each(ANY), "data?": {"splits?": Each({"size?": NUMBER})}}

# the norms and attacks in words (the names stay beside them: they are what --attack and --norm take)
NORMS = {
    "linf": "L-infinity norm: no single input value moves by more than eps",
    "l2": "L2 norm: the length of the whole change is at most eps",
}
ATTACKS = {
    "fgsm": "one step along the sign of the gradient (fast, weak)",
    "pgd": "many small gradient steps, each kept within eps, from a random start",
    "apgd-ce": "PGD that sets its own step size, on the cross-entropy loss",
    "apgd-dlr": "the same on a loss that ignores the scale of the model's scores",
    "apgd-dlr-t": "the same, aimed at each of the most likely wrong classes in turn",
    "square": "a search with random square patches that uses only the model's outputs, no gradients "
    "(catches gradients that hide weaknesses)",
    "cw": "Carlini-Wagner: the smallest L2 change that flips the prediction",
    "deepfool": "DeepFool: the smallest step across the model's locally linear decision boundary",
    "embedding-pgd": "PGD on the token embeddings",
}


@section("Robustness", order=70)
def robustness(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("robustness")
    if not result:
        return None
    if result.get("kind") == "dense":
        return _dense(ctx, ctx.check("robustness", result, _DENSE))
    ctx.check("robustness", result, _ROBUSTNESS)
    parts = [_summary(result, _whole_split(ctx, result)), _warnings(result), _curve_table(result)]
    parts.append(ctx.figure("robustness_curves", "accuracy against the attack budget eps"))
    parts.append(_examples(ctx, result))
    parts.append(_checks(result))
    parts.append(_training(result))
    return "".join(p for p in parts if p)


def _dense(ctx: ReportContext, result: dict[str, Any]) -> str:
    """Segmentation or detection under attack: the task's score against eps, per attack."""
    metric = result["metric"]
    shown = result.get("eps_shown") or {"factor": 255, "suffix": "/255"}
    header = ["attack", *(f"eps {num(e * shown['factor'], '.3g')}{shown['suffix']}" for e in result["eps"])]
    rows = [[name, *(fmt(p[metric]) for p in points)] for name, points in result["curves"].items()]
    what = "images" if shown["factor"] == 255 else "examples"
    parts = [
        f"<p>{esc(metric)} of {esc(result['examples'])} {esc(result['split'])} {what} when each is perturbed within "
        f"an L-infinity ball of radius eps ({esc(result['units'])}); clean {fmt(result['clean'][metric])}. FGSM and "
        "PGD ascend the task's own training loss against the true targets; random noise of the same size is the "
        "reference.</p>",
        *(f'<p class="warning">{esc(w)}</p>' for w in result.get("warnings") or []),
        table(header, rows),
        ctx.figure("robustness_curves", f"{metric} against the attack budget eps"),
    ]
    return "".join(parts)


def _whole_split(ctx: ReportContext, result: dict[str, Any]) -> tuple[Any, Any]:
    """The size of the attacked split and the clean accuracy on all of it (results/train.json), or None each."""
    split = result["split"]
    if not isinstance(split, str):
        return None, None
    train = ctx.result("train", _SPLITS) or {}
    size = (((train.get("data") or {}).get("splits") or {}).get(split) or {}).get("size")
    accuracy = (train.get(split) or {}).get("accuracy") if split in ("test", "val") else None
    return size, accuracy


def _summary(result: dict[str, Any], whole: tuple[Any, Any] = (None, None)) -> str:
    robust = result.get("robust_accuracy") or {}
    space = (
        "<b>in embedding space</b> (the token embeddings are perturbed, not the text a person could edit)"
        if result["space"] == "embedding"
        else f"in input space ({esc(result.get('bounds'))})"
    )
    worst = result.get("worst_case")
    how = (
        "the worst case over "
        + esc(" + ".join(worst["attacks"]))
        + (" in embedding space" if worst.get("space") == "embedding" else "")
        + " (an example counts as robust only if every attack fails)"
        if worst
        else "the strongest attack run"
    )
    if result.get("precision") == "bf16":
        how += " The attacks ran under bf16 autocast (faster, slightly weaker); every accuracy is judged in fp32."
    omitted = "".join(f" {esc(reason)}." for reason in ((worst or {}).get("omitted") or {}).values())
    count = result["examples"]
    tiles = (
        f'<div class="metric">clean accuracy on the {fmt(count)} attacked<b>{fmt(result["clean_accuracy"])}</b>'
        "</div>"
        + "".join(f'<div class="metric">robust accuracy, eps={esc(e)}<b>{fmt(a)}</b></div>' for e, a in robust.items())
    )
    used = subset_note(count, str(result["split"]), *whole, how=", a sample drawn with a fixed seed")
    norm = NORMS.get(result["norm"], f"{result['norm']} norm")
    return (
        f'<div class="metrics">{tiles}</div><p class="note">Attacked: {used}, {space}; '
        f"{esc(result['norm'])} ({esc(norm)}). Clean and robust accuracy are on these examples; robust accuracy is "
        f"{how}.{omitted}</p>"
    )


def _examples(ctx: ReportContext, result: dict[str, Any]) -> str:
    """The adversarial examples: a table of the changed features for table rows, a figure for everything else."""
    records = result.get("adversarial_examples") or []
    if not records:
        return ""
    first = records[0]
    found = f"Found by the {esc(first['attack'])} attack at eps={num(first['eps'], 'g')}."
    if any("changes" in r for r in records):
        return f'<h3>Adversarial examples</h3><p class="note">{found} ' + feature_table(ctx, records)
    examples = ctx.figure("adversarial_examples", "original and adversarial inputs with their predictions")
    if not examples:
        return ""
    return (
        f'<h3>Adversarial examples</h3><p class="note">{found} Top: the original and the model\'s prediction '
        "(confidence); middle: the adversarial input and the new prediction; bottom: the perturbation, magnified "
        "so that it can be seen.</p>" + examples
    )


def feature_table(ctx: ReportContext, records: list[dict[str, Any]]) -> str:
    """Attacked table rows, feature by feature: the values before and after in the features' own units."""
    names = list(ctx.model.get("spec", {}).get("class_names") or []) if isinstance(ctx.model, dict) else []

    def label(index: Any) -> str:
        valid = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(names)
        return str(names[index]) if valid else str(index)

    spread = any("change_sd" in c for r in records for c in r.get("changes") or [])
    header = ["test row", "prediction: before -> after", "feature", "original", "adversarial", "change"]
    header += ["change (training SDs)"] if spread else []
    rows = []
    for r in records:
        before = f"{label(r.get('clean_prediction'))} ({num(r.get('clean_confidence'), '.0%')})"
        after = f"{label(r.get('adversarial_prediction'))} ({num(r.get('adversarial_confidence'), '.0%')})"
        for c in r.get("changes") or []:
            row = [r.get("index", ""), f"{before} -> {after}", c["feature"], num(c["original"], ".4g"),
                   num(c["adversarial"], ".4g"), num(c["change"], "+.3g")]  # fmt: skip
            rows.append(row + ([num(c.get("change_sd"), "+.2f")] if spread else []))
    counts = [r.get("changed_features") for r in records if isinstance(r.get("changed_features"), int)]
    listed = max((len(r.get("changes") or []) for r in records), default=0)
    note = (
        f"Each row of the table the attack changed is listed with its largest changes (up to {listed} features per "
        f"row{_moved(counts)}), in the "
        "features' own units"
        + (
            "; the last column puts each change in standard deviations of the feature on the training split, so "
            "that features of different units compare"
            if spread
            else ""
        )  # fmt: skip
        + ".</p>"
    )
    return note + table(header, rows, numeric_from=3)


def _warnings(result: dict[str, Any]) -> str:
    if not result.get("warnings"):
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in result["warnings"])
    return (
        '<div style="background:#fdecea;border-left:4px solid #b02a2a;padding:6px 14px;margin:10px 0">'
        f"<b>Warning: these robustness figures may be too optimistic.</b><ul>{items}</ul></div>"
    )


def _curve_table(result: dict[str, Any]) -> str:
    rows = [[name, *(fmt(v) for v in curve)] for name, curve in result["curves"].items()]
    if result.get("worst_case"):
        rows.append(["worst case", *(fmt(v) for v in result["worst_case"]["accuracy"])])
    header = ["attack", *(f"eps={num(e, 'g')}" for e in result["eps"])]
    out = "<h3>Accuracy under attack</h3>" + table(header, rows) + _attacks(result)
    norms = result.get("minimum_norms") or {}
    if norms:
        out += (
            '<p class="note">Minimum-norm attacks: '
            + "; ".join(
                f"{esc(n)} found {esc(v['found'])} of {esc(v['attacked'])}, median {esc(result['norm'])} size "
                f"{fmt(v['median'])}"
                for n, v in norms.items()
            )
            + ".</p>"
        )
    return out


def _moved(counts: list[int]) -> str:
    """How many features the attack moved per row, said once."""
    if not counts:
        return ""
    low, high = min(counts), max(counts)
    return f"; the attack moved {low} features in every row" if low == high else f"; it moved {low} to {high} per row"


def _attacks(result: dict[str, Any]) -> str:
    """What each attack of the table does, in words."""
    names = [*result["curves"], *((result.get("worst_case") or {}).get("attacks") or [])]
    said = [f"<li><b>{esc(n)}</b>: {esc(ATTACKS[n])}</li>" for n in dict.fromkeys(names) if n in ATTACKS]
    return f"<details><summary>What each attack does</summary><ul>{''.join(said)}</ul></details>" if said else ""


def _checks(result: dict[str, Any]) -> str:
    if not result.get("checks"):
        return ""
    rows = [[c["name"].replace("_", " "), "passed" if c["passed"] else "FAILED", c["detail"]] for c in result["checks"]]
    return (
        "<details><summary>Gradient-masking checks</summary>"
        + table(["check", "result", "detail"], rows, numeric_from=3)
        + "</details>"
    )


def _training(result: dict[str, Any]) -> str:
    settings = result.get("adversarial_training")
    if not settings:
        return '<p class="note">The model was trained without adversarial training.</p>'
    shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None and k != "name")
    return f'<p class="note">Adversarial training: {esc(shown)}.</p>'
