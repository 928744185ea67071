"""Report section of the explain stage: what the model looks at, and how far to trust that picture."""

from __future__ import annotations

import math
from typing import Any

from glassnet.explain.pictures import token_html
from glassnet.report.card import ReportContext, esc, fmt, num, section, table
from glassnet.report.sections import subset_note
from glassnet.report.validate import ANY, NUMBER, NUMBERS, TEXT, Each

_TOKENS = {"tokens?": [TEXT], "scores?": NUMBERS}
# what the section reads of results/explain.json: checked before it is read
_EXPLAIN = {
    "method_label": ANY,
    "method_description": ANY,
    "examples": ANY,
    "target": ANY,
    "modality": ANY,
    "warnings?": [ANY],
    "summary": {"time_s": NUMBER, "budget": {"memory_mb": NUMBER, "rows_per_pass": ANY}, "options": Each(ANY)},
    "trust?": {
        "faithfulness": {
            "deletion_beats_random": ANY, "deletion_auc": NUMBER, "random_deletion_auc": NUMBER,
            "insertion_beats_random": ANY, "insertion_auc": NUMBER, "random_insertion_auc": NUMBER,
        },
        "infidelity?": Each(ANY), "sensitivity?": Each(ANY), "randomisation?": Each(ANY), "completeness?": Each(ANY),
    },
    "views?": {
        "examples?": [_TOKENS],
        "top_tokens?": [{"token": ANY, "mean_attribution": ANY, "count": ANY}],
        "features?": [{"feature": ANY, "mean_attribution": ANY, "mean_abs": ANY}],
        "per_channel?": [{"channel": ANY, "mean_abs": ANY}],
        "per_frequency_band?": NUMBERS,
    },
    "global?": {"confused_pairs?": [{"true": ANY, "predicted": ANY, "count": ANY}]},
    "highest_loss?": [
        {**_TOKENS, "index": ANY, "loss": ANY, "top_features?": [{"feature": ANY, "attribution": NUMBER}]}
    ],
}  # fmt: skip

_CHECKS = {
    "deletion": "Remove the inputs the method ranks most important first: if the explanation is faithful, the "
    "model's confidence drops faster than when random inputs are removed.",
    "insertion": "Start from a blank input and restore the most important inputs first: confidence should rise "
    "faster than with random ones.",
    "infidelity": "How badly the attributions predict the model's reaction to small random noise "
    "(lower is better; compared with random attributions).",
    "sensitivity": "How much the explanation changes when the input moves very slightly (lower is steadier).",
    "randomisation": "The same method on a copy of the model with random weights: a trustworthy explanation "
    "must change, since it should show what the model learned, not just the input.",
    "completeness": "Integrated gradients' parts must add up to the change of the model's score between the "
    "blank and the real input; the number of steps is raised until they do within 1%.",
}


@section("Explanations", order=60)
def explanations(ctx: ReportContext) -> str | None:
    if ctx.control:  # an agent: report.control writes this part
        return None
    result = ctx.result("explain")
    if not result:
        return None
    if result.get("kind") == "transcription":
        return _words(ctx, ctx.check("explain", result, _WORDS))
    ctx.check("explain", result, _EXPLAIN)
    given = isinstance(result.get("source"), str)  # gn.explain on examples of the user's choice, saved later
    size = None if given else _test_size(ctx)
    if given:
        used = f"{fmt(result['examples'])} examples given to gn.explain (not drawn from the test split)"
    else:
        used = subset_note(result["examples"], "test", size, how=", taken class by class in turn")
    parts = [
        f"<p><b>{esc(result['method_label'])}</b>: {esc(result['method_description'])} "
        f"Explained: {used}, each for {_its(result['target'])}. "
        "Red marks evidence <i>for</i> the class, blue evidence <i>against</i> it.</p>"
    ]
    if isinstance(size, int) and isinstance(result["examples"], int) and result["examples"] < size:
        parts.append(
            '<p class="note">The pictures, the trust checks and the per-class maps cover these examples only; the '
            "confused classes and the most wrong examples are taken from the whole test split.</p>"
        )
    parts += [f'<p class="note warn">&#9888; {esc(w)}</p>' for w in result.get("warnings") or []]
    parts.append(_pictures(ctx, result))
    if result.get("trust"):
        parts.append("<h3>Can this explanation be trusted?</h3>" + _trust_table(result["trust"]))
        parts.append(ctx.figure("explain_curves", "deletion and insertion curves"))
    parts.append(_global(ctx, result))
    parts.append(f'<p class="note">{esc(computation(result["summary"]))}</p>')
    return "".join(parts)


