"""Exact resume of agents: a run SIGKILLed after its first checkpoint and resumed with
``glassnet train --resume`` ends bitwise equal to an uninterrupted one (classic control, sync
vectorisation: the environments' states, the replay buffer, random generators and optimisers are
all in ``checkpoints/last.pt``)."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glassnet.train.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("rl_worker.py")
COMMON = ["env=CartPole-v1", "env.max_episode_steps=100", "eval_episodes=2", "test_episodes=3", "baseline=false"]
# (overrides, training steps, evaluation period, the step after which the process is killed)
CASES = {
    # 4 x 32 = 128 environment steps per training step: 20 steps, evaluated (and checkpointed) every 2
    "ppo": (["step.name=ppo", "step.n_envs=4", "step.n_steps=32", "step.epochs=2", "env_steps=2560"], 20, 2, 5),
    # 2 x 4 = 8 environment steps per step: 250 steps, every 25; the 300-transition buffer wraps at step 75,
    # learning starts at step 13, the target network follows every 10 steps, epsilon falls over half the run
    "dqn": (
        [
            "step.name=dqn", "step.n_envs=2", "step.train_freq=4", "step.buffer_size=300", "step.learning_starts=100",
            "step.batch_size=16", "step.target_update_interval=80", "step.n_step=3", "step.exploration_fraction=0.5",
            "env_steps=2000", "model.hidden=32",
        ],
        250, 25, 80,
    ),
}  # fmt: skip


def work(out, *args, killed=False):
    done = subprocess.run(
        [sys.executable, str(WORKER), str(out), *map(str, args)], capture_output=True, text=True, timeout=600
    )
    if killed:
        assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    else:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def metrics(run):
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("algo", sorted(CASES))
def test_a_sigkilled_agent_resumes_bitwise_equal_to_an_uninterrupted_one(tmp_path, algo):
    overrides, steps, period, kill_at = CASES[algo]
    overrides = COMMON + overrides
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    work(whole, *overrides)
    work(cut, *overrides, "--kill-at", kill_at, killed=True)
    # it died after the evaluation periods ending at step kill_at // period * period were checkpointed
    assert not (cut / "model.safetensors").exists() and not (cut / "results").exists()
    saved = load_checkpoint(cut / "checkpoints" / "last.pt")
    assert saved["global_step"] == kill_at // period * period
    assert len(metrics(cut)) == kill_at // period
    assert saved["source"]["envs"] is not None, "the environments' states must be in the checkpoint"
    if algo == "dqn":
        buffer = saved["step"]["buffer"]
        assert buffer["size"] == buffer["slots"] == 150, "the buffer should have wrapped before the checkpoint"
    done = work(cut, "--resume")
    assert "resuming" in done.stderr

    first, second = load_file(str(whole / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), f"{algo}: {key} differs after the resume"
    a = json.loads((whole / "results" / "train.json").read_text())
    b = json.loads((cut / "results" / "train.json").read_text())
    assert a["test"]["returns"] == b["test"]["returns"]
    assert (a["training"]["steps"], a["training"]["env_steps"]) == (b["training"]["steps"], b["training"]["env_steps"])
    assert a["training"]["steps"] == steps and b["training"]["resumed"] and not a["training"]["resumed"]
    assert a["training"]["best_epoch"] == b["training"]["best_epoch"]
    drop = ("time", "elapsed", "samples_per_s", "epoch_time_s", "train_time_s")
    clean = [{k: v for k, v in m.items() if not any(d in k for d in drop)} for m in metrics(whole)]
    assert clean == [{k: v for k, v in m.items() if not any(d in k for d in drop)} for m in metrics(cut)]
    assert len(clean) == 10
