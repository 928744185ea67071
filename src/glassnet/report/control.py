"""Report sections of an agent (a run trained on an environment): its return, the environment, how it
learnt (with plain-word diagnostics), an animation of its policy, and the audits of that policy."""

from __future__ import annotations

from typing import Any

from glassnet.report.card import ReportContext, esc, fmt, key_values, num, section, table
from glassnet.report.sections import baseline_sentence
from glassnet.report.validate import ANY, NUMBER, NUMBERS, PAIR, TEXT, Each

# what the sections read of an agent's results files: checked before they are read
_RETURN = {"test": {"seeds": PAIR, "episodes": ANY}, "episode?": Each(ANY)}
_EVALUATION = {"test": {"episodes": ANY, "seeds": PAIR, "return_mean": ANY, "return_std": ANY}}
_ENVIRONMENT = {"data": {"name": ANY, "modality": ANY, "input_shape": [ANY], "class_names?": [ANY]}}
_TRAINING = {
    "training": {
        "step?": Each(ANY), "steps": ANY, "train_time_s": NUMBER, "device": ANY, "samples_per_s": NUMBER,
        "best_epoch": ANY, "monitor": ANY, "best_score": ANY,
    },
    "diagnostics?": {"warnings?": [ANY], "checks?": Each({"value": ANY, "threshold": ANY, "passed": ANY})},
}  # fmt: skip
_EXPLAIN = {
    "method_label": ANY, "states": ANY, "baseline": ANY, "warnings?": [ANY],
    "features?": [{"feature": ANY, "action_share": NUMBER, "action_mean": ANY, "value_share": NUMBER,
                   "value_mean": ANY}],
    "figures?": [TEXT],
    "trust?": {"faithfulness?": {"deletion_auc": ANY, "random_deletion_auc": ANY, "passed": ANY}},
}  # fmt: skip
_ROBUSTNESS = {
    "eps": NUMBERS, "curves": Each([{"return_mean": ANY, "changed?": NUMBER}]), "episodes": ANY, "units": ANY,
    "clean_return": ANY, "random_policy_return": ANY, "warnings?": [ANY],
}  # fmt: skip
_COMPRESS = {"episodes": ANY, "latency": ANY, "variants": [Each(ANY)], "warnings?": [ANY], "notes?": [ANY]}


def _warning(text: str) -> str:
    return f'<p class="note warn">&#9888; {esc(text)}</p>'


@section("Return", order=10)
def agent_return(ctx: ReportContext) -> str | None:
    """The test episodes' return, the verdict against a random policy, and one episode as an animation."""
    result = ctx.result("train")
    if not result or not ctx.control:
        return None
    ctx.check("train", result, _RETURN)
    test = result["test"]
    tiles = "".join(
        f'<div class="metric">{esc(label)}<b>{fmt(test[key])}</b></div>'
        for key, label in (
            ("return_mean", "mean return"),
            ("return_std", "std of return"),
            ("return_min", "worst episode"),
            ("length_mean", "mean length"),
        )
        if key in test
    )
    first, last = test["seeds"]
    parts = [
        f'<div class="metrics">{tiles}</div>',
        _verdict(ctx, "train", result.get("baseline")),
        f'<p class="note">{esc(test["episodes"])} test episodes (seeds {esc(first)} to {esc(last)}) with the '
        "deterministic policy; the best weights were chosen on other seeds, so these episodes were never used for "
        "selection.</p>",
    ]
    evaluation = ctx.result("evaluate")
    if evaluation and evaluation.get("task") == "control":
        e = ctx.check("evaluate", evaluation, _EVALUATION)["test"]
        parts.append(
            f"<h3>Latest <code>glassnet evaluate</code></h3><p>{esc(e['episodes'])} episodes (seeds "
            f"{esc(e['seeds'][0])} to {esc(e['seeds'][1])}): return {fmt(e['return_mean'])} &plusmn; "
            f"{fmt(e['return_std'])}.</p>"
        )
        parts += [_warning(w) for w in evaluation.get("warnings") or []]
    parts.append(_animation(ctx, result.get("episode") or {}))
    return "".join(parts)


def _verdict(ctx: ReportContext, stage: str, block: Any) -> str:
    said = baseline_sentence(ctx, stage, block)
    if not said or not said[1]:
        return ""
    verdict, line = said
    line = line.replace("the network", "the agent")
    return f'<p class="verdict {esc(verdict)}"><b>{esc(line[0].upper() + line[1:])}.</b></p>'


def _animation(ctx: ReportContext, episode: dict[str, Any]) -> str:
    if "skipped" in episode:
        return f'<p class="note">No animation: {esc(episode["skipped"])}.</p>'
    animation = ctx.picture(ctx.run.figures_dir / "episode.gif", "image/gif", "an episode of the trained policy")
    if not animation:
        return ""
    return (
        f'<h3>The trained policy playing</h3><p class="note">Test episode of seed {esc(episode.get("seed"))}: '
        f"return {fmt(episode.get('return'))} in {esc(episode.get('length'))} steps ({esc(episode.get('frames'))} "
        f"frames shown).</p>{animation}"
    )


