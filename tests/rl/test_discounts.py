"""What the replay targets learn from: the configured ``gamma`` (SAC once used the buffer's default
0.99), enough stored steps for an n-step return, and rewards clipped to their sign only when asked."""

import gymnasium as gym
import numpy as np
import pytest

from glassnet.config import RunConfig
from glassnet.errors import ConfigError
from glassnet.pipeline import train
from glassnet.rl.replay import ReplayBuffer

SMALL = {"n_envs": 1, "learning_starts": 16, "batch_size": 8, "buffer_size": 200}
CASES = {
    "sac": ("Pendulum-v1", {"name": "sac", **SMALL}),
    "dqn": ("CartPole-v1", {"name": "dqn", **SMALL, "train_freq": 1, "n_step": 2}),
}


@pytest.mark.parametrize("algo", sorted(CASES))
def test_the_replay_targets_use_the_configured_gamma(algo, tmp_path, monkeypatch):
    env, step = CASES[algo]
    seen = []
    sample = ReplayBuffer.sample

    def spy(self, count, generator, n_step, gamma):
        seen.append(gamma)
        return sample(self, count, generator, n_step, gamma)

    monkeypatch.setattr(ReplayBuffer, "sample", spy)
    config = RunConfig(env=env, step={**step, "gamma": 0.5}, env_steps=40, eval_episodes=1, test_episodes=1)
    train(
        config.with_overrides(["env.max_episode_steps=20", "baseline=false", "model.hidden=16"]), out=tmp_path / "run"
    )
    assert seen and set(seen) == {0.5}


def test_updates_wait_for_the_transitions_one_n_step_return_needs(tmp_path):
    # learning may start at once, but a 5-step return needs 5 stored steps of an environment first
    step = {"name": "dqn", **SMALL, "learning_starts": 0, "batch_size": 2, "train_freq": 1, "n_step": 5}
    config = RunConfig(env="CartPole-v1", step=step, env_steps=30, eval_episodes=1, test_episodes=1)
    run = train(config.with_overrides(["baseline=false", "model.hidden=16"]), out=tmp_path / "run")
    assert run.result("train")["training"]["env_steps"] >= 30


class Fives(gym.Env):
    """Every step pays 5; episodes last 10 steps."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2, np.float32), 5.0, self.t >= 10, False, {}


if "GlassnetFives-v0" not in gym.registry:
    gym.register("GlassnetFives-v0", entry_point=Fives, max_episode_steps=10)


@pytest.mark.parametrize("clip,stored", [("auto", 5.0), (True, 1.0), (False, 5.0)])
def test_rewards_are_clipped_to_their_sign_for_learning_only_when_asked(clip, stored, tmp_path, monkeypatch):
    # auto clips for frames (the Atari recipe) and leaves vector observations alone
    seen = []
    add = ReplayBuffer.add

    def spy(self, batch):
        seen.append(batch["rewards"])
        return add(self, batch)

    monkeypatch.setattr(ReplayBuffer, "add", spy)
    step = {"name": "dqn", **SMALL, "train_freq": 1, "clip_reward": clip}
    config = RunConfig(env="GlassnetFives-v0", step=step, env_steps=30, eval_episodes=1, test_episodes=1)
    run = train(config.with_overrides(["baseline=false", "model.hidden=16"]), out=tmp_path / "run")
    assert {float(r) for batch in seen for r in batch.flatten()} == {stored}
    assert run.result("train")["test"]["return_mean"] == 50.0  # evaluation keeps the game's own rewards


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_a_bad_clip_reward_setting_is_named_before_anything_is_written(algo, tmp_path):
    config = RunConfig(env="CartPole-v1", step={"name": algo, "clip_reward": "sign"}, env_steps=10)
    with pytest.raises(ConfigError, match="step.clip_reward must be auto, true or false. Received: 'sign'"):
        train(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
