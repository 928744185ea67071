"""Deep Q-learning (Mnih et al., 2015) with double Q-learning, a dueling network and n-step returns.

One training step: ``n_envs`` environments play ``train_freq`` steps each with an epsilon-greedy
policy (epsilon falls linearly from ``exploration_initial`` to ``exploration_final`` over the first
``exploration_fraction`` of the run's environment steps), the transitions go into the replay
buffer, and once ``learning_starts`` environment steps have been taken, ``gradient_steps`` updates
follow. Each update draws ``batch_size`` transitions uniformly and regresses Q(s, a) on the n-step
target ``R + g^n Q_target(s', argmax_a Q(s', a))`` (double DQN: the online network picks the
action, the target network values it; plain DQN takes the target's maximum), with the Huber loss
and gradient clipping. The target network follows the online one every ``target_update_interval``
environment steps (``tau`` = 1 copies; less than 1 averages).

The target network, the replay buffer, the exploration counter and the random generator are the
step's state, saved in every checkpoint: a resumed run samples and explores exactly as an
uninterrupted one. The network is the registry's ``q_network`` (dueling by default).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from glassnet.errors import ConfigError
from glassnet.models.policies import soft_update
from glassnet.rl.options import check_model, construct, positive_int, reward_clipping, unit_interval
from glassnet.rl.replay import ReplayBuffer
from glassnet.rl.rollouts import Rollouts
from glassnet.train.optim import adam
from glassnet.train.steps import Step, register_step


class DQN(Step):
    """DQN with replay, a target network, double Q-learning and n-step returns.

    Args:
        n_envs: environments played together.
        train_freq: steps of every environment between two rounds of updates.
        gradient_steps: updates per round.
        buffer_size: transitions the replay buffer keeps.
        learning_starts: environment steps of pure exploration before the first update.
        batch_size: transitions per update.
        lr: Adam's learning rate.
        gamma: discount.
        n_step: steps summed into one return before bootstrapping.
        double: double Q-learning targets.
        target_update_interval: environment steps between target-network updates.
        tau: weight of the online network in each target update (1: copy).
        exploration_fraction: share of the run over which epsilon falls.
        exploration_initial: epsilon at the start.
        exploration_final: epsilon from then on.
        max_grad_norm: gradient clipping by global norm (0: none).
        loss: ``huber`` or ``mse``.
        clip_reward: learn from the sign of each reward; ``auto``: for frame observations (Atari) only.
        vectorization: ``sync`` or ``async`` environments.
    """

    automatic_optimization = False
    model = "q_network"

    def __init__(
        self,
        n_envs: int = 1,
        train_freq: int = 4,
        gradient_steps: int = 1,
        buffer_size: int = 100_000,
        learning_starts: int = 1_000,
        batch_size: int = 64,
        lr: float = 1e-3,
        gamma: float = 0.99,
        n_step: int = 1,
        double: bool = True,
        target_update_interval: int = 1_000,
        tau: float = 1.0,
        exploration_fraction: float = 0.1,
        exploration_initial: float = 1.0,
        exploration_final: float = 0.05,
        max_grad_norm: float = 10.0,
        loss: str = "huber",
        clip_reward: bool | str = "auto",
        vectorization: str = "sync",
    ) -> None:
        super().__init__()
        for name in ("n_envs", "train_freq", "gradient_steps", "batch_size", "n_step", "target_update_interval"):
            positive_int(f"step.{name}", locals()[name])
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < n_envs:
            # here, not first in bind(): a mistake found in fit() comes after --overwrite cleared the run's checkpoints
            raise ConfigError(f"step.buffer_size must be an integer >= n_envs ({n_envs}). Received: {buffer_size!r}")
        if isinstance(learning_starts, bool) or not isinstance(learning_starts, int) or learning_starts < 0:
            raise ConfigError(f"step.learning_starts must be an integer >= 0. Received: {learning_starts!r}")
        for name in ("gamma", "tau", "exploration_fraction"):
            unit_interval(f"step.{name}", locals()[name])
        for name in ("exploration_initial", "exploration_final"):
            if not 0 <= locals()[name] <= 1:
                raise ConfigError(f"step.{name} must be in [0, 1]. Received: {locals()[name]!r}")
        if loss not in ("huber", "mse"):
            raise ConfigError(f"step.loss must be huber or mse. Received: {loss!r}")
        if not lr > 0:
            raise ConfigError(f"step.lr must be > 0. Received: {lr!r}")
        self.n_envs, self.train_freq, self.gradient_steps = n_envs, train_freq, gradient_steps
        self.buffer_size, self.learning_starts, self.batch_size = buffer_size, learning_starts, batch_size
        self.lr, self.gamma, self.n_step, self.double = lr, gamma, n_step, double
        self.target_update_interval, self.tau = target_update_interval, tau
        self.exploration_fraction = exploration_fraction
        self.exploration_initial, self.exploration_final = exploration_initial, exploration_final
        self.max_grad_norm, self.loss, self.vectorization = max_grad_norm, loss, vectorization
        self.clip_reward, self.clip_rewards = clip_reward, reward_clipping(clip_reward, None)
        self.buffer: ReplayBuffer | None = None
        self.target: nn.Module | None = None
        self.generator = torch.Generator().manual_seed(0)
        self.acted = 0  # environment steps taken by the exploring policy
        self.synced = 0  # target updates done

    def env_steps_per_step(self) -> int:
        return self.n_envs * self.train_freq

    def source(self, environment: Any) -> Rollouts:
        spec = environment.spec
        self.frames = spec is not None and spec.modality == "image"
        self.clip_rewards = reward_clipping(self.clip_reward, spec)
        return Rollouts(environment, self.n_envs, self.train_freq, self.vectorization)

    def bind(self, trainer: Any) -> None:
        super().bind(trainer)
        self.generator.manual_seed(trainer.seed + 23)
        self.acted = self.synced = 0
        self.buffer = ReplayBuffer(self.buffer_size, self.n_envs, frames=getattr(self, "frames", False))

    def check(self, model: nn.Module) -> None:
        """Raises ConfigError unless ``model`` is one this algorithm can train (before anything is written)."""
        check_model(model, "dqn", ("advantage", "update_statistics"), "q_network")

    def configure_optimizers(self, model: nn.Module) -> torch.optim.Optimizer:
        self.check(model)
        self.target = copy.deepcopy(model)
        self.target.requires_grad_(False)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        return adam(self.parameters, lr=self.lr)

    def describe(self) -> dict[str, Any]:
        keys = ("n_envs", "train_freq", "gradient_steps", "buffer_size", "learning_starts", "batch_size", "lr",
                "gamma", "n_step", "double", "target_update_interval", "tau", "exploration_fraction",
                "exploration_initial", "exploration_final", "max_grad_norm", "loss", "clip_rewards",
                "vectorization")  # fmt: skip
        return {"name": self.name or "dqn", **{k: getattr(self, k) for k in keys}}

    def state_dict(self) -> dict[str, Any]:
        assert self.buffer is not None and self.target is not None
        return {
            "generator": self.generator.get_state(),
            "acted": self.acted,
            "synced": self.synced,
            "target": self.target.state_dict(),
            "buffer": self.buffer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        assert self.buffer is not None and self.target is not None
        self.generator.set_state(state["generator"])
        self.acted, self.synced = state["acted"], state["synced"]
        self.target.load_state_dict(state["target"])
        self.buffer.load_state_dict(state["buffer"], self.trainer.device if self.trainer else "cpu")

    # --- acting ----------------------------------------------------------------------------------

    def epsilon(self) -> float:
        """The exploration rate after ``acted`` environment steps."""
        total = self.trainer.total_steps * self.env_steps_per_step() if self.trainer else 1
        span = max(1.0, self.exploration_fraction * total)
        share = min(1.0, self.acted / span)
        return self.exploration_initial + share * (self.exploration_final - self.exploration_initial)

    def act(self, model: nn.Module, observations: torch.Tensor, generator: torch.Generator) -> tuple:
        """Epsilon-greedy actions of the online network."""
        count = len(observations)
        greedy = model(observations).argmax(dim=-1).cpu()
        explore = torch.rand(count, generator=generator) < self.epsilon()
        random = torch.randint(0, model.advantage.out_features, (count,), generator=generator)
        self.acted += count
        return torch.where(explore, random, greedy).to(observations.device), {}

    # --- learning --------------------------------------------------------------------------------

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], task: Any) -> dict[str, torch.Tensor]:
        assert self.buffer is not None and self.target is not None
        self.buffer.add({**batch, "rewards": batch["rewards"].sign()} if self.clip_rewards else batch)
        model.update_statistics(batch["observations"].flatten(0, 1))
        steps = self.trainer.source.env_steps
        logs: dict[str, torch.Tensor] = {
            "epsilon": torch.tensor(self.epsilon()),
            "env_steps": torch.tensor(float(steps)),
            "reward_max": batch["rewards"].abs().max(),
        }
        if len(batch["episode_returns"]):
            logs["episode_return"] = batch["episode_returns"].mean()
            logs["episode_length"] = batch["episode_lengths"].float().mean()
        if steps < self.learning_starts or len(self.buffer) < self.batch_size or self.buffer.size < self.n_step:
            return logs
        due = steps // self.target_update_interval
        if due > self.synced:  # the target follows at every interval the rollout crossed
            soft_update(model, self.target, self.tau)
            self.synced = due
        sums = {k: torch.zeros(()) for k in ("loss", "q", "td_error")}
        for _ in range(self.gradient_steps):
            sample = self.buffer.sample(self.batch_size, self.generator, self.n_step, self.gamma)
            with torch.no_grad():
                following = self.target(sample["next_observations"])
                if self.double:
                    choice = model(sample["next_observations"]).argmax(dim=-1, keepdim=True)
                    best = following.gather(1, choice).squeeze(1)
                else:
                    best = following.max(dim=-1).values
                target = sample["returns"] + sample["discounts"] * best
            q = model(sample["observations"]).gather(1, sample["actions"].long().view(-1, 1)).squeeze(1)
            loss = F.smooth_l1_loss(q, target) if self.loss == "huber" else F.mse_loss(q, target)
            self.backward(loss)
            if self.max_grad_norm:
                nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm, foreach=True)
            self.optimizer_step()
            sums["loss"] += loss.detach().cpu()
            sums["q"] += q.detach().mean().cpu()
            sums["td_error"] += (target - q.detach()).abs().mean().cpu()
        logs.update({k: v / self.gradient_steps for k, v in sums.items()})
        return logs


@register_step("dqn", description="deep Q-learning: replay, target network, double and dueling, n-step returns")
def _build(spec: Any = None, augment: Any = None, **options: Any) -> DQN:
    if spec is not None and spec.task == "control" and spec.extra.get("action", {}).get("kind") != "discrete":
        raise ConfigError(
            f"dqn needs discrete actions; {spec.name} has continuous ones. Algorithms for continuous actions: "
            "--algo sac or --algo ppo"
        )
    return construct(DQN, "dqn", spec, options)
