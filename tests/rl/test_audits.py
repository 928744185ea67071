"""The audits of a trained agent through the command line (explain, robustness, compress, report) and
the Python API of environments and policies, on the CartPole agent of ``conftest.py``."""

import base64
import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

import glassnet as gn
from glassnet.cli import main
from glassnet.errors import ConfigError
from glassnet.rl.task import RandomPolicy

CARTPOLE_FEATURES = {"cart position", "cart velocity", "pole angle", "pole angular velocity"}
VARIANTS = ["fp32", "int8-torch-dynamic", "onnx-fp32", "int8-ort-dynamic"]
AUDITS = {
    "evaluate": ["--episodes", "4"],
    "explain": [],
    "robustness": ["--episodes", "3", "--eps", "0.1", "0.5"],
    "compress": ["--episodes", "3", "--quiet"],
    "report": [],
}


def quietly(args):
    """``glassnet ARGS`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def audited(cartpole_agent, tmp_path_factory):
    """A copy of the agent through every audit, then the report: the run and each command's outcome."""
    run = Path(shutil.copytree(cartpole_agent, tmp_path_factory.mktemp("audits") / "agent"))
    return run, {command: quietly([command, run, *args]) for command, args in AUDITS.items()}


def outcome(audited, command):
    run, outcomes = audited
    code, out, err = outcomes[command]
    assert code == 0, err[-3000:]
    return out


def is_png(path):
    with Image.open(path) as image:
        return image.format == "PNG" and image.width > 100


def test_explain_ranks_the_four_cartpole_observations_for_the_action_and_the_value(audited, result_of):
    run, _ = audited
    out = outcome(audited, "explain")
    result = result_of(run, "explain")
    assert result["kind"] == "policy" and result["method"] == "integrated_gradients" and result["examples"] == 64
    rows = result["features"]
    assert {r["feature"] for r in rows} == CARTPOLE_FEATURES and len(rows) == 4
    shares = [r["action_share"] for r in rows]
    assert shares == sorted(shares, reverse=True), "the table is ranked by the share of the action"
    for key in ("action_share", "value_share"):
        assert sum(r[key] for r in rows) == pytest.approx(1, abs=1e-4)
        assert all(r[key] >= 0 for r in rows)
    assert shares[0] > 2 * shares[-1]  # not uniform: some observations matter far more than others
    taken = result["actions_taken"]
    assert set(taken) == {"push left", "push right"} and sum(taken.values()) == 64
    assert min(taken.values()) > 0, "a balancing policy pushes both ways"
    faith = result["trust"]["faithfulness"]
    assert faith["passed"] and faith["deletion_auc"] < faith["random_deletion_auc"]
    assert result["warnings"] == []
    assert result["figures"] == ["explain_policy.png"] and is_png(run / "figures" / "explain_policy.png")
    assert "Integrated gradients on 64 test examples" in out and "deletion: area" in out


def test_robustness_gives_the_return_per_eps_for_random_fgsm_and_pgd_with_the_decisions_changed(audited, result_of):
    run, _ = audited
    out = outcome(audited, "robustness")
    result = result_of(run, "robustness")
    assert result["kind"] == "policy" and result["discrete"] is True and result["episodes"] == 3
    assert result["eps"] == [0.0, 0.1, 0.5] and result["seeds"] == [20000, 20002]
    assert list(result["curves"]) == ["random", "fgsm", "pgd"]
    assert result["clean_return"] > 2 * result["random_policy_return"]
    for name, points in result["curves"].items():
        assert [p["eps"] for p in points] == result["eps"], name
        assert points[0]["return_mean"] == result["clean_return"] and points[0]["changed"] == 0.0
        assert all(0 <= p["changed"] <= 1 and 0 < p["return_mean"] <= 200 for p in points), name
        assert points[2]["changed"] > 0, f"{name} at eps 0.5 changed no decision"
    # an attack aimed at the decision changes more of them than noise of the same size
    random, pgd = result["curves"]["random"], result["curves"]["pgd"]
    assert pgd[2]["changed"] > random[2]["changed"] and pgd[1]["changed"] > random[1]["changed"]
    assert is_png(run / "figures" / "robustness_return.png")
    returns = r"\s+".join(f"{p['return_mean']:.2f}" for p in pgd)
    assert re.search(rf"^pgd\s+{returns}\s*$", out, re.MULTILINE), out
    assert f"clean return {result['clean_return']:.2f}" in out and "actions changed" in out


