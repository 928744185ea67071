"""Evaluating a policy: seeded episodes, the deterministic action, returns as mean +- std; rendered episodes."""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from glassnet.data.environments import EnvironmentData
from glassnet.errors import ConfigError
from glassnet.models.outputs import eval_mode, model_device
from glassnet.runs import writes_run

VALIDATION_SEED = 10_000  # validation episodes (best-weight selection) use seeds from here on
TEST_SEED = 20_000  # the final evaluation's episodes; training episodes are seeded from the run's seed
EVALUATION_SEED = TEST_SEED
PARALLEL = 16  # episodes stepped together


AGENT_THREADS = 1  # small networks, one observation per environment: more threads only wait on each other


@contextlib.contextmanager
def cpu_threads(count: int = AGENT_THREADS) -> Iterator[None]:
    """Run the block with ``count`` intra-op CPU threads in torch, then restore the previous setting.

    An agent's networks are small and act on a handful of observations at a time; extra threads bring
    nothing there, and when other processes share the cores their spinning makes each call up to 100x
    slower. Every evaluation loop of ``glassnet.rl`` and every environment run uses one thread
    unless the run's ``threads`` says otherwise.
    """
    previous = torch.get_num_threads()
    if count and count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def evaluate_policy(
    model: nn.Module,
    environment: EnvironmentData,
    episodes: int = 10,
    seed: int = EVALUATION_SEED,
    deterministic: bool = True,
    progress: Any = None,
) -> dict[str, Any]:
    """Play ``episodes`` episodes (seeds ``seed`` .. ``seed + episodes - 1``) and summarise their returns.

    ``progress`` (True, a stream or ``"auto"``; default none) draws a bar over the episodes played.

    Returns:
        ``return_mean``, ``return_std``, ``return_min``, ``return_max``, ``length_mean``, ``episodes``
        and ``seeds`` (first and last), plus every episode's ``returns`` and ``lengths``.

    Raises:
        ConfigError: ``episodes`` is not a positive integer.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be a positive integer. Received: {episodes!r}")
    device = model_device(model)
    generator = torch.Generator().manual_seed(seed)
    returns, lengths = [], []
    from glassnet.progress import progress_bar

    bar = progress_bar(episodes, "evaluating", progress, unit="episodes")
    with bar, eval_mode(model), torch.no_grad(), cpu_threads():
        for first in range(0, episodes, PARALLEL):
            count = min(PARALLEL, episodes - first)
            envs = environment.make(count)
            try:
                got, steps = _play(
                    model, envs, [seed + first + i for i in range(count)], deterministic, generator, device
                )
            finally:
                envs.close()
            returns += got
            lengths += steps
            bar.update(count)
    values = np.asarray(returns, dtype=np.float64)
    return {
        "return_mean": float(values.mean()),
        "return_std": float(values.std()),
        "return_min": float(values.min()),
        "return_max": float(values.max()),
        "length_mean": float(np.mean(lengths)),
        "episodes": episodes,
        "seeds": [seed, seed + episodes - 1],
        "deterministic": deterministic,
        "returns": [round(float(r), 4) for r in values],
        "lengths": [int(n) for n in lengths],
    }


def _play(
    model: nn.Module, envs: Any, seeds: list[int], deterministic: bool, generator: torch.Generator, device: Any
) -> tuple[list[float], list[int]]:
    """One episode per environment; an environment that has finished keeps stepping, uncounted."""
    observations, _ = envs.reset(seed=seeds)
    count = len(seeds)
    returns, lengths = np.zeros(count), np.zeros(count, dtype=np.int64)
    running = np.ones(count, dtype=bool)
    while running.any():
        x = torch.as_tensor(np.asarray(observations), dtype=torch.float32, device=device)
        actions = model.act(x, deterministic=deterministic, generator=generator).cpu().numpy()
        observations, rewards, ended, cut, _ = envs.step(actions)
        returns += rewards * running
        lengths += running
        running &= ~np.logical_or(ended, cut)
    return returns.tolist(), lengths.tolist()


def render_episode(
    model: nn.Module,
    environment: EnvironmentData,
    seed: int = EVALUATION_SEED,
    max_frames: int = 300,
    width: int = 240,
    deterministic: bool = True,
) -> tuple[bytes, dict[str, Any]]:
    """One episode of the policy as an animated GIF (at most ``max_frames`` frames, ``width`` pixels wide).

    Returns:
        The GIF's bytes and ``{"seed", "return", "length", "frames"}``.
    """
    from PIL import Image

    _headless()
    limit = environment.spec.extra.get("max_episode_steps") if environment.spec is not None else None
    every = max(1, math.ceil((limit + 1) / max_frames)) if limit else 1  # render only the frames kept
    env = environment.make_one(render_mode="rgb_array")
    pictures, total, length = [], 0.0, 0
    generator = torch.Generator().manual_seed(seed)
    try:
        observation, _ = env.reset(seed=seed)
        done = False
        pictures.append(env.render())
        with eval_mode(model), torch.no_grad():
            while not done:
                x = torch.as_tensor(np.asarray(observation), dtype=torch.float32, device=model_device(model))[None]
                action = model.act(x, deterministic=deterministic, generator=generator)[0].cpu().numpy()
                observation, reward, ended, cut, _ = env.step(action if action.ndim else action.item())
                total, length, done = total + float(reward), length + 1, bool(ended or cut)
                if length % every == 0 or done:
                    pictures.append(env.render())
    finally:
        env.close()
    keep = max(1, math.ceil(len(pictures) / max_frames))
    frames = []
    for picture in pictures[::keep]:
        image = Image.fromarray(np.asarray(picture, dtype=np.uint8))
        height = max(1, round(image.height * width / image.width))
        frames.append(image.resize((width, height)))
    keep *= every
    buffer = io.BytesIO()
    duration = max(20, round(1000 * keep / environment_fps(environment)))
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0)
    return buffer.getvalue(), {"seed": seed, "return": total, "length": length, "frames": len(frames)}


def _headless() -> None:
    """Let pygame-based renderers draw off-screen when there is no display (servers, CI)."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def environment_fps(environment: EnvironmentData) -> float:
    """Frames per second the environment renders at (its metadata), 30 when it does not say."""
    env = environment.make_one()
    try:
        return float(env.metadata.get("render_fps") or 30)
    finally:
        env.close()


