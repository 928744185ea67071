"""The replay buffer: n-step returns cut at episode ends, byte frames, wrap-around and exact state."""

import pytest
import torch

from glassnet.errors import ConfigError
from glassnet.rl.replay import ReplayBuffer

GAMMA = 0.5


def rollout(steps, n_envs=2, start=0, ends=None, rewards=None):
    """``steps x n_envs`` transitions whose observation is ``[10 t + e]`` (its own address), the next one
    ``[10 t + e + 0.5]``; ``ends`` maps (t, e) to "terminated" or "truncated"."""
    t = torch.arange(start, start + steps, dtype=torch.float32).view(-1, 1)
    e = torch.arange(n_envs, dtype=torch.float32).view(1, -1)
    observations = (10 * t + e).unsqueeze(-1)
    batch = {
        "observations": observations,
        "actions": (t + e).long() % 2,
        "rewards": rewards if rewards is not None else torch.ones(steps, n_envs),
        "terminated": torch.zeros(steps, n_envs, dtype=torch.bool),
        "truncated": torch.zeros(steps, n_envs, dtype=torch.bool),
        "next_observations": observations + 0.5,
    }
    for (step, env), kind in (ends or {}).items():
        batch[kind][step - start, env] = True
    return batch


def address(observation):
    """(t, e) of a stored transition from its observation ``10 t + e``."""
    value = int(round(float(torch.as_tensor(observation).reshape(-1)[0])))
    return value // 10, value % 10


def sampled(buffer, n_step, count=400, seed=0):
    """Every distinct transition drawn: (t, e) -> (return, discount, address of the bootstrap observation)."""
    draw = buffer.sample(count, torch.Generator().manual_seed(seed), n_step=n_step, gamma=GAMMA)
    found = {}
    for i in range(count):
        key = address(draw["observations"][i])
        bootstrap = float(draw["next_observations"][i].reshape(-1)[0]) - 0.5
        value = (round(float(draw["returns"][i]), 6), round(float(draw["discounts"][i]), 6), address(bootstrap))
        assert found.setdefault(key, value) == value, key  # the same transition always gets the same target
        expected_action = (key[0] + key[1]) % 2
        assert int(draw["actions"][i]) == expected_action
    return found


def test_n_step_returns_stop_at_a_termination_and_bootstrap_after_a_truncation():
    # environment 0: rewards 1..8, terminated at step 2, truncated at step 5; environment 1: rewards 10..80, no ends
    rewards = torch.stack([torch.arange(1.0, 9.0), 10 * torch.arange(1.0, 9.0)], dim=1)
    buffer = ReplayBuffer(capacity=100, n_envs=2)
    buffer.add(rollout(8, rewards=rewards, ends={(2, 0): "terminated", (5, 0): "truncated"}))
    assert len(buffer) == 16
    found = sampled(buffer, n_step=3)
    # by hand, gamma = 0.5, n = 3 (starts 6 and 7 lack three following steps, so they are never drawn)
    expected = {
        (0, 0): (1 + 0.5 * 2 + 0.25 * 3, 0.0, (2, 0)),  # the episode terminates within the 3 steps: no bootstrap
        (1, 0): (2 + 0.5 * 3, 0.0, (2, 0)),
        (2, 0): (3.0, 0.0, (2, 0)),
        (3, 0): (4 + 0.5 * 5 + 0.25 * 6, 0.125, (5, 0)),  # truncated at step 5: bootstraps from its last observation
        (4, 0): (5 + 0.5 * 6, 0.25, (5, 0)),
        (5, 0): (6.0, 0.5, (5, 0)),
        **{(t, 1): (10 * (t + 1) + 0.5 * 10 * (t + 2) + 0.25 * 10 * (t + 3), 0.125, (t + 2, 1)) for t in range(6)},
    }
    assert found == expected


def test_one_step_returns_are_the_reward_and_gamma_unless_terminated():
    buffer = ReplayBuffer(capacity=10, n_envs=1)
    buffer.add(rollout(5, n_envs=1, rewards=torch.arange(1.0, 6.0).view(5, 1), ends={(1, 0): "terminated"}))
    found = sampled(buffer, n_step=1)
    assert found == {
        (0, 0): (1.0, 0.5, (0, 0)),
        (1, 0): (2.0, 0.0, (1, 0)),
        (2, 0): (3.0, 0.5, (2, 0)),
        (3, 0): (4.0, 0.5, (3, 0)),
        (4, 0): (5.0, 0.5, (4, 0)),
    }


def test_the_oldest_transitions_are_overwritten_and_returns_run_across_the_wrap():
    buffer = ReplayBuffer(capacity=9, n_envs=2)  # rounded down to 4 slots of 2 environments
    assert buffer.slots == 4
    buffer.add(rollout(3, rewards=torch.ones(3, 2)))
    buffer.add(rollout(3, start=3, rewards=2 * torch.ones(3, 2)))
    assert len(buffer) == 8 and buffer.position == 2
    found = sampled(buffer, n_step=2)
    # steps 2..5 remain; a 2-step return starts at 2, 3 or 4 (step 4 reads slot 0 after slot 3)
    assert found == {
        **{(2, e): (1 + 0.5 * 2, 0.25, (3, e)) for e in range(2)},
        **{(3, e): (2 + 0.5 * 2, 0.25, (4, e)) for e in range(2)},
        **{(4, e): (2 + 0.5 * 2, 0.25, (5, e)) for e in range(2)},
    }


