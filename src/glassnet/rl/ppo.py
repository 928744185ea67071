"""Proximal policy optimisation (Schulman et al., 2017), readable top to bottom.

One training step is one iteration of PPO: ``n_envs`` environments play ``n_steps`` steps with the
current policy (the ``Rollouts`` source calls ``act``), generalised advantage estimation turns the
rewards into advantages, and ``epochs`` passes of ``minibatches`` clipped-surrogate updates follow.
The step owns its optimiser (Adam, eps 1e-5) and anneals its learning rate linearly over the run.
Discrete actions (a categorical policy) and continuous ones (a Gaussian policy whose samples are
clipped to the action bounds by the environment wrapper here) are both handled; a time-limit
truncation bootstraps from the value of the episode's last observation. Logged per iteration:
the loss and its parts, entropy, approximate KL, clip fraction, explained variance, returns of the
episodes that ended, and the environment steps so far.

Defaults are those of CleanRL's ``ppo.py`` for classic control; the RL Zoo's tuned settings for an
environment are options (``step.n_envs=8 step.n_steps=32 ...``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from glassnet.errors import ConfigError
from glassnet.rl.options import check_model, construct, positive_int, reward_clipping, unit_interval
from glassnet.rl.rollouts import Rollouts
from glassnet.train.optim import adam
from glassnet.train.steps import Step, register_step


class RewardScaler:
    """Divides rewards by the running standard deviation of the discounted return (as gymnasium's NormalizeReward)."""

    def __init__(self, n_envs: int, gamma: float) -> None:
        self.gamma = gamma
        self.returns = torch.zeros(n_envs, dtype=torch.float64)
        self.mean, self.var, self.count = (
            torch.zeros((), dtype=torch.float64),
            torch.ones((), dtype=torch.float64),
            1e-4,
        )

    def __call__(self, rewards: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        scaled = torch.empty_like(rewards)
        for t in range(len(rewards)):
            self.returns = self.returns * self.gamma + rewards[t].double().cpu()
            self._update(self.returns)
            scaled[t] = rewards[t] / math.sqrt(float(self.var) + 1e-8)
            self.returns = self.returns * (~ends[t]).double().cpu()
        return scaled

    def _update(self, x: torch.Tensor) -> None:
        batch_mean, batch_var, count = x.mean(), x.var(unbiased=False), len(x)
        total = self.count + count
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * count / total
        self.var = (self.var * self.count + batch_var * count + delta**2 * self.count * count / total) / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"returns": self.returns, "mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns, self.mean, self.var, self.count = state["returns"], state["mean"], state["var"], state["count"]


class PPO(Step):
    """PPO with clipped surrogate and value losses, GAE and advantage normalisation.

    Args:
        n_envs: environments played together.
        n_steps: steps of each environment per iteration (rollout length).
        epochs: passes over each rollout.
        minibatches: minibatches per pass.
        lr: Adam's learning rate at the start (annealed linearly to 0 when ``anneal_lr``).
        anneal_lr: anneal the learning rate over the run.
        gamma: discount.
        gae_lambda: GAE's lambda.
        clip: the policy ratio's clipping range.
        anneal_clip: shrink the clipping range linearly to 0 over the run, as the learning rate.
        clip_value: clip the value update by the same range.
        entropy: weight of the entropy bonus.
        value_coef: weight of the value loss.
        max_grad_norm: gradient clipping by global norm (0: none).
        target_kl: stop an iteration's updates once the approximate KL exceeds it (0: never).
        normalize_advantages: standardise advantages per minibatch.
        normalize_reward: scale rewards by the running std of the discounted return (continuous control).
        clip_reward: learn from the sign of each reward; ``auto``: for frame observations (Atari) only.
        vectorization: ``sync`` or ``async`` environments.
    """

    automatic_optimization = False
    model = "actor_critic"

    def __init__(
        self,
        n_envs: int = 4,
        n_steps: int = 128,
        epochs: int = 4,
        minibatches: int = 4,
        lr: float = 2.5e-4,
        anneal_lr: bool = True,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip: float = 0.2,
        anneal_clip: bool = False,
        clip_value: bool = True,
        entropy: float = 0.01,
        value_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        target_kl: float = 0.0,
        normalize_advantages: bool = True,
        normalize_reward: bool = False,
        clip_reward: bool | str = "auto",
        vectorization: str = "sync",
    ) -> None:
        super().__init__()
        for name, value in (("n_envs", n_envs), ("n_steps", n_steps), ("epochs", epochs), ("minibatches", minibatches)):
            positive_int(f"step.{name}", value)
        if (n_envs * n_steps) % minibatches:
            raise ConfigError(
                f"n_envs x n_steps ({n_envs * n_steps}) must be a multiple of minibatches ({minibatches})"
            )
        for name, value in (("gamma", gamma), ("gae_lambda", gae_lambda)):
            unit_interval(f"step.{name}", value)
        if not lr > 0 or not clip > 0:
            raise ConfigError(f"step.lr and step.clip must be > 0. Received: lr={lr!r}, clip={clip!r}")
        self.n_envs, self.n_steps, self.epochs, self.minibatches = n_envs, n_steps, epochs, minibatches
        self.lr, self.anneal_lr, self.gamma, self.gae_lambda = lr, anneal_lr, gamma, gae_lambda
        self.clip, self.clip_value, self.entropy, self.value_coef = clip, clip_value, entropy, value_coef
        self.anneal_clip, self.clip_now = anneal_clip, clip
        self.max_grad_norm, self.target_kl = max_grad_norm, target_kl
        self.normalize_advantages, self.normalize_reward = normalize_advantages, normalize_reward
        self.vectorization, self.clip_reward = vectorization, clip_reward
        self.clip_rewards = reward_clipping(clip_reward, None)  # settled by the environment in source()
        self.rewards = RewardScaler(n_envs, gamma) if normalize_reward else None
        self.generator = torch.Generator().manual_seed(0)

    # --- the learning contract -------------------------------------------------------------------

    def env_steps_per_step(self) -> int:
        """Environment steps one training step takes (for budgets in environment steps)."""
        return self.n_envs * self.n_steps

    def source(self, environment: Any) -> Rollouts:
        self.clip_rewards = reward_clipping(self.clip_reward, environment.spec)
        return Rollouts(environment, self.n_envs, self.n_steps, self.vectorization)

    def bind(self, trainer: Any) -> None:
        super().bind(trainer)
        self.generator.manual_seed(trainer.seed + 17)

    def check(self, model: nn.Module) -> None:
        """Raises ConfigError unless ``model`` is one this algorithm can train (before anything is written)."""
        check_model(model, "ppo", ("heads", "log_prob_entropy", "update_statistics"), "actor_critic")

    def configure_optimizers(self, model: nn.Module) -> torch.optim.Optimizer:
        self.check(model)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        return adam(self.parameters, lr=self.lr, eps=1e-5)

    def describe(self) -> dict[str, Any]:
        keys = ("n_envs", "n_steps", "epochs", "minibatches", "lr", "anneal_lr", "gamma", "gae_lambda", "clip",
                "anneal_clip", "clip_value", "entropy", "value_coef", "max_grad_norm", "target_kl",
                "normalize_advantages", "normalize_reward", "clip_rewards", "vectorization")  # fmt: skip
        return {"name": self.name or "ppo", **{k: getattr(self, k) for k in keys}}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "rewards": self.rewards.state_dict() if self.rewards else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.generator.set_state(state["generator"])
            if self.rewards is not None and state["rewards"] is not None:
                self.rewards.load_state_dict(state["rewards"])

    # --- acting ----------------------------------------------------------------------------------

    def act(self, model: nn.Module, observations: torch.Tensor, generator: torch.Generator) -> tuple:
        """Sample actions; keep their log-probabilities and the state values for the update."""
        out, value = model.heads(observations)
        if model.continuous:
            actions = out + model.log_std.exp() * torch.randn(out.shape, generator=generator).to(out.device)
        else:
            probabilities = out.softmax(dim=-1).cpu()
            actions = torch.multinomial(probabilities, 1, generator=generator).squeeze(-1).to(out.device)
        log_prob, _ = model.log_prob_entropy(out, actions)
        env_actions = torch.maximum(torch.minimum(actions, model.high), model.low) if model.continuous else actions
        return env_actions, {"raw_actions": actions, "log_prob": log_prob, "value": value}

    # --- learning --------------------------------------------------------------------------------

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], task: Any) -> dict[str, torch.Tensor]:
        trainer = self.trainer
        optimizer = next(iter(self.optimizers().values()))
        remaining = 1.0 - trainer.global_step / max(trainer.total_steps, 1)
        if self.anneal_lr:
            for group in optimizer.param_groups:
                group["lr"] = self.lr * remaining
        self.clip_now = self.clip * remaining if self.anneal_clip else self.clip
        advantages, returns = self._advantages(model, batch)
        flat = {
            "observations": batch["observations"].flatten(0, 1),
            "actions": batch["raw_actions"].flatten(0, 1),
            "log_prob": batch["log_prob"].flatten(0, 1),
            "value": batch["value"].flatten(0, 1),
            "advantages": advantages.flatten(0, 1),
            "returns": returns.flatten(0, 1),
        }
        size = len(flat["returns"])
        minibatch = size // self.minibatches
        kept: list[torch.Tensor] = []  # per update: policy, value and entropy losses (detached)
        stats: list[torch.Tensor] = []  # per pass, of its last minibatch: approximate KL, clip fraction
        for _ in range(self.epochs):
            order = (
                torch.randperm(size, generator=self.generator).to(advantages.device) if self.minibatches > 1 else None
            )
            for begin in range(0, size, minibatch):
                part = flat if order is None else {k: v[order[begin : begin + minibatch]] for k, v in flat.items()}
                policy, value, entropy, ratio = self._losses(model, part)
                loss = policy + self.value_coef * value
                if self.entropy:
                    loss = loss - self.entropy * entropy
                self.backward(loss)
                if self.max_grad_norm:
                    nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm, foreach=True)
                self.optimizer_step()
                kept.append(torch.stack([policy.detach(), value.detach(), entropy.detach()]))
            with torch.no_grad():
                kl = ((ratio - 1) - ratio.log()).mean()
                stats.append(torch.stack([kl, ((ratio - 1).abs() > self.clip_now).float().mean()]))
            if self.target_kl and float(kl) > self.target_kl:
                break
        model.update_statistics(batch["observations"].flatten(0, 1))  # after the update: rollout and update agree
        means, last = torch.stack(kept).mean(dim=0), torch.stack(stats).mean(dim=0)
        logs = {"policy": means[0], "value": means[1], "entropy": means[2], "kl": last[0], "clipped": last[1]}
        logs["loss"] = logs["policy"] + self.value_coef * logs["value"] - self.entropy * logs["entropy"]
        logs["explained_variance"] = _explained_variance(flat["value"], flat["returns"])
        logs["value_mean"] = flat["value"].mean()
        logs["reward_max"] = batch["rewards"].abs().max()
        logs["lr"] = torch.tensor(optimizer.param_groups[0]["lr"])
        logs["env_steps"] = torch.tensor(float(trainer.source.env_steps))
        if len(batch["episode_returns"]):
            logs["episode_return"] = batch["episode_returns"].mean()
            logs["episode_length"] = batch["episode_lengths"].float().mean()
        return logs

    def _advantages(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE over the rollout; a truncated episode's reward gains gamma x V(its last observation)."""
        rewards = batch["rewards"].float()
        if self.clip_rewards:
            rewards = rewards.sign()
        ends = batch["terminated"] | batch["truncated"]
        if self.rewards is not None:
            rewards = self.rewards(rewards, ends).to(rewards.device)
        values = batch["value"]
        with torch.no_grad():
            cut = batch["truncated"] & ~batch["terminated"]
            if cut.any():
                final = model.value(batch["next_observations"][cut])
                rewards = rewards.clone()
                rewards[cut] += self.gamma * final
            next_value = model.value(batch["last_observation"])
        advantages = torch.zeros_like(rewards)
        running = torch.zeros_like(next_value)
        for t in reversed(range(len(rewards))):
            following = next_value if t == len(rewards) - 1 else values[t + 1]
            alive = (~ends[t]).float()
            delta = rewards[t] + self.gamma * following * alive - values[t]
            running = delta + self.gamma * self.gae_lambda * alive * running
            advantages[t] = running
        return advantages, advantages + values

    def _losses(self, model: nn.Module, part: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The clipped surrogate, the (clipped) value loss, the entropy, and the policy ratios."""
        out, value = model.heads(part["observations"])
        if self.entropy:
            log_prob, entropy = model.log_prob_entropy(out, part["actions"])
        else:  # no entropy bonus: its value is only logged, outside the graph
            log_prob, entropy = model.log_prob_entropy(out, part["actions"], entropy=False)
        ratio = (log_prob - part["log_prob"]).exp()
        advantages = part["advantages"]
        if self.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - self.clip_now, 1 + self.clip_now)).mean()
        if self.clip_value:
            clipped = part["value"] + (value - part["value"]).clamp(-self.clip_now, self.clip_now)
            value_loss = 0.5 * torch.max((value - part["returns"]) ** 2, (clipped - part["returns"]) ** 2).mean()
        else:
            value_loss = 0.5 * ((value - part["returns"]) ** 2).mean()
        return policy, value_loss, entropy.mean(), ratio.detach()


def _explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Var(target - predicted) / Var(target): 1 for a perfect value function, <= 0 for a useless one."""
    variance = target.var()
    return 1 - (target - predicted).var() / variance if variance > 0 else torch.zeros((), device=target.device)


@register_step("ppo", description="proximal policy optimisation: vectorised rollouts, GAE, clipped updates")
def _build(spec: Any = None, augment: Any = None, **options: Any) -> PPO:
    return construct(PPO, "ppo", spec, options)
