"""Batch sources: where a ``Trainer``'s training batches come from.

Two kinds, one loop:

- **data sources** have a length and epochs. Every epoch the trainer draws a seeded permutation of
  the examples, gives each ``torchrun`` process its share and asks the source for the batches of
  that order. ``TensorSource`` indexes tensors already in memory on the device (the fast path: no
  DataLoader, no workers); ``DatasetSource`` reads any map-style ``Dataset`` through a DataLoader
  that samples the same order.
- **stream sources** have no length: batches of generated samples (``SampleSource``) or rollouts
  of an environment played by the model being trained (``EnvironmentSource``). They train under a
  step budget (``max_steps``) and are validated, logged and checkpointed every ``eval_every``
  steps, which play the part of an epoch for the callbacks.

A source's ``state_dict`` (random generators, an environment's state) goes into every checkpoint,
so a stream resumes exactly where it stopped, like a dataset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from glassnet.errors import ConfigError, DataError
from glassnet.models.outputs import eval_mode

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a batch (a tensor, or tuples, lists and dicts of them) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def batch_length(batch: Any) -> int:
    """Examples in a batch: rows of its tensor, of its first element, or of its first tensor value."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    if isinstance(batch, Mapping):
        for value in batch.values():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                return len(value)
        return 0
    if isinstance(batch, (list, tuple)) and batch:
        return batch_length(batch[0])
    return 0


class BatchSource:
    """Base of every source. ``sized`` sources have epochs; the others stream under a step budget."""

    sized = True

    def bind(self, trainer: Trainer) -> None:
        """Called once at the start of ``fit``: device, rank and seed are known here."""

    def count(self, batch: Any) -> int:
        """Examples (or transitions) in ``batch``, for the samples/s figures."""
        return batch_length(batch)

    def state_dict(self) -> dict[str, Any]:
        """What a bitwise resume needs (tensors and plain values); data sources need nothing."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


class DataSource(BatchSource):
    """A source with a length: the trainer draws each epoch's order and asks for its batches."""

    sized = True

    def __len__(self) -> int:
        raise NotImplementedError

    def batches(self, order: torch.Tensor, batch_size: int, start: int, stop: int) -> Iterator[Any]:
        """Batches ``start`` .. ``stop - 1`` of ``order`` (example indices), ``batch_size`` examples each."""
        raise NotImplementedError


class TensorSource(DataSource):
    """In-memory tensors, indexed on the device: the fast path of every built-in dataset."""

    def __init__(self, data: TensorDataset | Sequence[torch.Tensor]) -> None:
        tensors = tuple(data.tensors if isinstance(data, TensorDataset) else data)
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise DataError("a TensorSource needs tensors with the same number of rows")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def bind(self, trainer: Trainer) -> None:
        self.tensors = tuple(t.to(trainer.device) for t in self.tensors)

    def batches(self, order: torch.Tensor, batch_size: int, start: int, stop: int) -> Iterator[Any]:
        order = order.to(self.tensors[0].device)
        if len(self.tensors) == 2:  # (inputs, targets), the common case, without a generator per batch
            inputs, targets = self.tensors
            for b in range(start, stop):
                index = order[b * batch_size : (b + 1) * batch_size]
                yield inputs[index], targets[index]
            return
        for b in range(start, stop):
            index = order[b * batch_size : (b + 1) * batch_size]
            yield tuple(t[index] for t in self.tensors)

    def count(self, batch: Any) -> int:
        return len(batch[0])


class DatasetSource(DataSource):
    """Any map-style ``Dataset`` (e.g. image files streamed from disk), read through a DataLoader.

    Args:
        dataset: items are batches of one (a tuple ``(input, target)``, a dict, a tensor).
        num_workers: DataLoader worker processes.
    """

    def __init__(self, dataset: Dataset, num_workers: int = 0) -> None:
        self.dataset, self.num_workers = dataset, num_workers

    def __len__(self) -> int:
        return len(self.dataset)

    def bind(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def batches(self, order: torch.Tensor, batch_size: int, start: int, stop: int) -> Iterator[Any]:
        sampler = order[start * batch_size : stop * batch_size].tolist()
        # a generator of its own: a DataLoader otherwise draws its workers' base seed from the global
        # RNG, which would shift dropout's random numbers after a resume
        seeds = torch.Generator().manual_seed(self.trainer.seed * 1_000_003 + self.trainer.epoch)
        loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=False,
            generator=seeds,
        )
        for batch in loader:
            yield to_device(batch, self.trainer.device)


