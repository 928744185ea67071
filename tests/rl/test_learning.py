"""Each algorithm learns: on the smallest budget that still proves it, the deterministic policy's mean
return over the held-out test episodes clears a stated bar, far above a uniformly random policy's on
the same seeds. Seeded, one CPU thread: the returns are the same on every run.

Measured on a 2-core machine (seeds 0 to 4 where given, to size the margins; the tests use seed 0):

| algorithm, environment | budget | bar | test return, seed 0 (other seeds) | random | time |
| --- | --- | --- | --- | --- | --- |
| PPO, CartPole-v1 (200-step episodes) | 8,192 steps | >= 150 | 170 (200, 180, 200, 200) | 22.6 | 7 s |
| DQN, CartPole-v1 (200-step episodes) | 6,000 steps | >= 150 | 195 (195, 200, 195, 200) | 22.6 | 12 s |
| SAC, Pendulum-v1 | 3,000 steps | >= -500 | -193 (-194, -193, -177) | -1200 | 26 s |
| PPO, Pendulum-v1 (continuous actions) | 60,000 steps | >= -900 | -581 (-277, -721) | -1200 | 25 s |
"""

import pytest

from glassnet.cli import main

from .conftest import QUICK_PPO, read_result

pytestmark = pytest.mark.slow

CARTPOLE_CAP = ["env.max_episode_steps=200"]  # a perfect CartPole agent then scores 200
# the RL Zoo's DQN settings for CartPole (examples/rl/cartpole-dqn.yaml), on 6,000 instead of 50,000 steps
QUICK_DQN = [
    "step.lr=0.0023", "step.batch_size=64", "step.learning_starts=1000", "step.target_update_interval=10",
    "step.train_freq=256", "step.gradient_steps=128", "step.exploration_fraction=0.16", "step.exploration_final=0.04",
]  # fmt: skip
# SAC as in examples/rl/pendulum-sac.yaml, with 128 units instead of 256: twice as fast, learns as quickly
QUICK_SAC = ["step.lr=0.001", "model.hidden=128"]
# the RL Zoo's PPO settings for Pendulum, without its state-dependent exploration; reward scaling instead
CONTINUOUS_PPO = [
    "step.n_envs=4", "step.n_steps=1024", "step.minibatches=64", "step.epochs=10", "step.gamma=0.9",
    "step.gae_lambda=0.95", "step.lr=0.001", "step.entropy=0.0", "step.normalize_reward=true",
]  # fmt: skip


def learn(tmp_path, env, algo, steps, *overrides, test_episodes=20):
    """Train through the command line (seed 0); ``results/train.json``."""
    out = tmp_path / f"{algo}-{env}"
    args = ["train", "--env", env, "--algo", algo, "--steps", str(steps), "--out", str(out), "--quiet"]
    assert main([*args, *overrides, "seed=0", "eval_episodes=5", f"test_episodes={test_episodes}"]) == 0
    result = read_result(out)
    assert result["training"]["env_steps"] >= steps
    assert result["test"]["episodes"] == test_episodes and result["test"]["seeds"][0] == 20000
    return result


def assert_learnt(result, bar):
    """The test return clears ``bar``, and the run's own verdict against the random policy says so."""
    test, random = result["test"], result["baseline"]["test"]
    assert result["baseline"]["name"] == "random" and result["baseline"]["comparison"]["verdict"] == "beats"
    assert test["return_mean"] >= bar > random["return_mean"], (test["return_mean"], bar, random["return_mean"])


def test_ppo_balances_cartpole_in_8192_steps(tmp_path):
    result = learn(tmp_path, "CartPole-v1", "ppo", 8192, *QUICK_PPO, *CARTPOLE_CAP)
    assert_learnt(result, bar=150)
    assert result["baseline"]["test"]["return_mean"] < 30  # random play: the pole falls within ~20 steps
    assert result["test"]["return_mean"] >= 5 * result["baseline"]["test"]["return_mean"]


def test_dqn_balances_cartpole_in_6000_steps(tmp_path):
    result = learn(tmp_path, "CartPole-v1", "dqn", 6000, *QUICK_DQN, *CARTPOLE_CAP)
    assert_learnt(result, bar=150)
    assert result["test"]["return_min"] >= 100  # not one lucky episode: every test episode lasts
    assert result["training"]["step"]["name"] == "dqn" and result["model"]["name"] == "q_network"


def test_sac_swings_the_pendulum_up_in_3000_steps(tmp_path):
    result = learn(tmp_path, "Pendulum-v1", "sac", 3000, *QUICK_SAC, test_episodes=10)
    assert result["baseline"]["test"]["return_mean"] < -1000
    assert_learnt(result, bar=-500)
    assert result["model"]["name"] == "sac_agent"


def test_ppo_with_continuous_actions_learns_the_pendulum_in_60000_steps(tmp_path):
    result = learn(tmp_path, "Pendulum-v1", "ppo", 60000, *CONTINUOUS_PPO, test_episodes=10)
    assert result["baseline"]["test"]["return_mean"] < -1000
    assert_learnt(result, bar=-900)
    assert result["training"]["step"]["normalize_reward"] is True
