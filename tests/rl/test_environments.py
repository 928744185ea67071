"""Environments as data: specs, helpful errors, and the snapshots behind an exact resume."""

import importlib.util

import numpy as np
import pytest
import torch

from glassnet.data import environments
from glassnet.data.environments import environment_ids, list_environments, load_environment
from glassnet.errors import ConfigError, DataError, UnknownNameError


def test_cartpole_is_a_discrete_control_task_with_named_observations_and_actions():
    env = load_environment("CartPole-v1")
    spec = env.spec
    assert spec.task == "control" and spec.modality == "tabular"
    assert spec.input_shape == (4,) and spec.num_outputs == 2
    assert spec.extra["action"] == {"kind": "discrete", "n": 2}
    assert spec.feature_names == ("cart position", "cart velocity", "pole angle", "pole angular velocity")
    assert spec.class_names == ("push left", "push right")
    assert spec.extra["max_episode_steps"] == 500
    assert env.info["family"] == "classic_control" and env.summary()["task"] == "control"


def test_pendulum_is_a_continuous_control_task_with_its_torque_bounds():
    spec = load_environment("Pendulum-v1").spec
    assert spec.modality == "tabular" and spec.input_shape == (3,) and spec.num_outputs == 1
    assert spec.extra["action"] == {"kind": "continuous", "dim": 1, "low": [-2.0], "high": [2.0]}
    assert spec.feature_names == ("cos angle", "sin angle", "angular velocity")
    assert spec.class_names == ()


def test_options_reach_the_environment_and_a_misspelt_one_is_named():
    capped = load_environment("CartPole-v1", max_episode_steps=25)
    assert capped.spec.extra["max_episode_steps"] == 25
    env = capped.make_one(seed=0)
    steps, done = 0, False
    while not done:  # pushing one way topples the pole or hits the cap; both end the episode by step 25
        _, _, ended, cut, _ = env.step(0 if steps % 7 else 1)
        steps, done = steps + 1, ended or cut
    assert steps <= 25
    with pytest.raises(
        ConfigError, match="environment option 'max_steps' is unknown. Did you mean 'max_episode_steps'"
    ):
        load_environment("CartPole-v1", max_steps=10)


def test_an_unknown_id_suggests_the_closest_registered_ones():
    with pytest.raises(ConfigError, match="unknown environment 'CartPole-v2'") as caught:
        load_environment("CartPole-v2")
    assert "'CartPole-v1'" in str(caught.value) and "glassnet envs" in str(caught.value)
    with pytest.raises(ConfigError, match="unknown environment 'Nothing-like-this-v0'") as caught:
        load_environment("Nothing-like-this-v0")
    assert "Did you mean" not in str(caught.value)


def test_a_family_that_is_not_installed_gives_the_pip_command(monkeypatch):
    monkeypatch.setattr(environments, "installed", lambda family: family == "classic_control")
    if "HalfCheetah-v5" in environments._registry():
        with pytest.raises(ConfigError, match="HalfCheetah-v5 needs the mujoco environments: pip install mujoco"):
            load_environment("HalfCheetah-v5")
    with pytest.raises(ConfigError, match="LunarLander-v3 needs the box2d environments: pip install box2d pygame"):
        load_environment("LunarLander-v3")
    with pytest.raises(ConfigError, match="ALE/Pong-v5 is an Atari game: pip install ale-py opencv-python-headless"):
        load_environment("ALE/Pong-v5")
    with pytest.raises(ConfigError, match="the mujoco environments are not installed: pip install mujoco"):
        environment_ids("mujoco")
    listed = {f["family"]: f for f in list_environments()}
    assert listed["classic_control"]["installed"] and not listed["mujoco"]["installed"]
    assert listed["mujoco"]["install"] == "pip install mujoco" and "HalfCheetah-v5" in listed["mujoco"]["examples"]


def test_families_list_their_ids_and_an_unknown_family_is_named():
    ids = environment_ids("classic_control")
    assert {"CartPole-v1", "Pendulum-v1", "Acrobot-v1"} <= set(ids)
    assert not any(i.startswith("ALE/") for i in ids)
    with pytest.raises(UnknownNameError, match="Did you mean 'classic_control'"):
        environment_ids("classic-control")


def test_vector_environments_are_seeded_and_a_bad_vectorization_is_refused():
    env = load_environment("CartPole-v1")
    first, second = env.make(3), env.make(3)
    try:
        a, _ = first.reset(seed=[1, 2, 3])
        b, _ = second.reset(seed=[1, 2, 3])
        assert a.shape == (3, 4) and np.array_equal(a, b)
        assert all(e.restorable for e in first.envs)  # the wrapper behind an exact resume
    finally:
        first.close()
        second.close()
    with pytest.raises(ConfigError, match="vectorization must be sync or async"):
        env.make(2, "threads")