_WORDS = {
    "method_label": TEXT, "method_description": TEXT, "examples": NUMBER, "steps": NUMBER,
    "summary": {"words": NUMBER, "utterances": NUMBER, "median_inside_share": NUMBER, "median_span_share": NUMBER,
                "local_words": NUMBER, "median_completeness_error": NUMBER, "max_completeness_error": NUMBER,
                "median_deletion_drop?": NUMBER, "median_random_drop?": NUMBER, "faithful_words?": NUMBER},
    "words": [{"utterance": NUMBER, "word": TEXT, "inside_share": NUMBER, "span_share": NUMBER}],
    "warnings?": [ANY],
}  # fmt: skip
WORDS_SHOWN = 12  # rows of the per-word table (the least local words first)


def _words(ctx: ReportContext, result: dict[str, Any]) -> str:
    """A speech recognition run: which frames drive each decoded word (glassnet.explain.transcription)."""
    s = result["summary"]
    parts = [
        f"<p><b>{esc(result['method_label'])}</b> ({fmt(result['steps'])} steps): {esc(result['method_description'])}. "
        f"Explained: {fmt(s['words'])} decoded words of {fmt(s['utterances'])} test utterances. A median "
        f"{num(s['median_inside_share'], '.0%')} of a word's attribution lies in the word's own frames, which cover "
        f"{num(s['median_span_share'], '.0%')} of the clip; {num(s['local_words'], '.0%')} of the words put more than "
        "twice their frames' share there (the recogniser hears each word where it is said). Completeness of the "
        f"integrated gradients: median error {num(s['median_completeness_error'], '.2%')}.</p>"
    ]
    if s.get("faithful_words") is not None:
        parts.append(
            "<p>Deletion check: silencing the frames the attribution ranks highest (as many as the word spans) lowers "
            f"a word's log-probability by a median {num(s['median_deletion_drop'], '.2f')} nats, as many random "
            f"frames by {num(s['median_random_drop'], '.2f')}; the top frames matter more than random ones for "
            f"{num(s['faithful_words'], '.0%')} of the words.</p>"
        )
    parts += [f'<p class="note warn">&#9888; {esc(w)}</p>' for w in result.get("warnings") or []]
    parts.append(ctx.figure("explain_words", "spectrograms over each decoded word's attribution in time"))
    least = sorted(result["words"], key=lambda w: w["inside_share"] - w["span_share"])[:WORDS_SHOWN]
    rows = [[w["utterance"], w["word"], num(w["inside_share"], ".0%"), num(w["span_share"], ".0%")] for w in least]
    parts.append(
        "<h3>The least local words</h3>"
        + table(["test utterance", "word", "attribution in its frames", "share of the clip"], rows)
    )
    return "".join(p for p in parts if p)


def _test_size(ctx: ReportContext) -> Any:
    """The number of test examples (results/train.json), or None."""
    train = ctx.result("train", {"data?": {"splits?": {"test?": {"size?": NUMBER}}}}) or {}
    return (((train.get("data") or {}).get("splits") or {}).get("test") or {}).get("size")


# how integrated gradients sums along the path (Captum's names)
_RULES = {
    "gausslegendre": "Gauss-Legendre quadrature",
    "riemann_trapezoid": "the trapezoid rule",
    "riemann_left": "left Riemann sums",
    "riemann_right": "right Riemann sums",
    "riemann_middle": "midpoint Riemann sums",
}


