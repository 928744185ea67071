"""The agent's commands (``evaluate``, ``play``, ``envs``) on the trained CartPole agent, and every user
error of an ``--env`` run: exit status 2, one ``glassnet: error:`` line, no traceback, nothing written."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

import glassnet as gn
from glassnet.cli import main
from glassnet.rl.task import RandomPolicy

PREFIX = "glassnet: error:"
TRAIN = ["train", "--env", "CartPole-v1", "--algo", "ppo", "--steps", "256"]


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Nothing a command writes by default (runs/...) lands in the repository."""
    monkeypatch.chdir(tmp_path)


def run_cli(capsys, args):
    """``glassnet ARGS`` in-process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(capsys, args, *fragments):
    """ARGS fails as a user error whose one-line message holds every fragment."""
    code, out, err = run_cli(capsys, args)
    assert code == 2, (out, err)
    assert err.startswith(PREFIX) and err.count(PREFIX) == 1, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    return err


def snapshot(directory):
    """Bytes and modification time of every file below ``directory``."""
    return {
        p.relative_to(directory): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(Path(directory).rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- evaluate


def test_evaluate_prints_mean_and_std_and_records_the_episodes_and_seeds_it_played(copy_agent, capsys, result_of):
    run = copy_agent()
    code, out, err = run_cli(capsys, ["evaluate", run, "--episodes", 5, "--seed", 300])
    assert code == 0
    assert "evaluating" in err and "5/5" in err  # a bar over the episodes (off with --quiet)
    result = result_of(run, "evaluate")
    test = result["test"]
    assert result["task"] == "control" and result["data"] == "CartPole-v1" and result["size"] == 5
    assert test["episodes"] == 5 and test["seeds"] == [300, 304] and test["deterministic"] is True
    assert len(test["returns"]) == len(test["lengths"]) == 5
    assert test["return_mean"] == pytest.approx(sum(test["returns"]) / 5)
    assert test["return_min"] == min(test["returns"]) and test["return_max"] == max(test["returns"])
    assert all(length <= 200 for length in test["lengths"])  # the run's env.max_episode_steps=200 is kept
    assert "CartPole-v1: 5 episodes (seeds 300-304), deterministic policy" in out
    shown = re.search(r"return\s+(-?\d+\.\d\d) \+- (\d+\.\d\d)", out)
    assert shown, out
    assert shown.groups() == (f"{test['return_mean']:.2f}", f"{test['return_std']:.2f}")
    baseline = result["baseline"]
    assert baseline["name"] == "random" and baseline["comparison"]["verdict"] == "beats"
    assert "baseline: the network beats the baseline (a uniformly random policy)" in out
    assert f"written:  {Path(run) / 'results' / 'evaluate.json'}" in out


def test_evaluate_is_reproducible_for_a_seed_and_the_seed_reaches_the_environments(copy_agent, capsys, result_of):
    run = copy_agent()
    outcomes = []
    for seed in (300, 300, 301):
        assert run_cli(capsys, ["evaluate", run, "--episodes", 5, "--seed", seed])[0] == 0
        outcomes.append(result_of(run, "evaluate"))
    first, again, other = outcomes
    assert first["test"] == again["test"]
    assert first["baseline"]["test"] == again["baseline"]["test"]
    # the random policy's returns depend on the episodes' seeds: another seed gives other episodes
    assert other["test"]["seeds"] == [301, 305]
    assert other["baseline"]["test"] != first["baseline"]["test"]
    # the seeds recorded are the ones played: the same episodes replayed through the Python API
    environment = gn.load(run).data()
    random_play = gn.evaluate_policy(RandomPolicy(environment.spec), environment, episodes=5, seed=300)
    assert random_play["return_mean"] == pytest.approx(first["baseline"]["test"]["return_mean"])
    agent_play = gn.evaluate_policy(gn.load(run).model, environment, episodes=5, seed=300)
    assert agent_play["returns"] == first["test"]["returns"] and agent_play["lengths"] == first["test"]["lengths"]


def test_evaluate_refuses_bad_episode_counts_a_missing_run_and_data_for_an_agent(copy_agent, capsys, tmp_path):
    run = copy_agent()
    before = snapshot(run)
    assert_user_error(capsys, ["evaluate", run, "--episodes", 0], "episodes must be a positive integer. Received: 0")
    assert_user_error(capsys, ["evaluate", run, "--episodes", -3], "Received: -3")
    assert_user_error(
        capsys, ["evaluate", run, "--data", "digits"], "an agent is evaluated in its own environment (CartPole-v1)"
    )
    assert snapshot(run) == before, "a refused evaluation must not write results"
    assert_user_error(
        capsys,
        ["evaluate", tmp_path / "no-such-run", "--episodes", 5],
        "does not exist",
        "--env CartPole-v1 --algo ppo",
    )


# ---------------------------------------------------------------- play


def test_play_writes_a_readable_animated_gif_of_the_seeded_episode(copy_agent, capsys, result_of):
    run = copy_agent()
    code, out, _ = run_cli(
        capsys, ["play", run, "--out", "ep.gif", "--seed", 20001, "--max-frames", 40, "--width", 160]
    )
    assert code == 0
    info = result_of(run, "play")
    assert info["seed"] == 20001 and info["env"] == "CartPole-v1" and info["deterministic"] is True
    assert info["file"] == "ep.gif" and 1 < info["frames"] <= 40
    with Image.open("ep.gif") as gif:
        assert gif.format == "GIF" and gif.is_animated
        assert gif.n_frames == info["frames"] and gif.width == 160
        gif.seek(gif.n_frames - 1)  # every frame decodes
    assert f"episode:  seed 20001, return {info['return']:.2f}, {info['length']} steps" in out
    assert f"written:  ep.gif ({info['frames']} frames)" in out
    # the rendered episode is the one evaluation plays on that seed
    loaded = gn.load(run)
    replayed = gn.evaluate_policy(loaded.model, loaded.data(), episodes=1, seed=20001)
    assert (replayed["returns"][0], replayed["lengths"][0]) == (info["return"], info["length"])


def test_play_refuses_other_formats_and_bad_sizes_before_writing(copy_agent, capsys):
    run = copy_agent()
    before = snapshot(run)
    for name in ("ep.mp4", "ep.png"):
        assert_user_error(capsys, ["play", run, "--out", name], "play writes an animated GIF", f"Received: '{name}'")
        assert not Path(name).exists()
    assert_user_error(capsys, ["play", run, "--max-frames", 0], "max_frames must be a positive integer")
    assert_user_error(capsys, ["play", run, "--width", -1], "width must be a positive integer")
    assert snapshot(run) == before


# ---------------------------------------------------------------- envs


def test_envs_lists_the_families_and_each_id_of_a_family(capsys):
    code, out, _ = run_cli(capsys, ["envs"])
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert {"classic_control", "box2d", "mujoco", "atari"} <= set(rows)
    assert rows["classic_control"].split()[1] == "yes" and "CartPole-v1" in rows["classic_control"]
    assert "glassnet train --env ID --algo ppo|dqn|sac" in out
    code, out, _ = run_cli(capsys, ["envs", "--family", "classic_control"])
    assert code == 0
    ids = out.split()
    assert {"CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCarContinuous-v0"} <= set(ids)
    assert not any("LunarLander" in i or i.startswith("ALE/") for i in ids)
    assert_user_error(capsys, ["envs", "--family", "classic-control"], "Did you mean 'classic_control'")


# ---------------------------------------------------------------- train: mistakes found before anything is written

MISTAKES = {
    "unknown environment": (
        ["train", "--env", "CartPole-v2", "--algo", "ppo", "--steps", "256"],
        ["unknown environment 'CartPole-v2'", "Did you mean 'CartPole-v1'", "glassnet envs"],
    ),
    "unknown algorithm": (
        ["train", "--env", "CartPole-v1", "--algo", "ppoo", "--steps", "256"],
        ["unknown training step 'ppoo'", "Did you mean 'ppo'?"],
    ),
    "zero steps": (
        ["train", "--env", "CartPole-v1", "--algo", "ppo", "--steps", "0"],
        ["needs a budget in environment steps (a positive number): --steps N"],
    ),
    "negative steps": (
        ["train", "--env", "CartPole-v1", "--algo", "ppo", "--steps", "-5"],
        ["must be a positive number of environment steps", "env_steps=-5"],
    ),
    "dqn on continuous actions": (
        ["train", "--env", "Pendulum-v1", "--algo", "dqn", "--steps", "256"],
        ["dqn needs discrete actions; Pendulum-v1 has continuous ones", "--algo sac or --algo ppo"],
    ),
    "sac on discrete actions": (
        ["train", "--env", "CartPole-v1", "--algo", "sac", "--steps", "256"],
        ["sac needs continuous actions; CartPole-v1 has discrete ones", "--algo ppo or --algo dqn"],
    ),
    "misspelt step option": ([*TRAIN, "step.n_env=4"], ["ppo has no option 'n_env'. Did you mean 'n_envs'?"]),
    "shortened step option": ([*TRAIN, "step.gae=0.9"], ["ppo has no option 'gae'. Did you mean 'gae_lambda'?"]),
    "misspelt model option": ([*TRAIN, "model.hiden=32"], ["has no hyper-parameter 'hiden'. Did you mean 'hidden'?"]),
    "misspelt environment option": (
        [*TRAIN, "env.max_steps=50"],
        ["environment option 'max_steps' is unknown. Did you mean 'max_episode_steps'"],
    ),
    "a model the algorithm cannot train": ([*TRAIN, "model=q_network"], ["ppo trains the actor_critic model"]),
    "a replay buffer smaller than one step": (
        ["train", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "256", "step.buffer_size=0"],
        ["step.buffer_size must be an integer >= n_envs (1). Received: 0"],
    ),
    "bad vectorization": ([*TRAIN, "step.vectorization=threads"], ["step.vectorization must be sync or async"]),
    "an environment without an algorithm": (
        ["train", "--env", "CartPole-v1", "--steps", "256"],
        ["--env needs an algorithm: --algo ppo, dqn or sac"],
    ),
    "an algorithm without an environment": (
        ["train", "--algo", "ppo", "--steps", "256", "--data", "digits", "--model", "mlp"],
        ["--algo and --steps apply to reinforcement learning: add --env ID"],
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_mistake_in_an_agents_training_command_is_one_line_and_writes_nothing(mistake, capsys, tmp_path):
    args, fragments = MISTAKES[mistake]
    out = tmp_path / "agent"
    assert_user_error(capsys, [*args, "--out", out, "--quiet"], *fragments)
    assert not out.exists(), f"{mistake}: the refused run left {sorted(p.name for p in out.iterdir())}"


@pytest.mark.parametrize(
    "mistake", ["misspelt step option", "sac on discrete actions", "a replay buffer smaller than one step"]
)
def test_an_invalid_overwrite_leaves_the_existing_run_intact(mistake, copy_agent, capsys):
    run = copy_agent()
    before = snapshot(run)
    assert (run / "checkpoints" / "last.pt").relative_to(run) in before
    args, fragments = MISTAKES[mistake]
    assert_user_error(capsys, [*args, "--out", run, "--overwrite", "--quiet"], *fragments)
    assert snapshot(run) == before, f"{mistake}: a refused --overwrite changed the run"


def test_training_into_an_existing_run_needs_overwrite_and_resume_takes_no_settings(copy_agent, capsys):
    run = copy_agent()
    before = snapshot(run)
    assert_user_error(capsys, [*TRAIN, "--out", run, "--quiet"], "already holds a run; pass --overwrite")
    assert_user_error(
        capsys, ["train", "--resume", run, "step.lr=0.1"], "--resume continues with the run's saved configuration"
    )
    assert snapshot(run) == before


def test_a_corrupt_or_truncated_model_is_refused_by_every_command_without_a_traceback(copy_agent, capsys):
    run = copy_agent()
    weights = run / "model.safetensors"
    whole = weights.read_bytes()
    for damaged in (b"not a safetensors file", whole[: len(whole) // 2]):
        weights.write_bytes(damaged)
        results = snapshot(run / "results")
        for command in (["evaluate", run, "--episodes", 2], ["play", run, "--out", "ep.gif"], ["explain", run]):
            assert_user_error(capsys, command, "cannot read weights", "model.safetensors", "truncated or corrupt")
        assert snapshot(run / "results") == results and not Path("ep.gif").exists()
    weights.unlink()
    assert_user_error(capsys, ["evaluate", run], "is not a complete run: model.safetensors missing")
    json.loads((run / "results" / "train.json").read_text())  # the run's own record is untouched