def replay(env, actions):
    """Step ``actions`` (a reset in place of None); every observation, reward and end flag seen."""
    seen = []
    for action in actions:
        if action is None:
            observation, _ = env.reset()  # unseeded: drawn from the environment's own generator
            seen.append((observation.copy(), 0.0, False, False))
            continue
        observation, reward, ended, cut, _ = env.step(action)
        seen.append((np.asarray(observation).copy(), float(reward), bool(ended), bool(cut)))
    return seen


def assert_same_trajectory(first, second):
    assert len(first) == len(second)
    for (o1, r1, e1, c1), (o2, r2, e2, c2) in zip(first, second):
        assert np.array_equal(o1, o2) and (r1, e1, c1) == (r2, e2, c2)


def test_a_cartpole_snapshot_restores_physics_time_limit_and_random_generator_exactly():
    env = load_environment("CartPole-v1", max_episode_steps=12).make_one(seed=3)
    for action in (0, 1, 0, 1, 1):
        env.step(action)
    state = env.get_state()
    # the time limit truncates 7 steps on, the unseeded reset draws from the generator, then 6 more steps
    actions = [1, 0, 1, 0, 0, 1, 1, None, 0, 1, 0, 1, 1, 0]
    first = replay(env, actions)
    assert first[6][3] or first[6][2], "the episode should end at the 12-step cap (or earlier)"
    assert env.set_state(state) is True
    second = replay(env, actions)
    assert_same_trajectory(first, second)
    fresh = load_environment("CartPole-v1", max_episode_steps=12).make_one(seed=4)
    assert not np.array_equal(replay(fresh, [None])[0][0], first[7][0])  # the reset really depends on the state


def through_checkpoint(state, tmp_path):
    """``state`` written and read back the way checkpoints are (``weights_only``: tensors, no NumPy)."""
    torch.save({"state": state}, tmp_path / "state.pt")
    return torch.load(tmp_path / "state.pt", weights_only=True)["state"]


def test_pendulum_snapshots_are_exact_too_after_a_trip_through_a_checkpoint(tmp_path):
    env = load_environment("Pendulum-v1").make_one(seed=0)
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-2, 2, size=1).astype(np.float32) for _ in range(20)]
    replay(env, actions[:5])
    state = through_checkpoint(env.get_state(), tmp_path)
    first = replay(env, actions[5:] + [None] + actions[5:8])
    env.set_state(state)
    assert_same_trajectory(first, replay(env, actions[5:] + [None] + actions[5:8]))


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="mujoco is not installed (pip install mujoco)")
def test_a_mujoco_snapshot_restores_the_full_physics_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working directory
    env = load_environment("HalfCheetah-v5").make_one(seed=0)
    rng = np.random.default_rng(1)
    actions = [rng.uniform(-1, 1, size=6).astype(np.float32) for _ in range(25)]
    replay(env, actions[:10])
    state = env.get_state()
    assert state is not None and "physics" in state
    state = through_checkpoint(state, tmp_path)
    first = replay(env, actions[10:])
    assert env.set_state(state)
    assert_same_trajectory(first, replay(env, actions[10:]))
    env.close()


@pytest.mark.skipif(
    importlib.util.find_spec("Box2D") is None or importlib.util.find_spec("pygame") is None,
    reason="box2d is not installed (pip install box2d pygame)",
)
def test_box2d_environments_say_they_cannot_be_restored():
    env = load_environment("LunarLander-v3").make_one(seed=0)
    assert not env.restorable and env.get_state() is None and env.set_state(None) is False
    env.close()


@pytest.mark.skipif(
    importlib.util.find_spec("ale_py") is None or importlib.util.find_spec("cv2") is None,
    reason="the Atari environments are not installed (pip install ale-py opencv-python-headless)",
)
def test_atari_games_are_stacks_of_four_84_by_84_grey_frames_in_byte_steps():
    data = load_environment("ALE/Pong-v5")
    spec = data.spec
    assert spec.modality == "image" and spec.input_shape == (4, 84, 84) and spec.task == "control"
    assert spec.extra["action"] == {"kind": "discrete", "n": 6}
    assert spec.class_names[:2] == ("noop", "fire") and spec.feature_names == ()
    env = data.make_one(seed=0)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (4, 84, 84) and observation.dtype == np.float32
    assert observation.min() >= 0.0 and observation.max() <= 1.0
    # k / 255 values: what the replay buffer's frames=True stores as bytes without loss
    assert np.array_equal(np.round(observation * 255) / 255, observation.astype(np.float32))
    assert not env.restorable and env.get_state() is None
    env.close()
    small = load_environment("ALE/Pong-v5", frame_stack=2, screen_size=42)
    assert small.spec.input_shape == (2, 42, 42)


@pytest.mark.skipif(
    importlib.util.find_spec("Box2D") is None or importlib.util.find_spec("pygame") is None,
    reason="box2d is not installed (pip install box2d pygame)",
)
def test_image_observations_other_than_atari_frames_are_refused_with_the_reason():
    # CarRacing gives 96 x 96 x 3 frames, channels last; the pixel policies read stacked 84 x 84 grey frames
    with pytest.raises(DataError, match=r"CarRacing-v3 gives \(96, 96, 3\) image observations"):
        load_environment("CarRacing-v3")
