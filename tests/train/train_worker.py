"""A training process for the resume and distributed tests (run as a script, also under torchrun).

usage: train_worker.py OUT [--kill-at STEP] [--kill-rank R] [--resume] [key=value ...]

Trains with ``glassnet.pipeline.train`` into OUT. ``--kill-at`` SIGKILLs the process (on rank R,
on the first attempt only) right after optimiser step STEP, like a machine failure: no cleanup, no
flushing, no exception handling.
"""

from __future__ import annotations

import argparse
import os
import signal

from glassnet.config import RunConfig
from glassnet.pipeline import train
from glassnet.train import Callback
from glassnet.train.distributed import env_rank, restart_count


class KillAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, trainer, model, batch_size):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--kill-rank", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    callbacks = []
    if args.kill_at is not None and env_rank() == args.kill_rank and restart_count() == 0:
        callbacks.append(KillAt(args.kill_at))
    if args.resume:
        train(out=args.out, resume=True, callbacks=callbacks)
    else:
        train(RunConfig().with_overrides(args.overrides), out=args.out, callbacks=callbacks)


if __name__ == "__main__":
    main()