def computation(summary: dict[str, Any]) -> str:
    """How the attributions were computed, in words: the method's settings first, then how the work was split
    (Captum's batch sizes are not shown as option names)."""
    options = dict(summary.get("options") or {})
    said = []
    steps, rule = options.pop("n_steps", None), options.pop("method", None)
    if steps is not None:
        how = _RULES.get(str(rule), str(rule).replace("_", " ")) if rule is not None else ""
        said.append(
            f"the path from the blank input to the real one integrated with {_count(steps)}-point {how}"
            if how
            else f"{_count(steps)} steps along the path from the blank input to the real one"
        )
    elif rule is not None:
        said.append(f"method {rule}")
    samples = options.pop("nt_samples", None) or options.pop("n_samples", None)
    stdevs = options.pop("stdevs", None)
    if samples is not None:
        noise = f" (noise of standard deviation {num(stdevs, '.3g')})" if isinstance(stdevs, (int, float)) else ""
        said.append(f"averaged over {_count(samples)} random samples per example{noise}")
    references = options.pop("references", None)
    if references is not None:
        said.append(f"{_count(references)} reference inputs drawn from")
    window, strides = options.pop("window", None), options.pop("strides", None)
    if window is not None:
        moved = f", moved by {_shape(strides)}" if strides is not None else ""
        said.append(f"a window of {_shape(window)} values hidden at a time{moved}")
    chunk = options.pop("examples_per_chunk", None)
    for internal in ("internal_batch_size", "nt_samples_batch_size", "samples_per_pass", "perturbations_per_eval"):
        options.pop(internal, None)  # batch sizes: said below as the rows per pass
    said += [f"{key.replace('_', ' ')} {value}" for key, value in options.items()]
    budget = summary.get("budget") or {}
    split = f"at most {_count(budget.get('rows_per_pass'))} model inputs per forward and backward pass (a memory " \
        f"budget of {num(budget.get('memory_mb'), 'g')} MB)"  # fmt: skip
    if isinstance(chunk, int):
        split += f", {_count(chunk)} example{'s' if chunk != 1 else ''} at a time"
    layer = f" Attributed at layer {summary['layer']}." if summary.get("layer") else ""
    return f"Computed with Captum in {num(summary.get('time_s'), '.1f')} s: {'; '.join([*said, split])}.{layer}"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _shape(value: Any) -> str:
    return " x ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _pictures(ctx: ReportContext, result: dict[str, Any]) -> str:
    views = result.get("views") or {}
    out = ctx.figure("explain_examples", "inputs and their attributions")
    if result["modality"] == "text":
        rows = "".join(
            f"<p>{_tokens(ctx, e, f'views.examples[{i}]')}</p>"
            for i, e in enumerate(views.get("examples") or [])
            if e.get("tokens")
        )
        out += "<h3>Words that drove the predictions</h3>" + rows
        if views.get("top_tokens"):
            out += "<details><summary>Words with the largest mean attribution</summary>" + table(
                ["word", "mean attribution", "occurrences"],
                [[t["token"], fmt(t["mean_attribution"]), t["count"]] for t in views["top_tokens"]],
            )
            out += "</details>"
    if views.get("features"):
        out += ctx.figure("explain_features", "mean attribution per feature")
        out += "<details><summary>All features</summary>" + table(
            ["feature", "mean attribution", "mean |attribution|"],
            [[f["feature"], fmt(f["mean_attribution"]), fmt(f["mean_abs"])] for f in views["features"]],
        )
        out += "</details>"
    if views.get("per_channel"):
        out += table(
            ["channel", "mean |attribution|"], [[c["channel"], fmt(c["mean_abs"])] for c in views["per_channel"]]
        )
    if views.get("per_frequency_band"):
        bands = views["per_frequency_band"]
        top = sorted(range(len(bands)), key=lambda i: -(bands[i] if bands[i] is not None else -math.inf))[:5]
        out += f"<p>Most important frequency bands (mel band index, 0 = lowest): {esc(', '.join(map(str, top)))}.</p>"
    return out


def _tokens(ctx: ReportContext, example: dict[str, Any], where: str) -> str:
    """An example's words shaded by their attributions; one score per word, or the file is refused."""
    tokens, scores = example["tokens"], example.get("scores") or []
    if len(tokens) != len(scores):
        ctx.invalid("explain", f"'{where}' has {len(tokens)} tokens but {len(scores)} scores")
    return token_html(tokens, scores)


def _trust_table(checks: dict[str, Any]) -> str:
    faith = checks["faithfulness"]
    rows = [
        ["deletion", _verdict(faith["deletion_beats_random"]), f"area {num(faith['deletion_auc'], '.3f')} vs "
         f"random {num(faith['random_deletion_auc'], '.3f')}", _CHECKS["deletion"]],
        ["insertion", _verdict(faith["insertion_beats_random"]), f"area {num(faith['insertion_auc'], '.3f')} vs "
         f"random {num(faith['random_insertion_auc'], '.3f')}", _CHECKS["insertion"]],
    ]  # fmt: skip
    infid = checks.get("infidelity") or {}
    if "infidelity" in infid:
        figure = f"{num(infid['infidelity'], '.4g')} vs random {num(infid.get('random_infidelity'), '.4g')}"
        rows.append(["infidelity", _verdict(infid.get("passed")), figure, _CHECKS["infidelity"]])
    sens = checks.get("sensitivity") or {}
    if "max_sensitivity" in sens:
        rows.append(["max-sensitivity", "reported", num(sens["max_sensitivity"], ".3f"), _CHECKS["sensitivity"]])
    rand = checks.get("randomisation") or {}
    if "rank_correlation" in rand:
        figure = (
            f"correlation {num(rand['rank_correlation'], '.2f')} (must be below {num(rand.get('threshold'), '.2f')})"
        )
        if "example_share" in rand:  # text: compared after removing the profile over token positions
            figure += (
                f"; after removing the position profile (before: {num(rand.get('raw_rank_correlation'), '.2f')}), "
                f"{num(rand['example_share'], '.0%')} of the explanation varies between texts "
                f"(must be at least {num(rand.get('min_example_share'), '.0%')})"
            )
        rows.append(["model randomisation", _verdict(rand.get("passed")), figure, _CHECKS["randomisation"]])
    complete = checks.get("completeness")
    if complete:
        rows.append(
            ["completeness", _verdict(complete.get("holds")), f"worst error "
             f"{num(complete.get('max_relative_error'), '.2%')} at up to {fmt(complete.get('steps_max_used'))} steps",
             _CHECKS["completeness"]]
        )  # fmt: skip
    skipped = [f"{k}: {v['skipped']}" for k, v in checks.items() if isinstance(v, dict) and "skipped" in v]
    note = f'<p class="note">Not run: {esc("; ".join(skipped))}.</p>' if skipped else ""
    return table(["check", "result", "figure", "what it tests"], rows, numeric_from=9) + note