def test_compress_plays_int8_and_onnx_policies_and_measures_size_latency_and_return(audited, result_of):
    run, _ = audited
    out = outcome(audited, "compress")
    result = result_of(run, "compress")
    assert result["kind"] == "policy" and result["episodes"] == 3 and result["notes"] == []
    variants = {v["name"]: v for v in result["variants"]}
    assert list(variants) == VARIANTS
    for v in variants.values():
        assert v["size_bytes"] > 0 and v["latency_ms_p50"] > 0 and v["latency_ms_p95"] >= v["latency_ms_p50"]
        assert 0 < v["return_mean"] <= 200 and 0.5 < v["decisions_agree"] <= 1, v["name"]
    fp32, onnx, int8 = variants["fp32"], variants["onnx-fp32"], variants["int8-ort-dynamic"]
    assert fp32["decisions_agree"] == 1 and "return_difference" not in fp32
    # the same network in ONNX Runtime: the same decisions and so the same episodes
    assert result["onnx"]["passed"] and onnx["decisions_agree"] == 1
    assert onnx["return_difference"] == 0 and onnx["unchanged"]
    assert int8["size_bytes"] < onnx["size_bytes"] / 2 and int8["size_ratio"] > 2
    for v in (onnx, int8):
        assert (run / v["file"]).stat().st_size == v["size_bytes"]
    for name in VARIANTS:
        assert re.search(rf"^{re.escape(name)}\s", out, re.MULTILINE), name


def test_the_report_holds_the_return_the_audits_and_an_embedded_episode(audited, result_of):
    run, _ = audited
    out = outcome(audited, "report")
    html = (run / "report.html").read_text()
    assert str(run / "report.html") in out
    sections = re.findall(r"<h2[^>]*>([^<]+)", html)
    for title in ("Return", "Environment", "Training", "Policy explanations", "Policy robustness",
                  "Compressed policies"):  # fmt: skip
        assert title in sections, (title, sections)
    assert sections.index("Return") < sections.index("Policy explanations") < sections.index("Compressed policies")
    gifs = re.findall(r'src="data:image/gif;base64,([^"]+)"', html)
    assert len(gifs) == 1
    gif = Image.open(io.BytesIO(base64.b64decode(gifs[0])))
    assert gif.format == "GIF" and gif.n_frames > 1
    train = result_of(run)
    assert f"{train['test']['episodes']} test episodes" in html
    assert "Latest <code>glassnet evaluate</code></h3><p>4 episodes (seeds 20000 to 20003)" in html
    for feature in CARTPOLE_FEATURES:
        assert re.search(rf"<td[^>]*>{feature}</td>", html), feature
    assert "int8-ort-dynamic" in html and "random policy gets" in html


def test_audit_options_that_do_not_apply_to_an_agent_are_refused(cartpole_agent):
    for args, fragment in (
        (["robustness", cartpole_agent, "--norm", "l2"], "attacked in the linf norm"),
        (["robustness", cartpole_agent, "--attack", "cw"], "unknown policy attack 'cw'"),
        (["robustness", cartpole_agent, "--eps", "-0.1"], "eps must be finite and >= 0"),
        (["compress", cartpole_agent, "--prune", "0.5"], "prune does not apply to it"),
        (["explain", cartpole_agent, "--method", "grad_cam"], "grad_cam needs convolutions"),
    ):
        code, _, err = quietly(args)
        assert code == 2 and err.startswith("glassnet: error:") and fragment in err, (args, err)
        assert "Traceback" not in err
    assert not (cartpole_agent / "results" / "robustness.json").exists()


# ---------------------------------------------------------------- the Python API


def test_list_and_load_environments_from_python():
    families = {f["family"]: f for f in gn.list_environments()}
    assert {"classic_control", "box2d", "mujoco", "atari"} == set(families)
    assert families["classic_control"]["installed"] and "CartPole-v1" in families["classic_control"]["examples"]
    env = gn.load_environment("CartPole-v1", max_episode_steps=50)
    assert env.spec.task == "control" and env.spec.extra["max_episode_steps"] == 50
    assert set(env.spec.feature_names) == CARTPOLE_FEATURES
    with pytest.raises(ConfigError, match="Did you mean 'CartPole-v1'"):
        gn.load_environment("Cartpole-v1")


def test_evaluate_policy_plays_seeded_episodes_of_a_loaded_agent(cartpole_agent):
    run = gn.load(cartpole_agent)
    env = gn.load_environment("CartPole-v1", max_episode_steps=200)
    scores = gn.evaluate_policy(run.model, env, episodes=20, seed=7)
    assert scores["episodes"] == 20 and scores["seeds"] == [7, 26] and scores["deterministic"]
    assert len(scores["returns"]) == 20 and max(scores["lengths"]) <= 200
    assert scores == gn.evaluate_policy(run.model, env, episodes=20, seed=7)  # reproducible
    floor = gn.evaluate_policy(RandomPolicy(env.spec), env, episodes=20, seed=7)
    assert floor["return_mean"] < 40 < 150 < scores["return_mean"], (floor["return_mean"], scores["return_mean"])
    # episodes are capped by the environment given: the same agent on 30-step episodes
    short = gn.evaluate_policy(run.model, gn.load_environment("CartPole-v1", max_episode_steps=30), episodes=3)
    assert short["lengths"] == [30, 30, 30] and short["seeds"] == [20000, 20002]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="episodes must be a positive integer"):
            gn.evaluate_policy(run.model, env, episodes=bad)