def test_frames_are_stored_as_bytes_and_come_back_exactly():
    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (6, 2, 4, 8, 8), generator=generator).float() / 255
    batch = rollout(6)
    batch["observations"], batch["next_observations"] = frames, frames.roll(1, dims=0)
    buffer = ReplayBuffer(capacity=12, n_envs=2, frames=True)
    buffer.add(batch)
    assert buffer.data["observations"].dtype == torch.uint8 and buffer.data["next_observations"].dtype == torch.uint8
    assert torch.equal(buffer.data["observations"][:6], (frames * 255).round().to(torch.uint8))
    draw = buffer.sample(64, torch.Generator().manual_seed(1), 1, GAMMA)
    stored = frames.flatten(0, 1)
    for observation in draw["observations"]:
        assert observation.dtype == torch.float32
        assert any(torch.equal(observation, f) for f in stored)  # bitwise, not merely close
    plain = ReplayBuffer(capacity=12, n_envs=2)
    plain.add(batch)
    same = plain.sample(64, torch.Generator().manual_seed(1), 1, GAMMA)
    assert torch.equal(draw["observations"], same["observations"])
    assert torch.equal(draw["next_observations"], same["next_observations"])


def test_the_state_holds_only_the_filled_slots_and_restores_the_same_samples():
    buffer = ReplayBuffer(capacity=20, n_envs=2)
    buffer.add(rollout(3, ends={(1, 1): "terminated"}))
    state = buffer.state_dict()
    assert state["slots"] == 10 and state["size"] == 3 and state["position"] == 3
    assert all(len(v) == 3 for v in state["data"].values())  # 3 of 10 slots saved
    copy = ReplayBuffer(capacity=20, n_envs=2)
    copy.load_state_dict(state)
    assert len(copy) == len(buffer) == 6
    for key, value in buffer.data.items():
        assert torch.equal(copy.data[key], value) and copy.data[key].dtype == value.dtype, key
    for n_step in (1, 2):
        a = buffer.sample(32, torch.Generator().manual_seed(5), n_step=n_step, gamma=0.9)
        b = copy.sample(32, torch.Generator().manual_seed(5), n_step=n_step, gamma=0.9)
        assert all(torch.equal(a[k], b[k]) for k in a)
    buffer.add(rollout(9, start=3))  # both go on identically, through the wrap
    copy.add(rollout(9, start=3))
    assert (buffer.position, buffer.size) == (copy.position, copy.size) == (2, 10)
    assert all(torch.equal(buffer.data[k], copy.data[k]) for k in buffer.data)
    with pytest.raises(ValueError, match="the saved replay buffer has 10 slots, this one 5"):
        ReplayBuffer(capacity=10, n_envs=2).load_state_dict(state)


def test_bad_sizes_and_too_few_transitions_are_explained():
    with pytest.raises(ConfigError, match=r"buffer_size must be an integer >= n_envs \(4\)"):
        ReplayBuffer(capacity=3, n_envs=4)
    buffer = ReplayBuffer(capacity=10, n_envs=1)
    buffer.add(rollout(2, n_envs=1))
    with pytest.raises(ConfigError, match="fewer transitions than one n-step return needs"):
        buffer.sample(4, torch.Generator().manual_seed(0), n_step=3, gamma=GAMMA)


def test_episodes_abandoned_by_a_resume_end_where_they_were_cut():
    # a resume that cannot restore the environments (Box2D, Atari) starts fresh episodes: the n-step
    # returns of the last stored steps must not run on into them
    buffer = ReplayBuffer(capacity=20, n_envs=2)
    buffer.add(rollout(3, rewards=torch.ones(3, 2)))
    fresh = rollout(3, start=3, rewards=2 * torch.ones(3, 2))
    buffer.add({**fresh, "episodes_restarted": torch.tensor(True)})
    found = sampled(buffer, n_step=2)
    for e in range(2):
        assert found[(1, e)] == (1 + 0.5 * 1, 0.25, (2, e))
        assert found[(2, e)] == (1.0, 0.5, (2, e)), "the cut step bootstraps from its own next observation"
        assert found[(3, e)] == (2 + 0.5 * 2, 0.25, (4, e))


def test_rollouts_say_once_that_a_resume_restarted_their_episodes():
    from types import SimpleNamespace

    from glassnet.data.environments import load_environment
    from glassnet.rl.rollouts import Rollouts

    def act(model, observations, generator):
        return torch.zeros(len(observations), dtype=torch.long), {}

    def source():
        made = Rollouts(load_environment("CartPole-v1"), n_envs=2, steps=3, act=act)
        made.bind(SimpleNamespace(device=torch.device("cpu"), seed=0, rank=0, step=None))
        return made

    model = torch.nn.Linear(4, 2)
    saved = source()
    saved.rollout(model)
    state = {**saved.state_dict(), "envs": None}  # as from environments that cannot be captured
    resumed = source()
    resumed.load_state_dict(state)
    assert resumed.restored_exactly is False
    assert "episodes_restarted" in resumed.rollout(model) and "episodes_restarted" not in resumed.rollout(model)
    exact = source()
    exact.load_state_dict(saved.state_dict())
    assert exact.restored_exactly and "episodes_restarted" not in exact.rollout(model)