def _verdict(passed: bool) -> str:
    return "passed" if passed else "FAILED"


def _global(ctx: ReportContext, result: dict[str, Any]) -> str:
    views = result.get("global") or {}
    out = ""
    if ctx.own(ctx.run.figure("explain_classes")):
        out += "<h3>What the model looks at, per predicted class (mean attribution)</h3>"
        out += ctx.figure("explain_classes", "mean attribution per predicted class")
    if views.get("confused_pairs"):
        out += "<h3>Classes the model confuses most (test split)</h3>" + table(
            ["true class", "predicted as", "examples"],
            [[p["true"], p["predicted"], p["count"]] for p in views["confused_pairs"]],
            numeric_from=2,
        )
    out += _most_wrong(ctx, result, views)
    return out


def _most_wrong(ctx: ReportContext, result: dict[str, Any], views: dict[str, Any]) -> str:
    """The test examples with the highest loss, explained: only mistakes for a classifier (an example the model
    gets right is never listed), with "no mistakes" said when there are none."""
    listed = result.get("highest_loss") or []
    classified = result.get("task") == "classify" or any("predicted" in e and "true" in e for e in listed)
    if not classified:  # regression: every example has an error; the largest are shown
        worst, heading = listed, "The test examples with the largest errors, explained"
    else:
        worst = [e for e in listed if str(e.get("predicted")) != str(e.get("true"))]
        heading = "The worst test mistakes (highest loss), explained"
    if not worst:
        if classified and views.get("confused_pairs") == []:  # counted over the whole test split
            return "<h3>Mistakes</h3><p>No mistakes on the test split.</p>"
        if classified and listed:
            return (
                f"<h3>Mistakes</h3><p>None of the {len(listed)} test examples with the highest loss is a mistake "
                "(the model predicts them right, without confidence).</p>"
            )
        return ""
    out = f"<h3>{heading}</h3>"
    if len(worst) == len(listed):  # the figure shows exactly these examples
        out += ctx.figure("explain_highest_loss", "highest-loss test examples and their attributions")
    if result["modality"] == "text":
        out += "".join(
            f"<p><b>{esc(e.get('predicted', ''))}</b> ({fmt(e.get('confidence'))}), true {esc(e.get('true', ''))}: "
            f"{_tokens(ctx, e, f'highest_loss[{listed.index(e)}]')}</p>"
            for e in worst
            if e.get("tokens")
        )
    elif result["modality"] == "tabular":
        out += table(
            ["test #", "true", "predicted", "confidence", "loss", "top features (attribution)"],
            [
                [e["index"], e.get("true", ""), e.get("predicted", ""), num(e.get("confidence"), ".1%"),
                 fmt(e["loss"]), ", ".join(f"{f['feature']} ({num(f['attribution'], '+.3g')})"
                                            for f in e.get("top_features") or [])]
                for e in worst
            ],
            numeric_from=3,
        )  # fmt: skip
    elif classified:
        out += table(
            ["test #", "true", "predicted", "confidence", "loss"],
            [[e["index"], e["true"], e["predicted"], num(e.get("confidence"), ".1%"), fmt(e["loss"])] for e in worst],
            numeric_from=3,
        )
    return out


def _its(target: str) -> str:
    """``its predicted class``, but a target that names itself (``the class the model ...``) as it is."""
    return esc(target) if target.startswith(("the ", "a ", "an ")) else f"its {esc(target)}"
