"""Run a worked example's ``train`` in a process of its own, SIGKILLed after a step when asked.

usage: example_worker.py NAME OUT [--epochs E | --steps S] [--resume] [--kill-at STEP]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "train"))

from train_worker import KillAt  # noqa: E402  (the kill switch of the other resume tests)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-at", type=int)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location(args.name, HERE.parents[1] / "examples" / f"{args.name}.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    budget = {"epochs": args.epochs} if args.epochs is not None else {"steps": args.steps}
    extra = [KillAt(args.kill_at)] if args.kill_at is not None else []
    example.train(args.out, **budget, resume=args.resume, extra=extra)


if __name__ == "__main__":
    main()