def as_source(data: BatchSource | Dataset, num_workers: int = 0) -> BatchSource:
    """The source for ``data``: itself, a ``TensorSource`` for in-memory tensors, else a ``DatasetSource``."""
    if isinstance(data, BatchSource):
        return data
    if isinstance(data, TensorDataset):
        return TensorSource(data)
    if isinstance(data, Dataset):
        return DatasetSource(data, num_workers)
    raise ConfigError(
        f"cannot train on a {type(data).__name__}: give a DataBundle, a torch Dataset or a BatchSource "
        "(SampleSource for generated samples, EnvironmentSource for an environment)"
    )


class StreamSource(BatchSource):
    """A source without a length: batches without end, trained under ``max_steps``."""

    sized = False

    def batches(self, trainer: Trainer, model: nn.Module) -> Iterator[Any]:
        """Batches without end; all state lives on ``self`` so that ``state_dict`` captures it."""
        raise NotImplementedError


def _seed(trainer: Trainer, salt: int) -> int:
    """A seed for a process's stream: the run's seed, the process's rank and the source's salt."""
    return (trainer.seed * 1_000_003 + trainer.rank * 7_919 + salt) % 2**63


class SampleSource(StreamSource):
    """Batches drawn by a function, e.g. points of a known distribution or procedurally generated data.

    Args:
        sample: ``sample(batch_size, generator) -> batch``; it must draw every random number from
            ``generator`` (a CPU ``torch.Generator`` seeded from the run's seed and rank, saved in
            checkpoints) so that runs repeat and resume exactly.
        batch_size: examples per batch (default: the trainer's ``batch_size``).
    """

    def __init__(self, sample: Callable[[int, torch.Generator], Any], batch_size: int | None = None) -> None:
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        self.sample, self.batch_size = sample, batch_size
        self.generator = torch.Generator()

    def bind(self, trainer: Trainer) -> None:
        self.device = trainer.device
        self.size = self.batch_size or trainer.batch_size
        self.generator.manual_seed(_seed(trainer, 1))

    def batches(self, trainer: Trainer, model: nn.Module) -> Iterator[Any]:
        while True:
            yield to_device(self.sample(self.size, self.generator), self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class Environment(Protocol):
    """What ``EnvironmentSource`` needs of an environment: gymnasium's single-environment API.

    ``state_dict`` / ``load_state_dict`` are optional: with them a resumed run continues the very
    same episodes (bitwise resume); without them the environment is reset on resume.
    """

    def reset(self, *, seed: int | None = None) -> tuple[Any, dict[str, Any]]: ...

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]: ...


