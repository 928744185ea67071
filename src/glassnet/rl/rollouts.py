"""``Rollouts``: vectorised environments as a batch source, played by the model being trained.

Each batch is ``steps`` transitions of each of ``n_envs`` environments (``T x E``), collected with
the training step's ``act`` in eval mode without gradients. Episodes that end are reset in the same
step (gymnasium's same-step autoreset): ``next_observations`` holds the observation that followed
each action, the final one of an episode included, while the rollout goes on from the reset one.

A batch (tensors on the trainer's device): ``observations`` ``T x E x ...``, ``actions``,
``rewards``, ``terminated`` and ``truncated`` (``T x E``), ``next_observations``, whatever ``act``
returned per transition (log-probabilities, values), ``last_observation`` ``E x ...`` (where the
next rollout starts, for bootstrapping), and ``episode_returns`` / ``episode_lengths`` of the
episodes that ended in it. ``env_steps`` counts the environment steps taken so far.

For an exact resume the source saves its generator, counters and current observations and, with
``sync`` vectorisation and environments that can be captured (classic control, MuJoCo), each
environment's state; otherwise a resumed run starts fresh episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from glassnet.data.environments import EnvironmentData
from glassnet.errors import ConfigError
from glassnet.models.outputs import eval_mode
from glassnet.train.sources import StreamSource, to_device

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer

Act = Callable[[nn.Module, torch.Tensor, torch.Generator], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class Rollouts(StreamSource):
    """Rollouts of ``n_envs`` copies of an environment, ``steps`` steps each per batch.

    Args:
        environment: what ``glassnet.data.environments.load_environment`` returned.
        n_envs: environments stepped together.
        steps: steps of every environment per batch.
        vectorization: ``sync`` (one process; exact resume) or ``async`` (a subprocess each).
        act: ``act(model, observations E x ..., generator) -> (actions, extras)``; default ``trainer.step.act``.
    """

    def __init__(
        self, environment: EnvironmentData, n_envs: int, steps: int, vectorization: str = "sync", act: Act | None = None
    ) -> None:
        for name, value in (("n_envs", n_envs), ("steps", steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
        self.environment, self.n_envs, self.steps = environment, n_envs, steps
        self.vectorization, self.act = vectorization, act
        self.envs: Any = None
        self.generator = torch.Generator()
        self.observation: torch.Tensor | None = None
        self.returns = np.zeros(n_envs)
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.episodes = self.env_steps = 0
        self.restored_exactly: bool | None = None
        self._restart_reported = False

    def bind(self, trainer: Trainer) -> None:
        self.device = trainer.device
        self.policy = self.act or getattr(trainer.step, "act", None)
        if self.policy is None:
            raise ConfigError(f"{type(trainer.step).__name__} has no act method to play the environment with")
        if self.envs is None:
            self.envs = self.environment.make(self.n_envs, self.vectorization)
        self.seed = (trainer.seed * 1_000_003 + trainer.rank * 7_919) % 2**31
        self.generator.manual_seed(self.seed)
        self._reset(self.seed)
        self.episodes = self.env_steps = 0

    def _reset(self, seed: int) -> None:
        observations, _ = self.envs.reset(seed=[seed + i for i in range(self.n_envs)])
        self.observation = torch.as_tensor(np.asarray(observations), dtype=torch.float32)
        self.returns[:], self.lengths[:] = 0.0, 0

    def batches(self, trainer: Trainer, model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield to_device(self.rollout(model), self.device)

    def rollout(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """One batch: ``steps`` steps of every environment with the current policy."""
        T, E = self.steps, self.n_envs
        observations, next_observations, actions = [], [], []
        rewards, terminated, truncated = np.zeros((T, E), np.float32), np.zeros((T, E), bool), np.zeros((T, E), bool)
        extras: dict[str, list[torch.Tensor]] = {}
        returns, lengths = [], []
        with eval_mode(model), torch.no_grad():
            for t in range(T):
                observation = self.observation
                action, extra = self.policy(model, observation.to(self.device), self.generator)
                action = action.detach().cpu()
                following, reward, ended, cut, info = self.envs.step(action.numpy())
                following = np.asarray(following, dtype=np.float32)
                after = following.copy()
                if "final_obs" in info:  # the episode's last observation, before the same-step reset
                    for i in np.flatnonzero(info["_final_obs"]):
                        after[i] = np.asarray(info["final_obs"][i], dtype=np.float32)
                observations.append(observation)
                next_observations.append(torch.from_numpy(after))
                actions.append(action)
                rewards[t], terminated[t], truncated[t] = reward, ended, cut
                for key, value in extra.items():
                    extras.setdefault(key, []).append(value.detach().cpu())
                self.returns += reward
                self.lengths += 1
                for i in np.flatnonzero(np.logical_or(ended, cut)):
                    returns.append(float(self.returns[i]))
                    lengths.append(int(self.lengths[i]))
                    self.returns[i], self.lengths[i] = 0.0, 0
                    self.episodes += 1
                self.observation = torch.from_numpy(following)
        self.env_steps += T * E
        batch = {
            "observations": torch.stack(observations),
            "actions": torch.stack(actions),
            "rewards": torch.from_numpy(rewards),
            "terminated": torch.from_numpy(terminated),
            "truncated": torch.from_numpy(truncated),
            "next_observations": torch.stack(next_observations),
            "last_observation": self.observation.clone(),
            "episode_returns": torch.tensor(returns, dtype=torch.float32),
            "episode_lengths": torch.tensor(lengths, dtype=torch.long),
        }
        batch.update({key: torch.stack(values) for key, values in extras.items()})
        if self.restored_exactly is False and not self._restart_reported:
            # the episodes before the resume were abandoned: a replay buffer must not join them to these
            batch["episodes_restarted"] = torch.tensor(True)
            self._restart_reported = True
        return batch

    def count(self, batch: Any) -> int:
        return self.steps * self.n_envs

    def state_dict(self) -> dict[str, Any]:
        states = None
        if self.vectorization == "sync" and self.envs is not None:
            states = [env.get_state() for env in self.envs.envs]
            if any(state is None for state in states):
                states = None
        return {
            "generator": self.generator.get_state(),
            "observation": self.observation,
            "returns": torch.from_numpy(self.returns.copy()),
            "lengths": torch.from_numpy(self.lengths.copy()),
            "counters": [self.episodes, self.env_steps],
            "envs": states,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.episodes, self.env_steps = state["counters"]
        if state["envs"] is not None and self.vectorization == "sync":
            for env, saved in zip(self.envs.envs, state["envs"]):
                env.set_state(saved)
            self.observation = state["observation"]
            self.returns = state["returns"].numpy().copy()
            self.lengths = state["lengths"].numpy().copy()
            self.restored_exactly = True
        else:  # the environments cannot be restored: fresh episodes, seeded by how far training got
            self._reset(self.seed + 100_003 * (1 + self.episodes))
            self.restored_exactly, self._restart_reported = False, False
