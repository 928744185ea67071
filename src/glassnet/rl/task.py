"""The ``control`` task: an agent is scored by playing episodes, not by a loss on a test split."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.rl.diagnostics import diagnose
from glassnet.rl.evaluation import TEST_SEED, VALIDATION_SEED, evaluate_policy, render_episode
from glassnet.train.baselines import compare
from glassnet.train.tasks import Task, TaskContext, register_task


@register_task
class Control(Task):
    """Reinforcement learning: the evaluation is the return of seeded episodes with the deterministic policy.

    Attributes:
        episodes: episodes of each validation (seeds from ``VALIDATION_SEED``), which picks the best weights.
        test_episodes: episodes of the final evaluation (seeds from ``test_seed``, never validated on).
        test_seed: the first test episode's seed (``TEST_SEED``).
    """

    name = "control"
    monitor_modes = {
        "return_mean": "max",
        "return_min": "max",
        "return_max": "max",
        "return_std": "min",
        "length_mean": "max",
        "episode_return": "max",
        "loss": "min",
    }
    default_step = "ppo"
    headline_metrics = ("return_mean", "return_std")

    def __init__(self, episodes: int = 10, test_episodes: int = 100, test_seed: int = TEST_SEED) -> None:
        self.episodes, self.test_episodes, self.test_seed = episodes, test_episodes, test_seed
        self.progress: Any = None  # a bar over the test episodes (``glassnet evaluate`` shows one)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise ConfigError("a control run learns with its algorithm's step (ppo, dqn, sac), not with a task loss")

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        raise ConfigError("a control run is scored by playing episodes: glassnet evaluate RUN --episodes N")

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The highest-scoring discrete action per observation (``records`` shows continuous actions as values)."""
        probabilities = outputs.float().softmax(dim=-1)
        confidence, prediction = probabilities.max(dim=-1)
        return {"prediction": prediction, "confidence": confidence}

    def evaluate(self, trainer: Any, model: nn.Module, bundle: Any, split: str) -> dict[str, Any]:
        """Mean, spread and extremes of the return over seeded episodes of the deterministic policy, and
        every episode's: ``val`` plays ``episodes`` from ``VALIDATION_SEED``, ``test`` ``test_episodes``
        from ``test_seed``.

        Raises:
            ConfigError: ``split`` is not val or test (an agent has no training split to score).
        """
        if split not in ("val", "test"):
            raise ConfigError(f"a control run is scored on val or test episodes, not {split!r}")
        if split == "val":
            return evaluate_policy(model, bundle, self.episodes, seed=VALIDATION_SEED)
        return evaluate_policy(model, bundle, self.test_episodes, seed=self.test_seed, progress=self.progress)

    def records(
        self, spec: DataSpec, inputs: torch.Tensor, predictions: Any, truth: torch.Tensor | None
    ) -> list[dict[str, Any]]:
        """The action the policy takes for each observation: a name (discrete) or values (continuous)."""
        if spec.extra.get("action", {}).get("kind") == "continuous":
            return [{"action": [round(float(v), 4) for v in row]} for row in predictions.outputs]
        names = list(spec.class_names)
        return [{"action": names[int(k)] if names else int(k)} for k in predictions.prediction]

    def baselines(self, environment: Any, network: dict[str, Any] | None, seed: int = 0) -> dict[str, Any]:
        """The floor an agent must clear: a uniformly random policy on the test episodes' seeds."""
        started = time.perf_counter()
        scores = evaluate_policy(RandomPolicy(environment.spec), environment, self.test_episodes, seed=self.test_seed)
        test = {k: v for k, v in scores.items() if isinstance(v, float)}
        block: dict[str, Any] = {
            "name": "random",
            "description": "a uniformly random policy",
            "test": test,
            "fit_time_s": round(time.perf_counter() - started, 3),
            "candidates": [{"name": "random", "description": "a uniformly random policy", "floor": True}],
        }
        if network is not None:
            block["comparison"] = compare(network, test, "return_mean", "max", self.test_episodes)
        return block

    def details(self, context: TaskContext) -> None:
        """The learning curve and diagnostics (with plain-word warnings), and one test episode as a GIF."""
        from glassnet.figures import rl as figures

        history = context.history or []
        if history:
            figures.learning_curve(history, context.run.figure("learning_curve"))
            figures.diagnostics(history, context.run.figure("diagnostics"))
        gamma = getattr(context.trainer.step, "gamma", None)
        context.results["diagnostics"] = diagnose(history, context.bundle.spec, gamma)
        try:
            gif, info = render_episode(context.model, context.bundle, max_frames=150)
        except Exception as exc:  # an environment without an rgb_array renderer, a missing display library ...
            context.results["episode"] = {"skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            return
        path = context.run.figures_dir / "episode.gif"
        from glassnet.runs import write_bytes

        write_bytes(path, gif)
        context.results["episode"] = {**info, "file": "figures/episode.gif"}


class RandomPolicy(nn.Module):
    """Uniformly random actions within the environment's action space (the agent's floor)."""

    def __init__(self, spec: DataSpec) -> None:
        super().__init__()
        action = spec.extra["action"]
        self.n = int(action.get("n", 0))
        self.register_buffer("low", torch.tensor(action.get("low", [0.0]), dtype=torch.float32))
        self.register_buffer("high", torch.tensor(action.get("high", [0.0]), dtype=torch.float32))

    def act(
        self, observations: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        count = len(observations)
        if self.n:
            return torch.randint(0, self.n, (count,), generator=generator)
        return self.low + (self.high - self.low) * torch.rand((count, len(self.low)), generator=generator)
