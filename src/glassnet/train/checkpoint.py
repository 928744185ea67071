"""Training-state checkpoints: atomic writes, safe reads, and the RNG states of a process.

A checkpoint is one ``torch.save`` file of tensors and plain Python values (no pickled objects),
read back with ``weights_only=True``. It is written to a temporary name and renamed, so the last
good checkpoint is always intact, even when the process is killed while writing.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.errors import CheckpointError
from glassnet.models.serialization import load_tensor_file
from glassnet.runs import atomic_write

FORMAT_VERSION = 2  # 2: named optimisers and schedules, the step's logs, the batch source's state
LAST = "last.pt"


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (the previous file stays until the new one is complete)."""
    atomic_write(path, lambda tmp: torch.save({"format": FORMAT_VERSION, **state}, tmp))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``.

    Raises:
        CheckpointError: the file is missing, truncated, corrupt or not a glassnet checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at '{path}': a run writes checkpoints/last.pt at every epoch end (and every "
            "checkpoint_every steps); train it first, or start afresh without --resume"
        )
    state = load_tensor_file(
        path,
        CheckpointError,
        f"checkpoint '{path}' cannot be read",
        "it was not written by glassnet or is corrupt. Delete it to start afresh",
    )
    if not isinstance(state, dict) or not isinstance(state.get("format"), int):
        raise CheckpointError(f"'{path}' is not a glassnet training checkpoint (format {FORMAT_VERSION} expected)")
    if state["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' is a glassnet training checkpoint of format {state['format']}, written by another version; "
            f"this version resumes format {FORMAT_VERSION}. Start the run afresh (--overwrite)"
        )
    return state


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's generators (and CUDA's, and a data generator)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "gauss": (has_gauss, cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["data"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what ``rng_state`` returned."""
    random.setstate(_as_tuple(state["python"]))
    numpy = state["numpy"]
    has_gauss, cached = numpy["gauss"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "data" in state:
        generator.set_state(state["data"])


def _as_tuple(value: Any) -> Any:
    """Python's generator state is nested tuples; keep it so however it was stored."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(v) for v in value)
    return value
