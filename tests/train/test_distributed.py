"""Multi-process training under torchrun: sharding, gathering, DDP accuracy and restart."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glassnet.train import distributed

WORKER = Path(__file__).with_name("train_worker.py")
SETTINGS = ["data=digits", "model=mlp", "epochs=4", "batch_size=32", "checkpoint_every=10"]


@pytest.mark.parametrize("count,world", [(10, 2), (11, 2), (7, 3), (5, 1)])
def test_shards_cover_the_order_with_equal_lengths(count, world):
    order = torch.randperm(count, generator=torch.Generator().manual_seed(0))
    shards = [distributed.shard(order, rank, world) for rank in range(world)]
    assert len({len(s) for s in shards}) == 1  # DDP needs the same number of steps on every rank
    assert set(torch.cat(shards).tolist()) == set(range(count))
    assert sum(len(s) for s in shards) == -(-count // world) * world


def test_gather_ordered_undoes_the_sharding(monkeypatch):
    count, world = 11, 3
    rows = torch.arange(count * 2).reshape(count, 2)
    shards = [rows[distributed.shard(torch.arange(count), rank, world)] for rank in range(world)]

    def all_gather(parts, local):  # stands in for the collective: every rank's share arrives
        for part, shard in zip(parts, shards):
            part.copy_(shard)

    monkeypatch.setattr(torch.distributed, "all_gather", all_gather)
    assert torch.equal(distributed.gather_ordered(shards[1], count, world), rows)


def test_a_single_process_has_rank_zero_and_no_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.setup(torch.device("cpu")) == (0, 1, torch.device("cpu"))
    assert distributed.is_global_zero() and not distributed.active() and distributed.restart_count() == 0


def _run(out, *args, processes=2, restarts=0):
    if processes == 1:
        command = [sys.executable, str(WORKER), str(out), *args]
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
        command = [*launcher, f"--max-restarts={restarts}", str(WORKER), str(out), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((Path(out) / "results" / "train.json").read_text())


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    return out, _run(out, *SETTINGS)


@pytest.mark.slow
def test_two_processes_reach_the_single_process_accuracy(two_processes, tmp_path):
    out, ddp = two_processes
    single = _run(tmp_path / "single", *SETTINGS, processes=1)
    assert ddp["training"]["processes"] == 2 and single["training"]["processes"] == 1
    # each process takes half of every epoch: half the steps of a batch twice as large
    assert ddp["training"]["steps"] * 2 == single["training"]["steps"]
    assert ddp["test"]["accuracy"] >= single["test"]["accuracy"] - 0.03 and ddp["test"]["accuracy"] >= 0.9
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # rank 0 alone writes


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_resumes_from_the_checkpoint(two_processes, tmp_path):
    reference, _ = two_processes
    # rank 1 dies (SIGKILL) after step 25 of 80; torchrun restarts both workers, which resume from step 20
    result = _run(tmp_path / "run", "--kill-at", "25", "--kill-rank", "1", *SETTINGS, restarts=1)
    assert result["training"]["resumed"] is True and result["training"]["steps"] == 80
    restarted = load_file(tmp_path / "run" / "model.safetensors")
    uninterrupted = load_file(reference / "model.safetensors")
    for key in uninterrupted:
        assert torch.equal(restarted[key], uninterrupted[key]), key


def test_closing_drops_the_ddp_wrapper_before_leaving_the_group(tmp_path):
    """A DDP wrapper that outlives ``destroy_process_group`` keeps the gloo group alive until the
    interpreter exits, where its threads abort the process (seen as a SIGABRT of rank 1 in CI)."""
    import gc
    import weakref

    from glassnet.train import Trainer

    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        trainer = Trainer(max_epochs=1)
        trainer.world_size, trainer.device = 2, torch.device("cpu")  # wrap as the second of two processes would
        trainer._runner = trainer._wrap(torch.nn.Linear(3, 2))
        wrapper = weakref.ref(trainer._runner)
        assert isinstance(wrapper(), torch.nn.parallel.DistributedDataParallel)
        trainer.close()
        gc.collect()
        assert wrapper() is None, "the DDP wrapper (and the process group it holds) must be gone"
        assert not torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
