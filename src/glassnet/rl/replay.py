"""A replay buffer of vectorised transitions, sampled uniformly, with n-step returns.

Transitions are stored in time order per environment (``slots x n_envs``), the oldest overwritten
first, so an n-step return is the next ``n`` rewards of the same environment, cut at the end of
its episode: ``R = r_0 + g r_1 + ... + g^(k-1) r_(k-1)``, bootstrapped from the observation after
step ``k - 1`` with weight ``g^k`` unless the episode terminated (a truncated episode still
bootstraps from its last observation). Its whole content is in ``state_dict``, so a resumed run
samples exactly what an uninterrupted one would. Frames in [0, 1] (Atari's ``k / 255``) can be
kept as bytes (``frames=True``), four times smaller and exact.
"""

from __future__ import annotations

from typing import Any

import torch

from glassnet.errors import ConfigError


class ReplayBuffer:
    """Up to ``capacity`` transitions of ``n_envs`` environments.

    Args:
        capacity: transitions kept (rounded down to a multiple of ``n_envs``).
        n_envs: environments whose transitions arrive together.
        frames: store observations as bytes (``round(255 x)``): for frames whose values are ``k / 255``.
    """

    OBSERVATIONS = ("observations", "next_observations")

    def __init__(self, capacity: int, n_envs: int, frames: bool = False) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < n_envs:
            raise ConfigError(f"buffer_size must be an integer >= n_envs ({n_envs}). Received: {capacity!r}")
        self.slots, self.n_envs, self.frames = capacity // n_envs, n_envs, frames
        self.data: dict[str, torch.Tensor] = {}
        self.position = self.size = 0  # next slot to write; slots filled

    def __len__(self) -> int:
        return self.size * self.n_envs

    def add(self, batch: dict[str, torch.Tensor]) -> None:
        """Store a rollout (``T x E`` transitions: observations, actions, rewards, terminated, truncated,
        next_observations; ``episodes_restarted`` when the environments were reset by a resume)."""
        keys = ("observations", "actions", "rewards", "terminated", "truncated", "next_observations")
        steps = len(batch["rewards"])
        if "episodes_restarted" in batch and self.size:
            # a resume that could not restore the environments abandoned their episodes: the newest stored
            # transitions end there (truncated: bootstrapped from their own next observation), so n-step
            # returns never run on into the fresh episodes
            self.data["truncated"][(self.position - 1) % self.slots] = True
        if not self.data:
            for key in keys:
                value = batch[key]
                dtype = torch.uint8 if self.frames and key in self.OBSERVATIONS else value.dtype
                self.data[key] = torch.zeros((self.slots, *value.shape[1:]), dtype=dtype, device=value.device)
        for t in range(steps):
            for key in keys:
                value = batch[key][t]
                if self.frames and key in self.OBSERVATIONS:
                    value = (value * 255).round().to(torch.uint8)
                self.data[key][self.position] = value
            self.position = (self.position + 1) % self.slots
            self.size = min(self.size + 1, self.slots)

    def sample(self, count: int, generator: torch.Generator, n_step: int, gamma: float) -> dict:
        """``count`` transitions drawn uniformly, with their n-step returns.

        Returns:
            ``observations``, ``actions``, ``returns`` (n-step discounted rewards), ``next_observations``
            (where to bootstrap), ``discounts`` (``gamma^k``, 0 when the episode terminated within
            the ``n`` steps).
        """
        usable = self.size - (n_step - 1)
        if usable < 1:
            raise ConfigError("the replay buffer holds fewer transitions than one n-step return needs")
        oldest = (self.position - self.size) % self.slots
        offsets = torch.randint(0, usable, (count,), generator=generator)
        envs = torch.randint(0, self.n_envs, (count,), generator=generator)
        device = self.data["rewards"].device
        offsets, envs = offsets.to(device), envs.to(device)
        start = (oldest + offsets) % self.slots
        returns = torch.zeros(count, device=device)
        discounts = torch.ones(count, device=device)
        open_ = torch.ones(count, dtype=torch.bool, device=device)  # still adding rewards
        last = start.clone()
        for k in range(n_step):
            slot = (start + k) % self.slots
            returns = returns + open_ * discounts * self.data["rewards"][slot, envs]
            last = torch.where(open_, slot, last)
            discounts = torch.where(open_, discounts * gamma, discounts)
            ended = self.data["terminated"][slot, envs]
            cut = self.data["truncated"][slot, envs]
            discounts = torch.where(open_ & ended, torch.zeros_like(discounts), discounts)
            open_ = open_ & ~ended & ~cut
        return {
            "observations": self._observations("observations", start, envs),
            "actions": self.data["actions"][start, envs],
            "returns": returns,
            "next_observations": self._observations("next_observations", last, envs),
            "discounts": discounts,
        }

    def _observations(self, key: str, slots: torch.Tensor, envs: torch.Tensor) -> torch.Tensor:
        value = self.data[key][slots, envs]
        return value.float() / 255 if self.frames else value

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions (only the filled slots), the write position and the fill."""
        filled = {k: v[: self.size].cpu().clone() for k, v in self.data.items()}
        return {"data": filled, "slots": self.slots, "position": self.position, "size": self.size}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        if state["slots"] != self.slots:
            raise ValueError(f"the saved replay buffer has {state['slots']} slots, this one {self.slots}")
        self.data = {}
        for key, value in state["data"].items():
            self.data[key] = torch.zeros((self.slots, *value.shape[1:]), dtype=value.dtype, device=device)
            self.data[key][: len(value)] = value.to(device)
        self.position, self.size = state["position"], state["size"]
