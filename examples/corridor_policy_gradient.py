"""Worked example (b): an environment as a batch source, a policy-gradient step, a step budget.

A corridor gridworld (gymnasium's ``reset``/``step`` API, with ``state_dict`` for exact resume)
is played by the policy being trained: ``EnvironmentSource`` turns its rollouts into batches, a
REINFORCE step with a baseline learns from them, and the ``Trainer`` runs ``max_steps`` updates,
validating the policy on seeded episodes every ``eval_every`` steps. docs/architecture.md walks through it.

    python examples/corridor_policy_gradient.py --out runs/corridor [--steps 60] [--resume]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from glassnet.train import BestModel, Callback, EnvironmentSource, Step, Task, Trainer


class Corridor:
    """Cells ``0 .. length - 1``; start at 0; actions 0 (left) and 1 (right), each slipping the other
    way with probability ``slip``. Reaching the last cell pays +1 and ends the episode; every other
    step costs 0.01; an episode is truncated after ``limit`` steps. Observations are one-hot cells."""

    def __init__(self, length: int = 8, limit: int = 32, slip: float = 0.1) -> None:
        self.length, self.limit, self.slip = length, limit, slip
        self.rng = random.Random(0)
        self.position = self.t = 0

    def reset(self, *, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        if seed is not None:
            self.rng = random.Random(seed)
        self.position = self.t = 0
        return self._observation(), {}

    def step(self, action: int) -> tuple[torch.Tensor, float, bool, bool, dict[str, Any]]:
        move = 1 if action == 1 else -1
        if self.rng.random() < self.slip:
            move = -move
        self.position = min(max(self.position + move, 0), self.length - 1)
        self.t += 1
        terminated = self.position == self.length - 1
        reward = 1.0 if terminated else -0.01
        return self._observation(), reward, terminated, self.t >= self.limit, {}

    def _observation(self) -> torch.Tensor:
        return F.one_hot(torch.tensor(self.position), self.length).float()

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "t": self.t, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position, self.t = state["position"], state["t"]
        self.rng.setstate(_tuples(state["rng"]))


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class PolicyGradient(Step):
    """REINFORCE with a mean baseline: raise the log-probability of actions followed by high returns."""

    def __init__(self, gamma: float = 0.95, entropy: float = 0.01) -> None:
        super().__init__()
        self.gamma, self.entropy = gamma, entropy

    def act(self, model: nn.Module, observation: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        """Sample an action from the policy (the source calls this for every transition)."""
        probabilities = model(observation).softmax(dim=-1).cpu()
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1), {}

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], task: Task) -> dict[str, torch.Tensor]:
        returns = torch.zeros_like(batch["rewards"])
        running = torch.zeros(())
        ends = batch["terminated"] | batch["truncated"]
        for t in reversed(range(len(returns))):  # discounted return-to-go, restarting at every episode's end
            running = batch["rewards"][t] + self.gamma * running * (~ends[t])
            returns[t] = running
        advantages = (returns - returns.mean()) / (returns.std() + 1e-8)
        log_probabilities = model(batch["observations"]).log_softmax(dim=-1)
        chosen = log_probabilities.gather(1, batch["actions"][:, None]).squeeze(1)
        entropy = -(log_probabilities.exp() * log_probabilities).sum(dim=1).mean()
        logs = {"loss": -(chosen * advantages).mean() - self.entropy * entropy, "entropy": entropy}
        if len(batch["episode_returns"]):
            logs["episode_return"] = batch["episode_returns"].mean()
        return logs


class CorridorTask(Task):
    """What the trainer needs of a task here: which way the validation metric improves."""

    name = "corridor"
    monitor_modes = {"return": "max", "loss": "min"}


def policy_return(trainer: Trainer, model: nn.Module, episodes: int = 20) -> dict[str, float]:
    """Validation: the policy's mean return over seeded episodes (the same episodes and draws every time)."""
    env, total = Corridor(), 0.0
    draws = torch.Generator().manual_seed(1000)
    with torch.no_grad():
        for episode in range(episodes):
            observation, _ = env.reset(seed=1000 + episode)
            done = False
            while not done:
                probabilities = model(observation[None].to(trainer.device)).softmax(dim=-1).cpu()
                action = int(torch.multinomial(probabilities, 1, generator=draws))
                observation, reward, terminated, truncated, _ = env.step(action)
                total += reward
                done = terminated or truncated
    return {"return": total / episodes}


def policy() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 2))


def train(out: Path, steps: int = 60, resume: bool = False, extra: Sequence[Callback] = ()) -> nn.Module:
    """``steps`` policy updates, each on a rollout of 64 transitions; checkpoints every 10 updates."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = policy()
    callbacks = [BestModel("val/return"), *extra]
    trainer = Trainer(
        task=CorridorTask(),
        step=PolicyGradient(),
        max_steps=steps,
        eval_every=20,
        lr=1e-2,
        callbacks=callbacks,
        checkpoint_dir=out,
        checkpoint_every=10,
        device="cpu",
    )
    source = EnvironmentSource(Corridor(), steps=64)
    trainer.fit(model, source, val=policy_return, resume_from=out / "last.pt" if resume else None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/corridor"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    model = train(args.out, args.steps, args.resume)
    print(f"policy return: {policy_return(Trainer(device='cpu'), model)['return']:.3f} (about 0.92 at best)")


if __name__ == "__main__":
    main()