@section("Environment", order=20)
def environment(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result or not ctx.control:
        return None
    data = ctx.check("train", result, _ENVIRONMENT)["data"]
    actions = ", ".join(map(str, data.get("class_names") or [])) or f"{data.get('num_outputs')} continuous values"
    facts = [
        ["environment", data["name"]],
        ["source", data.get("source", "")],
        ["observations", f"{data['modality']}, shape {' x '.join(map(str, data['input_shape']))}"],
        ["actions", actions],
    ]
    return key_values(facts)


@section("Training", order=40)
def agent_training(ctx: ReportContext) -> str | None:
    result = ctx.result("train")
    if not result or not ctx.control:
        return None
    t = ctx.check("train", result, _TRAINING)["training"]
    step = dict(t.get("step") or {})
    algorithm = step.pop("name", "?")
    settings = ", ".join(f"{k}={v}" for k, v in step.items())
    parts = [
        f"<p><b>{esc(algorithm)}</b>: {fmt(t.get('env_steps'))} environment steps ({fmt(t['steps'])} training "
        f"steps) in {num(t['train_time_s'], '.1f')} s on {esc(t['device'])} ({num(t['samples_per_s'], ',.0f')} "
        f"environment steps/s). The weights kept are those of evaluation {esc(t['best_epoch'])}, the best on "
        f"<code>{esc(t['monitor'])}</code> ({fmt(t['best_score'])}).</p>",
        f'<p class="note">Settings: {esc(settings)}.</p>',
        ctx.figure("learning_curve", "return and episode length against environment steps"),
    ]
    diagnostics = result.get("diagnostics") or {}
    parts += [_warning(w) for w in diagnostics.get("warnings") or []]
    checks = diagnostics.get("checks") or {}
    if checks:
        rows = [[name.replace("_", " "), fmt(c["value"]), fmt(c["threshold"]), "ok" if c["passed"] else "WARNING"]
                for name, c in checks.items()]  # fmt: skip
        parts.append("<h3>Diagnostics</h3>" + table(["check", "value", "threshold", "verdict"], rows))
    parts.append(ctx.figure("diagnostics", "entropy, KL, value estimates and TD errors during training"))
    return "".join(parts)


@section("Policy explanations", order=60)
def policy_explanations(ctx: ReportContext) -> str | None:
    result = ctx.result("explain")
    if not result or result.get("kind") != "policy":
        return None
    ctx.check("explain", result, _EXPLAIN)
    parts = [
        f"<p><b>{esc(result['method_label'])}</b> on {esc(result['states'])}; reference input: "
        f"{esc(result['baseline'])}. Which observations drive the action the agent chooses, and which its "
        "estimate of how well things are going.</p>"
    ]
    parts += [_warning(w) for w in result.get("warnings") or []]
    if result.get("features"):
        rows = [[r["feature"], num(r["action_share"], ".1%"), fmt(r["action_mean"]), num(r["value_share"], ".1%"),
                 fmt(r["value_mean"])] for r in result["features"]]  # fmt: skip
        header = ["observation", "share (action)", "mean (action)", "share (value)", "mean (value)"]
        parts.append(table(header, rows))
    for name in result.get("figures") or []:
        parts.append(ctx.figure(name.removesuffix(".png"), "attributions of the policy"))
    faith = (result.get("trust") or {}).get("faithfulness")
    if faith:
        parts.append(
            f'<p class="note">Deletion test: removing the top-ranked observations first gives an area of '
            f"{fmt(faith['deletion_auc'])} against {fmt(faith['random_deletion_auc'])} for random ones "
            f"({'passed' if faith['passed'] else 'failed'}).</p>"
        )
    return "".join(parts)


@section("Policy robustness", order=70)
def policy_robustness(ctx: ReportContext) -> str | None:
    result = ctx.result("robustness")
    if not result or result.get("kind") != "policy":
        return None
    ctx.check("robustness", result, _ROBUSTNESS)
    header = ["attack", *(f"eps {num(e, '.3g')}" for e in result["eps"])]
    rows = [[name, *(f"{fmt(p['return_mean'])} ({num(p.get('changed', 0), '.0%')})" for p in points)]
            for name, points in result["curves"].items()]  # fmt: skip
    parts = [
        f"<p>Return of {esc(result['episodes'])} test episodes when every observation is perturbed within an "
        f"L-infinity ball of radius eps ({esc(result['units'])}) before the agent acts. Clean return "
        f"{fmt(result['clean_return'])}; a random policy gets {fmt(result['random_policy_return'])}. In brackets: "
        f"{esc(result.get('changed', 'decisions changed'))}.</p>",
        *(_warning(w) for w in result.get("warnings") or []),
        table(header, rows),
        ctx.figure("robustness_return", "return against the perturbation budget"),
    ]
    return "".join(parts)


@section("Compressed policies", order=75)
def policy_compression(ctx: ReportContext) -> str | None:
    result = ctx.result("compress")
    if not result or result.get("kind") != "policy":
        return None
    ctx.check("compress", result, _COMPRESS)
    from glassnet.compress.policy import VARIANT_COLUMNS, variant_rows

    body = table(VARIANT_COLUMNS, variant_rows(result))
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in result.get("notes") or [])
    return (
        f"<p>Each variant plays the same {esc(result['episodes'])} test episodes; the return is unchanged when the "
        "difference is within twice its noise (the standard error of the difference). Latency: "
        f"{esc(result['latency'])}.</p>" + "".join(_warning(w) for w in result.get("warnings") or []) + body + notes
    )
