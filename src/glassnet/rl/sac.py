"""Soft actor-critic (Haarnoja et al., 2018) for continuous actions, readable top to bottom.

One training step: ``n_envs`` environments play ``train_freq`` steps each (uniformly random actions
until ``learning_starts`` environment steps, then actions drawn from the squashed-Gaussian policy),
the transitions go into the replay buffer, and ``gradient_steps`` updates follow. Each update:

1. the temperature: ``alpha`` is tuned so that the policy's entropy stays near ``target_entropy``
   (``-action dimensions`` by default), unless ``alpha`` is a fixed number;
2. the twin critics regress on ``r + g (min_i Q_target_i(s', a') - alpha log pi(a'|s'))`` with
   ``a'`` drawn from the current policy (a truncated episode bootstraps; a terminated one does not);
3. the actor maximises ``min_i Q_i(s, a) - alpha log pi(a|s)`` through the reparameterised sample;
4. the target critics move towards the critics by ``tau`` (every ``target_update_interval`` updates).

The network is the registry's ``sac_agent`` (actor, twin critics, their targets and ``log_alpha``
in one module, so the saved run holds them all); the step owns three Adam optimisers (``actor``,
``critic``, ``alpha``), the replay buffer and its random generator, all saved in checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from glassnet.errors import ConfigError
from glassnet.rl.options import check_model, construct, positive_int, unit_interval
from glassnet.rl.replay import ReplayBuffer
from glassnet.rl.rollouts import Rollouts
from glassnet.train.optim import adam
from glassnet.train.steps import Optimization, Step, register_step


class SAC(Step):
    """SAC with automatic entropy tuning, twin critics and soft target updates.

    Args:
        n_envs: environments played together.
        train_freq: steps of every environment between two rounds of updates.
        gradient_steps: updates per round.
        buffer_size: transitions the replay buffer keeps.
        learning_starts: environment steps of uniformly random actions before the first update.
        batch_size: transitions per update.
        lr: the learning rate of all three optimisers.
        gamma: discount.
        tau: weight of the critics in each target update.
        alpha: the entropy temperature: ``auto`` (tuned) or a fixed number.
        initial_alpha: the temperature at the start when ``auto``.
        target_entropy: the entropy ``auto`` aims at; ``auto``: minus the action dimensions.
        target_update_interval: updates between two target updates.
        vectorization: ``sync`` or ``async`` environments.
    """

    automatic_optimization = False
    model = "sac_agent"

    def __init__(
        self,
        n_envs: int = 1,
        train_freq: int = 1,
        gradient_steps: int = 1,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        lr: float = 3e-4,
        gamma: float = 0.99,
        tau: float = 0.005,
        alpha: float | str = "auto",
        initial_alpha: float = 1.0,
        target_entropy: float | str = "auto",
        target_update_interval: int = 1,
        vectorization: str = "sync",
    ) -> None:
        super().__init__()
        for name in ("n_envs", "train_freq", "gradient_steps", "batch_size", "target_update_interval"):
            positive_int(f"step.{name}", locals()[name])
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < n_envs:
            # here, not first in bind(): a mistake found in fit() comes after --overwrite cleared the run's checkpoints
            raise ConfigError(f"step.buffer_size must be an integer >= n_envs ({n_envs}). Received: {buffer_size!r}")
        if isinstance(learning_starts, bool) or not isinstance(learning_starts, int) or learning_starts < 0:
            raise ConfigError(f"step.learning_starts must be an integer >= 0. Received: {learning_starts!r}")
        for name in ("gamma", "tau"):
            unit_interval(f"step.{name}", locals()[name])
        if alpha != "auto" and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha < 0):
            raise ConfigError(f"step.alpha must be 'auto' or a number >= 0. Received: {alpha!r}")
        if target_entropy != "auto" and (
            isinstance(target_entropy, bool) or not isinstance(target_entropy, (int, float))
        ):
            raise ConfigError(f"step.target_entropy must be 'auto' or a number. Received: {target_entropy!r}")
        if not lr > 0 or not initial_alpha > 0:
            raise ConfigError(f"step.lr and step.initial_alpha must be > 0. Received: {lr!r}, {initial_alpha!r}")
        self.n_envs, self.train_freq, self.gradient_steps = n_envs, train_freq, gradient_steps
        self.buffer_size, self.learning_starts, self.batch_size = buffer_size, learning_starts, batch_size
        self.lr, self.gamma, self.tau = lr, gamma, tau
        self.alpha, self.initial_alpha, self.target_entropy = alpha, initial_alpha, target_entropy
        self.target_update_interval, self.vectorization = target_update_interval, vectorization
        self.buffer: ReplayBuffer | None = None
        self.generator = torch.Generator().manual_seed(0)
        self.acted = self.updates = 0

    def env_steps_per_step(self) -> int:
        return self.n_envs * self.train_freq

    def source(self, environment: Any) -> Rollouts:
        return Rollouts(environment, self.n_envs, self.train_freq, self.vectorization)

    def bind(self, trainer: Any) -> None:
        super().bind(trainer)
        self.generator.manual_seed(trainer.seed + 29)
        self.acted = self.updates = 0
        self.buffer = ReplayBuffer(self.buffer_size, self.n_envs)

    def check(self, model: nn.Module) -> None:
        """Raises ConfigError unless ``model`` is one this algorithm can train (before anything is written)."""
        check_model(model, "sac", ("sample", "q_values", "update_targets", "log_alpha"), "sac_agent")

    def configure_optimizers(self, model: nn.Module) -> Optimization:
        self.check(model)
        with torch.no_grad():
            model.log_alpha.fill_(math.log(self.initial_alpha))
        model.log_alpha.requires_grad_(self.alpha == "auto")
        actor = [*model.actor_body.parameters(), *model.mean.parameters(), *model.log_std.parameters()]
        critic = [*model.q1.parameters(), *model.q2.parameters()]
        optimizers = {"actor": adam(actor, lr=self.lr), "critic": adam(critic, lr=self.lr)}
        if self.alpha == "auto":
            optimizers["alpha"] = adam([model.log_alpha], lr=self.lr)
        return Optimization(optimizers)

    def describe(self) -> dict[str, Any]:
        keys = ("n_envs", "train_freq", "gradient_steps", "buffer_size", "learning_starts", "batch_size", "lr",
                "gamma", "tau", "alpha", "initial_alpha", "target_entropy", "target_update_interval",
                "vectorization")  # fmt: skip
        return {"name": self.name or "sac", **{k: getattr(self, k) for k in keys}}

    def state_dict(self) -> dict[str, Any]:
        assert self.buffer is not None
        return {
            "generator": self.generator.get_state(),
            "counters": [self.acted, self.updates],
            "buffer": self.buffer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        assert self.buffer is not None
        self.generator.set_state(state["generator"])
        self.acted, self.updates = state["counters"]
        self.buffer.load_state_dict(state["buffer"], self.trainer.device if self.trainer else "cpu")

    # --- acting ----------------------------------------------------------------------------------

    def act(self, model: nn.Module, observations: torch.Tensor, generator: torch.Generator) -> tuple:
        """Uniformly random actions until ``learning_starts``, then draws from the policy."""
        count = len(observations)
        if self.acted < self.learning_starts:
            uniform = torch.rand((count, model.scale.numel()), generator=generator).to(observations.device)
            actions = model.bias + model.scale * (2 * uniform - 1)
        else:
            actions, _ = model.sample(observations, generator)
        self.acted += count
        return actions, {}

    # --- learning --------------------------------------------------------------------------------

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], task: Any) -> dict[str, torch.Tensor]:
        assert self.buffer is not None
        self.buffer.add(batch)
        model.update_statistics(batch["observations"].flatten(0, 1))
        steps = self.trainer.source.env_steps
        logs: dict[str, torch.Tensor] = {"env_steps": torch.tensor(float(steps))}
        logs["reward_max"] = batch["rewards"].abs().max()
        if len(batch["episode_returns"]):
            logs["episode_return"] = batch["episode_returns"].mean()
            logs["episode_length"] = batch["episode_lengths"].float().mean()
        if steps < self.learning_starts or len(self.buffer) < self.batch_size:
            return logs
        optimizers = self.optimizers()
        target_entropy = -float(model.scale.numel()) if self.target_entropy == "auto" else float(self.target_entropy)
        sums = {k: torch.zeros(()) for k in ("actor", "critic", "alpha", "entropy", "q", "td_error")}
        for _ in range(self.gradient_steps):
            for optimizer in optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            sample = self.buffer.sample(self.batch_size, self.generator, 1, self.gamma)
            observations = sample["observations"]
            actions, log_prob = model.sample(observations, self.generator)
            if self.alpha == "auto":
                alpha_loss = -(model.log_alpha * (log_prob.detach() + target_entropy)).mean()
                self.backward(alpha_loss)
                self.optimizer_step("alpha")
                sums["alpha"] += model.log_alpha.detach().exp().cpu()
            else:
                sums["alpha"] += torch.tensor(float(self.alpha))
            alpha = model.log_alpha.detach().exp() if self.alpha == "auto" else float(self.alpha)
            with torch.no_grad():
                following, following_log_prob = model.sample(sample["next_observations"], self.generator)
                q1_next, q2_next = model.q_values(sample["next_observations"], following, target=True)
                soft = torch.min(q1_next, q2_next) - alpha * following_log_prob
                target = sample["returns"] + sample["discounts"] * soft
            q1, q2 = model.q_values(observations, sample["actions"])
            critic_loss = 0.5 * (F.mse_loss(q1, target) + F.mse_loss(q2, target))
            self.backward(critic_loss)
            self.optimizer_step("critic")
            q1_pi, q2_pi = model.q_values(observations, actions)
            actor_loss = (alpha * log_prob - torch.min(q1_pi, q2_pi)).mean()
            self.backward(actor_loss)
            self.optimizer_step("actor")
            self.updates += 1
            if self.updates % self.target_update_interval == 0:
                model.update_targets(self.tau)
            sums["actor"] += actor_loss.detach().cpu()
            sums["critic"] += critic_loss.detach().cpu()
            sums["entropy"] += -log_prob.detach().mean().cpu()
            sums["q"] += q1.detach().mean().cpu()
            sums["td_error"] += (target - q1.detach()).abs().mean().cpu()
        logs.update({k: v / self.gradient_steps for k, v in sums.items()})
        logs["loss"] = logs["critic"]
        return logs


@register_step("sac", description="soft actor-critic: twin critics, automatic entropy tuning, continuous actions")
def _build(spec: Any = None, augment: Any = None, **options: Any) -> SAC:
    if spec is not None and spec.task == "control" and spec.extra.get("action", {}).get("kind") != "continuous":
        raise ConfigError(
            f"sac needs continuous actions; {spec.name} has discrete ones. Algorithms for discrete actions: "
            "--algo ppo or --algo dqn"
        )
    return construct(SAC, "sac", spec, options)
