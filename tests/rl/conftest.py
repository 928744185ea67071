"""Fixtures of the reinforcement-learning tests: one small trained CartPole agent, and one CPU thread.

Tiny policies train and play far faster on one thread; two threads on a busy two-core machine thrash.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from glassnet.cli import main

# PPO settings that learn CartPole in a few thousand environment steps (tuned in the RL Zoo's spirit)
QUICK_PPO = [
    "step.n_envs=8",
    "step.n_steps=32",
    "step.minibatches=1",
    "step.epochs=20",
    "step.gae_lambda=0.8",
    "step.gamma=0.98",
    "step.lr=0.001",
    "step.entropy=0.0",
]
AGENT_STEPS = 5000
AGENT_EPISODE_LIMIT = 200  # shorter episodes keep every audit of the agent quick


@contextlib.contextmanager
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="session")
def cartpole_agent(tmp_path_factory):
    """A PPO agent trained on CartPole-v1 (episodes capped at 200 steps) for 5,000 environment steps
    through the command line. Tests that write into a run work on a copy (``copy_agent``)."""
    out = tmp_path_factory.mktemp("rl") / "cartpole"
    args = ["train", "--env", "CartPole-v1", "--algo", "ppo", "--steps", str(AGENT_STEPS), "--out", str(out)]
    args += [*QUICK_PPO, f"env.max_episode_steps={AGENT_EPISODE_LIMIT}", "eval_episodes=5", "test_episodes=10"]
    with single_thread():
        assert main([*args, "--quiet"]) == 0
    return out


@pytest.fixture
def copy_agent(cartpole_agent, tmp_path):
    """A private copy of the trained agent's run directory."""

    def copy(name: str = "agent") -> Path:
        return Path(shutil.copytree(cartpole_agent, tmp_path / name))

    return copy


def read_result(run: Path, stage: str = "train") -> dict:
    return json.loads((Path(run) / "results" / f"{stage}.json").read_text())


@pytest.fixture(scope="session")
def result_of():
    """``result_of(run, stage)``: ``RUN/results/<stage>.json`` as a dict."""
    return read_result
