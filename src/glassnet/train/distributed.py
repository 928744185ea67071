"""Multi-process training under ``torchrun``: process group, ranks, sharding and gathering.

The trainer detects ``torchrun`` from its environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)
and uses PyTorch's own engine: a process group (gloo on CPU, NCCL on CUDA) and
``DistributedDataParallel``. Nothing here averages metrics inside a callback: the trainer gathers
validation outputs from every rank and computes each metric once over the whole split.
"""

from __future__ import annotations

import datetime
import math
import os

import torch
import torch.distributed as dist

from glassnet.errors import ConfigError


def env_world_size() -> int:
    """``WORLD_SIZE`` as set by ``torchrun`` (1 outside it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """``RANK`` as set by ``torchrun`` (0 outside it); valid before the process group exists."""
    return int(os.environ.get("RANK", "0"))


def is_global_zero() -> bool:
    """Whether this process is the one that writes files (rank 0, or the only process)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return env_rank() == 0


def restart_count() -> int:
    """How many times ``torchrun --max-restarts`` has restarted the workers (0 on the first try)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def active() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def setup(device: torch.device) -> tuple[int, int, torch.device]:
    """Join the ``torchrun`` process group if the environment asks for one.

    Args:
        device: the device asked for; CUDA becomes ``cuda:LOCAL_RANK``.

    Returns:
        ``(rank, world_size, device)``; ``(0, 1, device)`` for a single process.

    Raises:
        ConfigError: the environment asks for several processes but ``torch.distributed`` is missing.
    """
    world = env_world_size()
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return 0, 1, device
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed; run a single process")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = datetime.timedelta(minutes=10)
        store = _attempt_store(timeout)
        if store is None:
            dist.init_process_group(backend=backend, timeout=timeout)
        else:
            dist.init_process_group(backend=backend, timeout=timeout, store=store, rank=env_rank(), world_size=world)
    return dist.get_rank(), dist.get_world_size(), device


def _attempt_store(timeout: datetime.timedelta) -> dist.Store | None:
    """A key space of its own for each ``torchrun`` restart in the agent's store.

    ``torchrun`` keeps its TCP store (same port) across ``--max-restarts``; the process group of a
    restarted attempt then reads the addresses that the dead workers published and fails to
    connect (seen with gloo and torch 2.13). Prefixing the keys with the attempt number avoids it.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    base = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), env_world_size(), is_master=False, timeout=timeout
    )
    return dist.PrefixStore(f"glassnet/attempt_{restart_count()}", base)


def cleanup() -> None:
    """Leave the process group (if any), so the process exits cleanly."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's share of an epoch's example order, like ``DistributedSampler``.

    Every rank draws the same permutation from the same seed; the order is padded by repeating
    its start to a multiple of ``world_size`` (so every rank runs the same number of steps, which
    DDP needs) and rank ``r`` takes positions ``r, r + world, r + 2 world, ...``.
    """
    if world_size == 1:
        return order
    total = math.ceil(len(order) / world_size) * world_size
    if total > len(order):
        repeats = math.ceil(total / len(order))
        order = torch.cat([order] * repeats)[:total]
    return order[rank::world_size]


def gather_ordered(local: torch.Tensor, count: int, world_size: int) -> torch.Tensor:
    """Undo ``shard``: gather every rank's rows and put them back in order (first ``count`` rows).

    Args:
        local: this rank's rows (for ``shard(arange(count), rank, world)``); every rank has as many.
        count: rows in the whole, unpadded split.
        world_size: number of ranks.
    """
    parts = [torch.empty_like(local) for _ in range(world_size)]
    dist.all_gather(parts, local.contiguous())
    stacked = torch.stack(parts, dim=1)  # rank r's row i is the split's row i * world + r
    return stacked.reshape(-1, *local.shape[1:])[:count]