Act = Callable[[nn.Module, torch.Tensor, torch.Generator], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class EnvironmentSource(StreamSource):
    """Rollouts of an environment played by the model being trained: one batch is ``steps`` transitions.

    Actions come from ``act(model, observation, generator) -> (action, extras)`` (by default the
    training step's own ``act`` method), called in eval mode without gradients on a batch of one
    observation; ``extras`` are per-transition tensors the algorithm wants later (log-probabilities,
    values). An episode that ends (terminated or truncated) is reset and the rollout goes on.

    A batch is a dict of tensors on the trainer's device: ``observations`` (``T x ...``),
    ``actions``, ``rewards``, ``terminated``, ``truncated`` (``T``), each extra stacked (``T x ...``),
    ``next_observation`` (the observation after the last transition, for bootstrapping) and
    ``episode_returns`` / ``episode_lengths`` of the episodes that ended in this rollout.

    Args:
        env: a gymnasium-style environment (``reset(seed=)``, ``step(action)``).
        steps: transitions per batch.
        act: the policy; default ``trainer.step.act``.
    """

    def __init__(self, env: Environment, steps: int, act: Act | None = None) -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"steps (transitions per batch) must be an integer >= 1. Received: steps={steps!r}")
        self.env, self.steps, self.act = env, steps, act
        self.generator = torch.Generator()
        self.observation: torch.Tensor | None = None
        self.episode_return, self.episode_length, self.episodes = 0.0, 0, 0

    def bind(self, trainer: Trainer) -> None:
        self.device = trainer.device
        self.policy = self.act or getattr(trainer.step, "act", None)
        if self.policy is None:
            raise ConfigError(
                f"an EnvironmentSource needs a policy: pass act=..., or train with a step that has an act method "
                f"({type(trainer.step).__name__} has none)"
            )
        self.generator.manual_seed(_seed(trainer, 2))
        observation, _ = self.env.reset(seed=_seed(trainer, 3) % 2**31)
        self.observation = _as_tensor(observation)
        self.episode_return, self.episode_length, self.episodes = 0.0, 0, 0

    def batches(self, trainer: Trainer, model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield to_device(self._rollout(model), self.device)

    def _rollout(self, model: nn.Module) -> dict[str, torch.Tensor]:
        columns: dict[str, list[Any]] = {
            k: [] for k in ("observations", "actions", "rewards", "terminated", "truncated")
        }
        extras: dict[str, list[torch.Tensor]] = {}
        returns, lengths = [], []
        with eval_mode(model), torch.no_grad():
            for _ in range(self.steps):
                observation = self.observation
                action, extra = self.policy(model, observation.to(self.device)[None], self.generator)
                action = action.detach().cpu().reshape(action.shape[1:] if action.dim() > 0 else ())
                next_observation, reward, terminated, truncated, _ = self.env.step(_env_action(action))
                self.episode_return += float(reward)
                self.episode_length += 1
                for key, value in zip(columns, (observation, action, float(reward), bool(terminated), bool(truncated))):
                    columns[key].append(value)
                for key, value in extra.items():
                    extras.setdefault(key, []).append(value.detach().cpu().reshape(value.shape[1:]))
                if terminated or truncated:
                    returns.append(self.episode_return)
                    lengths.append(self.episode_length)
                    self.episode_return, self.episode_length = 0.0, 0
                    self.episodes += 1
                    next_observation, _ = self.env.reset()
                self.observation = _as_tensor(next_observation)
        batch = {
            "observations": torch.stack(columns["observations"]),
            "actions": torch.stack(columns["actions"]),
            "rewards": torch.tensor(columns["rewards"], dtype=torch.float32),
            "terminated": torch.tensor(columns["terminated"]),
            "truncated": torch.tensor(columns["truncated"]),
            "next_observation": self.observation.clone(),
            "episode_returns": torch.tensor(returns, dtype=torch.float32),
            "episode_lengths": torch.tensor(lengths, dtype=torch.long),
        }
        batch.update({key: torch.stack(values) for key, values in extras.items()})
        return batch

    def count(self, batch: Any) -> int:
        return self.steps

    def state_dict(self) -> dict[str, Any]:
        save = getattr(self.env, "state_dict", None)
        return {
            "generator": self.generator.get_state(),
            "observation": self.observation,
            "episode": [self.episode_return, self.episode_length, self.episodes],
            "env": save() if callable(save) else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        load = getattr(self.env, "load_state_dict", None)
        if state["env"] is not None and callable(load):
            load(state["env"])
            self.observation = state["observation"]
            self.episode_return, self.episode_length, self.episodes = state["episode"]
        else:  # the environment cannot be restored: start a fresh episode (not a bitwise resume)
            observation, _ = self.env.reset()
            self.observation = _as_tensor(observation)
            self.episode_return, self.episode_length = 0.0, 0
            self.episodes = state["episode"][2]


def _as_tensor(observation: Any) -> torch.Tensor:
    tensor = torch.as_tensor(observation)
    return tensor.float() if tensor.is_floating_point() or tensor.dtype == torch.bool else tensor


def _env_action(action: torch.Tensor) -> Any:
    """An action as environments take it: a Python number for scalars, a NumPy array otherwise."""
    return action.item() if action.dim() == 0 else action.numpy()


def periods(max_steps: int, eval_every: int) -> int:
    """How many validation periods a stream of ``max_steps`` steps has."""
    return math.ceil(max_steps / eval_every)