@writes_run("play")
def play(
    run: Any,
    out: str | os.PathLike[str] | None = None,
    seed: int = TEST_SEED,
    max_frames: int = 600,
    width: int = 320,
    deterministic: bool = True,
) -> dict[str, Any]:
    """Render one episode of a trained agent to an animated GIF; writes ``results/play.json``.

    Args:
        run: a ``Run`` or a run directory trained with ``--env``.
        out: the GIF to write (default ``RUN/figures/play.gif``).
        seed: the episode's seed.
        max_frames: at most this many frames (longer episodes keep every k-th frame).
        width: the frames' width in pixels.
        deterministic: the most likely action (True) or actions drawn from the policy.

    Raises:
        ConfigError: the run is not an agent, or an option is out of range.
    """
    from glassnet.runs import write_bytes
    from glassnet.train.run import Run

    run = Run.open(run)
    if run.spec.task != "control":
        raise ConfigError(f"play renders an agent's episode; this run learnt {run.spec.task} from data")
    for name, value in (("max_frames", max_frames), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer. Received: {value!r}")
    path = Path(out) if out is not None else run.figures_dir / "play.gif"
    if path.suffix.lower() != ".gif":
        raise ConfigError(f"play writes an animated GIF; give --out a .gif path. Received: {str(path)!r}")
    gif, info = render_episode(run.model, run.data(), seed, max_frames, width, deterministic)
    write_bytes(path, gif)
    result = {**info, "file": str(path), "deterministic": deterministic, "env": run.spec.name}
    run.write_result("play", result)
    return result


def collect_states(
    model: nn.Module, environment: EnvironmentData, count: int, seed: int = TEST_SEED, episodes: int = 4
) -> torch.Tensor:
    """``count`` observations the deterministic policy meets, spread evenly over ``episodes`` seeded episodes
    (the states an audit explains or attacks).

    Raises:
        ConfigError: ``count`` is not a positive integer.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"the number of states must be a positive integer. Received: {count!r}")
    device = model_device(model)
    envs = environment.make(episodes)
    seen: list[torch.Tensor] = []
    try:
        observations, _ = envs.reset(seed=[seed + i for i in range(episodes)])
        running = np.ones(episodes, dtype=bool)
        with eval_mode(model), torch.no_grad():
            while running.any():
                x = torch.as_tensor(np.asarray(observations), dtype=torch.float32)
                seen.append(x[torch.from_numpy(running)])
                actions = model.act(x.to(device), deterministic=True).cpu().numpy()
                observations, _, ended, cut, _ = envs.step(actions)
                running &= ~np.logical_or(ended, cut)
    finally:
        envs.close()
    states = torch.cat(seen)
    picked = torch.linspace(0, len(states) - 1, min(count, len(states))).round().long()
    return states[picked]


class DecisionAgent(nn.Module):
    """An agent that acts from a policy network's decision output alone: the most likely action (logits,
    Q-values) or the action itself, clipped to the bounds. It wraps any forward function (a quantised
    copy, an ONNX Runtime session), so compressed policies are evaluated by playing episodes.

    Args:
        forward: ``observations -> decision`` (what the policy's ``forward`` returns).
        spec: the control spec (action kind and bounds).
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], spec: Any) -> None:
        super().__init__()
        action = spec.extra["action"]
        self.decide, self.discrete = forward, action["kind"] == "discrete"
        self.register_buffer("low", torch.tensor(action.get("low", [0.0]), dtype=torch.float32))
        self.register_buffer("high", torch.tensor(action.get("high", [0.0]), dtype=torch.float32))

    def act(
        self, observations: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        out = self.decide(observations.cpu()).float()
        if self.discrete:
            return out.argmax(dim=-1)
        return torch.maximum(torch.minimum(out, self.high), self.low)
