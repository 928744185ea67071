"""Environments as data: gymnasium ids turned into a ``DataSpec`` and factories of (vector) environments.

A reinforcement-learning run learns from an environment instead of a dataset. ``load_environment``
checks the id (with a suggestion for a typo, and the ``pip`` command when its family is not
installed), builds the ``DataSpec`` of its observations and actions (``task="control"``; vector
observations are ``tabular``, Atari frames ``image``), and returns an ``EnvironmentData`` whose
``make`` builds seeded vector environments for training and ``make_one`` single environments for
evaluation and rendering. Atari games are preprocessed the usual way (84 x 84 grey frames, 4 stacked,
frame skip 4, no-op starts, episodic life off), so a policy sees ``4 x 84 x 84`` inputs in [0, 1].

Every environment is wrapped in ``Snapshot``, whose ``get_state`` / ``set_state`` save and restore it
for an exact resume where that is possible: classic control (their physics state, step counters and
random generator) and MuJoCo (``mj_getState``); Box2D and Atari cannot be restored this way, and a
resumed run starts fresh episodes there (``Snapshot.restorable`` says which).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError, UnknownNameError, closest

# family -> (module that must import, pip command, example ids)
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "classic_control": (
        "gymnasium",
        "pip install gymnasium",
        ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"),
    ),
    "box2d": ("Box2D", "pip install box2d pygame", ("LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3")),
    "mujoco": ("mujoco", "pip install mujoco", ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5")),
    "atari": ("ale_py", "pip install ale-py opencv-python-headless", ("ALE/Pong-v5", "ALE/Breakout-v5")),
}
OPTIONS = ("max_episode_steps", "frame_stack", "screen_size")
# what the observations and actions of well-known environments mean (gymnasium's documentation)
OBSERVATION_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "Acrobot": ("cos joint 1", "sin joint 1", "cos joint 2", "sin joint 2", "velocity 1", "velocity 2"),
    "MountainCar": ("position", "velocity"),
    "MountainCarContinuous": ("position", "velocity"),
    "Pendulum": ("cos angle", "sin angle", "angular velocity"),
    "LunarLander": ("x", "y", "velocity x", "velocity y", "angle", "angular velocity", "left leg down",
                    "right leg down"),
    "LunarLanderContinuous": ("x", "y", "velocity x", "velocity y", "angle", "angular velocity",
                              "left leg down", "right leg down"),
}  # fmt: skip
ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole": ("push left", "push right"),
    "Acrobot": ("torque -1", "torque 0", "torque +1"),
    "MountainCar": ("accelerate left", "no acceleration", "accelerate right"),
    "LunarLander": ("do nothing", "fire left engine", "fire main engine", "fire right engine"),
}


def family_of(env_id: str) -> str:
    """The family of a gymnasium id, from where its environment class lives."""
    if env_id.startswith("ALE/") or "NoFrameskip" in env_id:
        return "atari"
    registry = _registry()
    entry = str(registry[env_id].entry_point) if env_id in registry else ""
    for family in ("box2d", "mujoco", "classic_control"):
        if f".{family}." in entry or f".{family}:" in entry:
            return family
    return "other"


def _registry() -> dict[str, Any]:
    if importlib.util.find_spec("ale_py") is not None:
        import ale_py

        gym.register_envs(ale_py)
    return gym.envs.registration.registry


def installed(family: str) -> bool:
    """Whether the packages of an environment family import here."""
    needs = {"box2d": ("Box2D", "pygame"), "atari": ("ale_py", "cv2")}.get(family, (FAMILIES[family][0],))
    return all(importlib.util.find_spec(module) is not None for module in needs)


def list_environments() -> list[dict[str, Any]]:
    """The environment families, whether each is installed, how to install it, and example ids."""
    return [
        {"family": name, "installed": installed(name), "install": pip, "examples": list(examples)}
        for name, (_, pip, examples) in FAMILIES.items()
    ]


def environment_ids(family: str) -> list[str]:
    """Every registered gymnasium id of ``family`` (its latest versions first within a name).

    Raises:
        UnknownNameError: ``family`` is not one of ``FAMILIES``.
        ConfigError: the family is not installed (the message gives the pip command).
    """
    if family not in FAMILIES:
        raise UnknownNameError("environment family", family, list(FAMILIES))
    if not installed(family):
        raise ConfigError(f"the {family} environments are not installed: {FAMILIES[family][1]}")
    registry = _registry()
    return sorted(
        env_id
        for env_id in registry
        if family_of(env_id) == family and (family != "atari" or env_id.startswith("ALE/"))
    )


@dataclass
class EnvironmentData:
    """An environment a run learns from.

    Attributes:
        env_id: the gymnasium id.
        options: ``max_episode_steps`` (override the id's), ``frame_stack`` and ``screen_size`` (Atari).
        spec: the ``DataSpec`` of observations (inputs) and actions (outputs), ``task="control"``.
        info: provenance for the run's summary.
    """

    env_id: str
    options: dict[str, Any] = field(default_factory=dict)
    spec: DataSpec | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def make_one(self, seed: int | None = None, render_mode: str | None = None) -> Any:
        """One environment, wrapped for the policy (Atari preprocessing) and in ``Snapshot``."""
        env = _make(self.env_id, self.options, render_mode)
        if seed is not None:
            env.reset(seed=seed)
            env.action_space.seed(seed)
        return env

    def make(self, n: int, vectorization: str = "sync") -> Any:
        """``n`` environments in one gymnasium vector environment (autoreset in the same step).

        Args:
            n: environments.
            vectorization: ``sync`` (in this process; exact resume possible) or ``async`` (one
                subprocess each; faster for slow environments).
        """
        if vectorization not in ("sync", "async"):
            raise ConfigError(f"vectorization must be sync or async. Received: {vectorization!r}")
        factories = [self._factory() for _ in range(n)]
        kind = gym.vector.SyncVectorEnv if vectorization == "sync" else gym.vector.AsyncVectorEnv
        return kind(factories, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)

    def _factory(self) -> Callable[[], Any]:
        env_id, options = self.env_id, dict(self.options)
        return lambda: _make(env_id, options, None)

    def summary(self) -> dict[str, Any]:
        """What the run's results say about its data."""
        assert self.spec is not None
        return {
            "name": self.env_id,
            "modality": self.spec.modality,
            "task": "control",
            "input_shape": list(self.spec.input_shape),
            "num_outputs": self.spec.num_outputs,
            "class_names": list(self.spec.class_names),
            "splits": {},
            **self.info,
        }


def load_environment(env_id: str, **options: Any) -> EnvironmentData:
    """Check a gymnasium id and describe its observations and actions.

    Raises:
        UnknownNameError-like ``ConfigError``: the id is not registered (the message suggests the
            closest ids).
        ConfigError: its family is not installed (the message gives the pip command), or an option
            is unknown.
    """
    for key in options:
        if key not in OPTIONS:
            guess = closest(key, OPTIONS)
            hint = f" Did you mean {guess!r}?" if guess else ""
            raise ConfigError(f"environment option {key!r} is unknown.{hint} Options: {', '.join(OPTIONS)}")
    family = "atari" if env_id.startswith("ALE/") else None
    if family == "atari" and not installed("atari"):
        raise ConfigError(f"{env_id} is an Atari game: {FAMILIES['atari'][1]}")
    registry = _registry()
    if env_id not in registry:
        guesses = [g for g in _closest_ids(env_id, list(registry)) if g]
        hint = f" Did you mean {', '.join(repr(g) for g in guesses)}?" if guesses else ""
        raise ConfigError(
            f"unknown environment {env_id!r}.{hint} `glassnet envs` lists the families installed here "
            "(gymnasium ids such as CartPole-v1, Pendulum-v1, LunarLander-v3, HalfCheetah-v5, ALE/Pong-v5)"
        )
    family = family_of(env_id)
    if family in FAMILIES and not installed(family):
        raise ConfigError(f"{env_id} needs the {family} environments: {FAMILIES[family][1]}")
    try:
        env = _make(env_id, options, None)
    except Exception as exc:  # gymnasium raises DependencyNotInstalled, TypeError for bad kwargs ...
        raise ConfigError(f"cannot create {env_id}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    try:
        spec = _spec(env_id, env)
    finally:
        env.close()
    info = {"source": f"gymnasium {gym.__version__}, {family} family", "family": family, **options}
    return EnvironmentData(env_id, dict(options), spec, info)


def _closest_ids(name: str, ids: list[str]) -> list[str]:
    import difflib

    return difflib.get_close_matches(name, ids, n=3, cutoff=0.6)


def _spec(env_id: str, env: Any) -> DataSpec:
    observation, action = env.observation_space, env.action_space
    if not isinstance(observation, gym.spaces.Box):
        kind = type(observation).__name__
        raise DataError(f"{env_id} has {kind} observations; glassnet learns from Box observations")
    image = len(observation.shape) == 3
    if image and family_of(env_id) != "atari":
        raise DataError(
            f"{env_id} gives {tuple(observation.shape)} image observations; glassnet's pixel policies read "
            "Atari's preprocessed frames (4 stacked 84 x 84 grey frames). Use an Atari game (ALE/...) or an "
            "environment with vector observations"
        )
    extra: dict[str, Any] = {"env_id": env_id, "max_episode_steps": _episode_limit(env)}
    if isinstance(action, gym.spaces.Discrete):
        extra["action"] = {"kind": "discrete", "n": int(action.n)}
        known = ACTION_NAMES.get(_base(env_id), ())
        outputs = int(action.n)
        names = tuple(known) if len(known) == outputs else _action_names(env, outputs)
    elif isinstance(action, gym.spaces.Box) and len(action.shape) == 1:
        low, high = action.low.astype(float), action.high.astype(float)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise DataError(f"{env_id}'s actions are unbounded; glassnet's continuous policies need finite bounds")
        extra["action"] = {"kind": "continuous", "dim": int(action.shape[0])}
        extra["action"].update(low=low.tolist(), high=high.tolist())
        outputs, names = int(action.shape[0]), ()
    else:
        raise DataError(f"{env_id} has {action} actions; glassnet handles Discrete and 1-D Box action spaces")
    return DataSpec(
        modality="image" if image else "tabular",
        input_shape=tuple(observation.shape),
        task="control",
        num_outputs=outputs,
        class_names=names,
        feature_names=() if image else _observation_names(env_id, int(np.prod(observation.shape))),
        name=env_id,
        extra=extra,
    )


def _base(env_id: str) -> str:
    """``CartPole-v1`` -> ``CartPole``."""
    return env_id.rsplit("/", 1)[-1].rsplit("-v", 1)[0]


def _observation_names(env_id: str, size: int) -> tuple[str, ...]:
    known = OBSERVATION_NAMES.get(_base(env_id), ())
    return tuple(known) if len(known) == size else tuple(f"observation {i}" for i in range(size))


def _episode_limit(env: Any) -> int | None:
    spec = getattr(env, "spec", None)
    return getattr(spec, "max_episode_steps", None)


def _action_names(env: Any, n: int) -> tuple[str, ...]:
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    if callable(meanings):
        names = [str(m).lower() for m in meanings()]
        if len(names) == n and len(set(names)) == n:
            return tuple(names)
    return tuple(f"action {i}" for i in range(n))


def _make(env_id: str, options: dict[str, Any], render_mode: str | None) -> Any:
    kwargs: dict[str, Any] = {}
    if options.get("max_episode_steps"):
        kwargs["max_episode_steps"] = int(options["max_episode_steps"])
    if env_id.startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)
        env = gym.make(env_id, frameskip=1, repeat_action_probability=0.0, render_mode=render_mode, **kwargs)
        size = int(options.get("screen_size", 84))
        env = gym.wrappers.AtariPreprocessing(env, frame_skip=4, screen_size=size, grayscale_obs=True, scale_obs=True)
        env = gym.wrappers.FrameStackObservation(env, int(options.get("frame_stack", 4)))
        space = gym.spaces.Box(0.0, 1.0, env.observation_space.shape, np.float32)
        env = gym.wrappers.TransformObservation(env, lambda o: np.asarray(o, dtype=np.float32), space)
    else:
        env = gym.make(env_id, render_mode=render_mode, **kwargs)
    return Snapshot(env)


class Snapshot(gym.Wrapper):
    """A gymnasium wrapper that can save and restore its environment's state (see the module docstring)."""

    @property
    def restorable(self) -> bool:
        """Whether ``set_state`` restores this environment exactly (classic control, MuJoCo)."""
        return family_of(getattr(self.env.spec, "id", "") or "") in ("classic_control", "mujoco")

    def get_state(self) -> dict[str, Any] | None:
        """The environment's state as plain values and arrays, or None when it cannot be captured."""
        if not self.restorable:
            return None
        layers = []
        wrapper = self.env
        while hasattr(wrapper, "env"):
            layers.append(_plain(vars(wrapper)))
            wrapper = wrapper.env
        core = wrapper
        state: dict[str, Any] = {"wrappers": layers, "core": _plain(vars(core)), "rng": _rng_state(core)}
        if hasattr(core, "data") and hasattr(core, "model"):  # MuJoCo: the full physics state
            import mujoco

            kind = mujoco.mjtState.mjSTATE_FULLPHYSICS
            physics = np.empty(mujoco.mj_stateSize(core.model, kind))
            mujoco.mj_getState(core.model, core.data, physics, kind)
            state["physics"] = _tensor(physics)
        return state

    def set_state(self, state: dict[str, Any] | None) -> bool:
        """Restore what ``get_state`` returned; False when there is nothing to restore."""
        if state is None or not self.restorable:
            return False
        wrapper, layers = self.env, list(state["wrappers"])
        while hasattr(wrapper, "env"):
            _assign(wrapper, layers.pop(0))
            wrapper = wrapper.env
        _assign(wrapper, state["core"])
        if state["rng"] is not None:
            wrapper.np_random.bit_generator.state = state["rng"]
        if "physics" in state:
            import mujoco

            kind = mujoco.mjtState.mjSTATE_FULLPHYSICS
            mujoco.mj_setState(
                wrapper.model, wrapper.data, np.asarray(state["physics"].numpy(), dtype=np.float64), kind
            )
            mujoco.mj_forward(wrapper.model, wrapper.data)
        return True


_PLAIN = (bool, int, float, str, type(None))


def _plain(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes that are numbers, strings, None or NumPy arrays (copied into tensors)."""
    out = {}
    for key, value in attributes.items():
        if key.startswith("__") or key in ("spec", "render_mode"):
            continue
        if isinstance(value, (*_PLAIN, np.generic)):
            out[key] = value.item() if isinstance(value, np.generic) else value
        elif isinstance(value, np.ndarray) and value.dtype != object:
            out[key] = _tensor(value)
    return out


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A copy of ``array`` as a tensor: checkpoints hold tensors, which ``weights_only`` loading accepts."""
    return torch.from_numpy(np.array(array, copy=True))


def _assign(target: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(target, key, value.numpy().copy() if isinstance(value, torch.Tensor) else value)


def _rng_state(core: Any) -> dict[str, Any] | None:
    generator = getattr(core, "_np_random", None)
    return generator.bit_generator.state if generator is not None else None
