"""Each algorithm discounts with the ``gamma`` it is given (SAC once used the buffer's default 0.99)."""

import pytest

from glassnet.config import RunConfig
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
