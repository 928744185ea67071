"""Shared part of the reinforcement-learning benchmarks (rl_cartpole.py, rl_pendulum.py, rl_lunarlander.py,
rl_mujoco.py): glassnet against Stable-Baselines3 on the same environment, settings and step budget.

Not a benchmark by itself (``--help`` only imports it). Per seed, each contender trains once in this
process, the order alternating from seed to seed; the clock (wall, ``time.perf_counter``, and this
process's CPU time, ``time.process_time``) runs around the whole training call: ``gn.train`` (which
also runs glassnet's ten periodic validations, its final test evaluation, the episode GIF and the
run directory's files; its own ``train_time_s``, the fit loop with the validations, is reported
too) and, for SB3, building the vector environment and the model and ``model.learn``. After the
clock stops, both libraries' agents play the same seeded evaluation episodes (seeds ``EVAL_SEED``
on, deterministic policy): glassnet's through ``glassnet.evaluate_policy``, SB3's through a loop of
the same shape with ``model.predict(obs, deterministic=True)``. glassnet's ``gn.train`` returns the
weights of its best validation (``BestModel``), so its agent is scored twice: the returned weights,
and the final weights (what SB3 returns).

Stable-Baselines3 is imported only when a benchmark runs (``pip install stable-baselines3``), so
``--help`` works without it.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

EVAL_SEED = 20_000  # glassnet's TEST_SEED: evaluation episodes of both libraries use seeds 20000, 20001, ...
PARALLEL = 16  # evaluation episodes stepped together (as glassnet's evaluate_policy)
RESULTS = Path(__file__).resolve().parent / "results"


# --- command line ---------------------------------------------------------------------------------


def parser(doc: str, seeds: Sequence[int], steps: int, episodes: int) -> argparse.ArgumentParser:
    """The options every RL benchmark shares; ``doc`` is the script's module docstring."""
    first, _, rest = (doc or "").partition("\n")
    made = argparse.ArgumentParser(
        description=first, epilog=rest.strip(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    made.add_argument("--seeds", type=int, nargs="+", default=list(seeds), help=f"training seeds ({list(seeds)})")
    made.add_argument("--steps", type=int, default=steps, help=f"environment steps of each training ({steps})")
    made.add_argument("--episodes", type=int, default=episodes, help=f"evaluation episodes per agent ({episodes})")
    made.add_argument("--eval-episodes", type=int, default=5, help="episodes of each of glassnet's ten validations (5)")
    made.add_argument("--threads", type=int, default=1, help="torch threads for both libraries (1: steadier)")
    made.add_argument("--only", choices=("glassnet", "sb3"), default=None, help="run one library only")
    made.add_argument("--out", default=None, help="keep glassnet's run directories here (default: a temporary one)")
    made.add_argument("--results", default=str(RESULTS), help="folder of the .txt/.json results (benchmarks/results)")
    made.add_argument("--no-save", action="store_true", help="print only; write no results files")
    return made


def require_sb3(script: str) -> None:
    """Exit with one line when Stable-Baselines3 is missing."""
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        sys.exit(
            f"{script} compares glassnet with Stable-Baselines3, which is not installed: pip install stable-baselines3"
        )


def setup(args: argparse.Namespace, script: str) -> None:
    """Threads, quiet warnings, SB3 present."""
    import warnings

    import torch

    if args.only != "glassnet":
        require_sb3(script)
    torch.set_num_threads(args.threads)  # two threads spin against each other on a busy 2-core machine
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


# --- measuring ------------------------------------------------------------------------------------


class Clock:
    """Wall and CPU seconds of a ``with`` block."""

    def __enter__(self) -> Clock:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def summary(returns: Sequence[float], lengths: Sequence[int]) -> dict[str, Any]:
    values = np.asarray(returns, dtype=np.float64)
    return {
        "return_mean": float(values.mean()),
        "return_std": float(values.std()),
        "return_min": float(values.min()),
        "length_mean": float(np.mean(lengths)),
        "episodes": len(values),
    }


# --- glassnet ---------------------------------------------------------------------------------------


def glassnet_updates(step: dict[str, Any], steps: int) -> int:
    """Gradient updates ``steps`` training steps of ``step`` (its ``describe()``) made."""
    if step["name"] == "ppo":
        return steps * step["epochs"] * step["minibatches"]  # target_kl 0: every epoch runs
    per = step["n_envs"] * step["train_freq"]  # dqn, sac: a round of updates once learning_starts is reached
    rounds = sum(
        1
        for k in range(1, steps + 1)
        if k * per >= step["learning_starts"] and min(k * per, step["buffer_size"]) >= step["batch_size"]
    )
    return rounds * step["gradient_steps"]


def glassnet_run(
    env_id: str,
    step: dict[str, Any],
    model_args: dict[str, Any],
    env_steps: int,
    seed: int,
    args: argparse.Namespace,
    env_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train with ``gn.train`` (timed), then evaluate the returned and the final weights on the seeded episodes."""
    import glassnet as gn
    from glassnet.config import RunConfig

    class FinalWeights(gn.Callback):
        """The weights at the end of the last period (BestModel swaps in the best ones when fitting ends)."""

        state: dict[str, Any] | None = None

        def on_epoch_end(self, trainer: Any, model: Any, logs: dict[str, Any]) -> None:
            self.state = copy.deepcopy(model.state_dict())

    config = RunConfig(
        env=env_id,
        env_args=dict(env_args or {}),
        step=dict(step),
        model_args=dict(model_args),
        env_steps=env_steps,
        seed=seed,
        eval_episodes=args.eval_episodes,
        test_episodes=args.episodes,
        baseline=False,
    )
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="rl_bench_"))
    out = root / f"{env_id.replace('/', '_')}-{step['name']}-{seed}-{int(time.time() * 1000) % 10**8}"
    final = FinalWeights()
    with Clock() as clock:
        run = gn.train(config, out=out, overwrite=True, callbacks=[final])
    result = run.result("train")
    training = result["training"]
    environment = run.data()
    returned = gn.evaluate_policy(run.model, environment, args.episodes, seed=EVAL_SEED)
    last_model = copy.deepcopy(run.model)
    if final.state is not None:
        last_model.load_state_dict(final.state)
    last = gn.evaluate_policy(last_model, environment, args.episodes, seed=EVAL_SEED)
    record = {
        "library": "glassnet",
        "seed": seed,
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "train_time_s": training["train_time_s"],
        "env_steps": training["env_steps"],
        "training_steps": training["steps"],
        "updates": glassnet_updates(training["step"], training["steps"]),
        "final": summary(last["returns"], last["lengths"]),
        "returned": summary(returned["returns"], returned["lengths"]),
        "best_epoch": training["best_epoch"],
        "best_val": training["best_score"],
        "test_in_train_json": result["test"].get("return_mean"),
        "step": training["step"],
        "model": config.model_args,
    }
    if not args.out:
        shutil.rmtree(root, ignore_errors=True)
    return record


# --- Stable-Baselines3 ------------------------------------------------------------------------------


def linear(start: float) -> Callable[[float], float]:
    """The Zoo's ``lin_<start>``: ``start`` times the share of the run still to go."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * start

    return schedule


def sb3_run(
    algo: str,
    env_id: str,
    n_envs: int,
    kwargs: dict[str, Any],
    env_steps: int,
    seed: int,
    args: argparse.Namespace,
    normalize: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the vector env (VecNormalize when ``normalize``) and the model, learn (timed), then evaluate."""
    import stable_baselines3 as sb3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    with Clock() as clock:
        env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
        if normalize is not None:
            env = VecNormalize(env, **normalize)
        model = getattr(sb3, algo.upper())("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
        model.learn(total_timesteps=env_steps)
    if algo == "ppo":  # PPO counts epochs in _n_updates; each epoch is ceil(rollout / batch_size) updates
        updates = model._n_updates * math.ceil(model.n_steps * model.n_envs / model.batch_size)
    else:
        updates = model._n_updates
    normalizer = None
    if normalize is not None:
        env.training = False
        normalizer = env.normalize_obs
    scores = sb3_evaluate(model, env_id, args.episodes, EVAL_SEED, normalizer)
    env.close()
    return {
        "library": "sb3",
        "seed": seed,
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "train_time_s": None,
        "env_steps": int(model.num_timesteps),
        "updates": int(updates),
        "final": scores,
        "returned": None,
    }


def sb3_evaluate(
    model: Any, env_id: str, episodes: int, seed: int, normalize: Callable[[np.ndarray], np.ndarray] | None = None
) -> dict[str, Any]:
    """Episodes ``seed`` .. ``seed + episodes - 1``, ``PARALLEL`` at a time, as glassnet's evaluate_policy
    plays them."""
    import gymnasium as gym

    returns: list[float] = []
    lengths: list[int] = []
    for first in range(0, episodes, PARALLEL):
        count = min(PARALLEL, episodes - first)
        envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(count)])
        try:
            observations, _ = envs.reset(seed=[seed + first + i for i in range(count)])
            total, length = np.zeros(count), np.zeros(count, dtype=np.int64)
            running = np.ones(count, dtype=bool)
            while running.any():
                x = normalize(observations) if normalize is not None else observations
                actions, _ = model.predict(x, deterministic=True)
                observations, rewards, ended, cut, _ = envs.step(actions)
                total += rewards * running
                length += running
                running &= ~np.logical_or(ended, cut)
        finally:
            envs.close()
        returns += total.tolist()
        lengths += length.tolist()
    return summary(returns, lengths)


# --- comparing and reporting ------------------------------------------------------------------------


class Report:
    """Prints lines and keeps them, to save the script's table as benchmarks/results/<name>.txt."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name, self.args, self.text = name, args, io.StringIO()
        self.records: list[dict[str, Any]] = []

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.text.write(line + "\n")

    def header(self, script: str) -> None:
        import gymnasium
        import torch

        import glassnet

        try:
            import stable_baselines3

            sb3 = stable_baselines3.__version__
        except ImportError:
            sb3 = "not installed"
        self.say(f"# {script} {' '.join(sys.argv[1:])}".rstrip())
        self.say(
            f"# glassnet {glassnet.__version__}, stable-baselines3 {sb3}, gymnasium {gymnasium.__version__}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPUs "
            f"({platform.machine()}), load average at start {os.getloadavg()[0]:.1f}"
        )
        self.say(
            f"# evaluation: {self.args.episodes} episodes per agent, seeds {EVAL_SEED}-"
            f"{EVAL_SEED + self.args.episodes - 1}, deterministic policy, the same seeds for both libraries"
        )

    def save(self) -> None:
        if self.args.no_save:
            return
        folder = Path(self.args.results)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.name}.txt").write_text(self.text.getvalue())
        (folder / f"{self.name}.json").write_text(json.dumps(self.records, indent=1, default=str) + "\n")

    def checkpoint(self) -> None:
        """Save the raw records so far (a long benchmark that dies keeps what it measured)."""
        if self.args.no_save:
            return
        folder = Path(self.args.results)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.name}.json").write_text(json.dumps(self.records, indent=1, default=str) + "\n")


def compare(
    report: Report,
    title: str,
    contenders: dict[str, Callable[[int], dict[str, Any]]],
    seeds: Sequence[int],
) -> dict[str, list[dict[str, Any]]]:
    """Run every contender on every seed (order alternating per seed), print one table and the ratios."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    names = list(contenders)
    for index, seed in enumerate(seeds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            print(f"  [{title}] {name}, seed {seed} ...", file=sys.stderr, flush=True)
            record = contenders[name](seed)
            record.update(contender=name, benchmark=title, load_average=os.getloadavg()[0])
            runs[name].append(record)
            report.records.append(record)
            report.checkpoint()
            print(f"  [{title}] {name}, seed {seed}: {_brief(record)}", file=sys.stderr, flush=True)
    table(report, title, runs, seeds)
    return runs


def _brief(r: dict[str, Any]) -> str:
    text = f"wall {r['wall_s']:.1f} s, CPU {r['cpu_s']:.1f} s, return {r['final']['return_mean']:.1f}"
    if r.get("returned"):
        text += f" (returned weights {r['returned']['return_mean']:.1f})"
    return text


def _ret(score: dict[str, Any] | None) -> str:
    return f"{score['return_mean']:8.1f} ± {score['return_std']:6.1f}" if score else f"{'-':>17}"


def _row(name: str, seed: str, r: dict[str, Any]) -> str:
    fit = f"{r['train_time_s']:8.1f}" if r.get("train_time_s") is not None else f"{'-':>8}"
    return (
        f"{name:<26} {seed:>4} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {fit} {r['env_steps']:>9} "
        f"{r['env_steps'] / r['wall_s']:9.0f} {r['updates']:>8} {r['updates'] / r['wall_s']:8.1f} "
        f"{_ret(r['final'])} {_ret(r.get('returned'))}"
    )


def _mean_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    def avg(key: str) -> float | None:
        values = [r[key] for r in records if r.get(key) is not None]
        return statistics.fmean(values) if values else None

    def score(key: str) -> dict[str, Any] | None:
        if any(r.get(key) is None for r in records):
            return None
        means = [r[key]["return_mean"] for r in records]
        # mean over seeds of the per-seed means; spread: std of the per-seed means
        return {"return_mean": statistics.fmean(means), "return_std": statistics.pstdev(means)}

    return {
        "wall_s": avg("wall_s"),
        "cpu_s": avg("cpu_s"),
        "train_time_s": avg("train_time_s"),
        "env_steps": round(avg("env_steps")),
        "updates": round(avg("updates")),
        "final": score("final"),
        "returned": score("returned"),
    }


def table(report: Report, title: str, runs: dict[str, list[dict[str, Any]]], seeds: Sequence[int]) -> None:
    say = report.say
    say()
    say(f"## {title}")
    say(
        f"{'contender':<26} {'seed':>4} {'wall s':>8} {'CPU s':>8} {'fit s':>8} {'env steps':>9} "
        f"{'steps/s':>9} {'updates':>8} {'upd/s':>8} {'return, final weights':>21} {'returned weights':>17}"
    )
    for name, records in runs.items():
        for r in records:
            say(_row(name, str(r["seed"]), r))
    for name, records in runs.items():
        if records:
            say(_row(name, "mean", _mean_record(records)))
    say(
        "(wall/CPU s: the whole training call; fit s: glassnet's train_time_s, the fit loop with its 10 validations; "
        "steps/s and upd/s per wall second; return: mean ± std over the episodes, for 'mean' rows the mean over "
        "seeds ± the std of the per-seed means; returned weights: what gn.train returns, the best of its validations)"
    )
    reference = next((n for n in runs if n.startswith("SB3")), None)
    if reference is None:
        return
    base = {r["seed"]: r for r in runs[reference]}
    say()
    say(f"ratios glassnet / SB3 ({title}); below 1 = glassnet takes less time, above 1 = glassnet is faster in /s")
    say(
        f"{'contender':<26} {'seed':>4} {'wall':>7} {'CPU':>7} {'fit/SB3 wall':>12} {'steps/s':>8} {'upd/s':>7} "
        f"{'Δ return final':>15} {'Δ return returned':>18}"
    )
    for name, records in runs.items():
        if name == reference:
            continue
        per: list[dict[str, float]] = []
        for r in records:
            s = base.get(r["seed"])
            if s is None:
                continue
            ratios = _ratios(r, s)
            per.append(ratios)
            say(_ratio_row(name, str(r["seed"]), ratios))
        if per:
            mean_g, mean_s = _mean_record(records), _mean_record(runs[reference])
            say(_ratio_row(name, "mean", _ratios(mean_g, mean_s)) + "   (ratios of the means)")
    say("(Δ return: glassnet minus SB3, mean returns over the same evaluation episodes)")


def _ratios(g: dict[str, Any], s: dict[str, Any]) -> dict[str, float]:
    ratios = {
        "wall": g["wall_s"] / s["wall_s"],
        "cpu": g["cpu_s"] / s["cpu_s"],
        "fit": (g["train_time_s"] / s["wall_s"]) if g.get("train_time_s") is not None else math.nan,
        "steps": (g["env_steps"] / g["wall_s"]) / (s["env_steps"] / s["wall_s"]),
        "updates": (g["updates"] / g["wall_s"]) / (s["updates"] / s["wall_s"]) if s["updates"] else math.nan,
        "final": g["final"]["return_mean"] - s["final"]["return_mean"],
        "returned": (g["returned"]["return_mean"] - s["final"]["return_mean"]) if g.get("returned") else math.nan,
    }
    return ratios


def _ratio_row(name: str, seed: str, q: dict[str, float]) -> str:
    return (
        f"{name:<26} {seed:>4} {q['wall']:7.2f} {q['cpu']:7.2f} {q['fit']:12.2f} {q['steps']:8.2f} "
        f"{q['updates']:7.2f} {q['final']:+15.1f} {q['returned']:+18.1f}"
    )


def check(report: Report, label: str, value: float, target: float, higher: bool = True, unit: str = "") -> bool:
    """Print one target of the issue: met or not, with the number."""
    met = value >= target if higher else value <= target
    sign = ">=" if higher else "<="
    report.say(f"target {label}: {value:.2f}{unit} (needs {sign} {target:g}{unit}) -> {'met' if met else 'NOT met'}")
    return met


def means(runs: list[dict[str, Any]], key: str = "final") -> list[float]:
    return [r[key]["return_mean"] for r in runs if r.get(key)]
