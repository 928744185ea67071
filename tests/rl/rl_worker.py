"""Train an agent in a process of its own, SIGKILLed right after a training step when asked.

usage: rl_worker.py OUT [--kill-at STEP] [--resume] [key=value ...]

Without ``--resume`` it trains ``RunConfig().with_overrides(key=value ...)`` into OUT with
``glassnet.pipeline.train``; ``--kill-at STEP`` sends SIGKILL to itself right after training step STEP,
like a machine failure (no cleanup, nothing flushed). ``--resume`` continues OUT through the command
line, ``glassnet train --resume OUT``. One CPU thread, so that every process computes the same way.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import torch

from glassnet.train import Callback


class KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, trainer, model, batch_size):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    torch.set_num_threads(1)
    if args.resume:
        from glassnet.cli import main as cli

        return cli(["train", "--resume", args.out, "--quiet"])
    from glassnet.config import RunConfig
    from glassnet.pipeline import train

    callbacks = [KillAt(args.kill_at)] if args.kill_at is not None else []
    train(RunConfig().with_overrides(args.overrides), out=args.out, callbacks=callbacks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
