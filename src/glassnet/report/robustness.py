"""Report section of the attack stage: accuracy under attack, adversarial examples, masking warnings."""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, esc, fmt, num, section, table
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
    "adversarial_examples?": [{"attack": ANY, "eps": NUMBER}],
    "warnings?": [ANY],
    "checks?": [{"name": TEXT, "passed": ANY, "detail": ANY}],
    "adversarial_training?": Each(ANY),
}


@section("Robustness", order=70)
def robustness(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("robustness")
    if not result:
        return None
    ctx.check("robustness", result, _ROBUSTNESS)
    parts = [_summary(result), _warnings(result), _curve_table(result)]
    parts.append(ctx.figure("robustness_curves", "accuracy against the attack budget eps"))
    examples = ctx.figure("adversarial_examples", "original and adversarial inputs with their predictions")
    if examples and result.get("adversarial_examples"):
        first = result["adversarial_examples"][0]
        parts.append(
            f'<h3>Adversarial examples</h3><p class="note">Found by the {esc(first["attack"])} attack at '
            f"eps={num(first['eps'], 'g')}. Top: the original and the model's prediction (confidence); middle: the "
            "adversarial input and the new prediction; bottom: the perturbation, magnified so that it can be "
            "seen.</p>" + examples
        )
    parts.append(_checks(result))
    parts.append(_training(result))
    return "".join(p for p in parts if p)


def _summary(result: dict[str, Any]) -> str:
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
    tiles = f'<div class="metric">clean accuracy<b>{fmt(result["clean_accuracy"])}</b></div>' + "".join(
        f'<div class="metric">robust accuracy, eps={esc(e)}<b>{fmt(a)}</b></div>' for e, a in robust.items()
    )
    return (
        f'<div class="metrics">{tiles}</div><p class="note">{fmt(result["examples"])} {esc(result["split"])} '
        f"examples attacked {space}, {esc(result['norm'])} norm; robust accuracy is {how}.{omitted}</p>"
    )


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
    out = "<h3>Accuracy under attack</h3>" + table(header, rows)
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
