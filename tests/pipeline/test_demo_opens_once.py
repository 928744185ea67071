"""``glassnet demo`` opens its data and its model once: training and every stage share one ``Run``."""

import pytest

import glassnet as gn
from glassnet.data import registry
from glassnet.models import serialization
from glassnet.pipeline import DEMO_CONFIG


@pytest.mark.slow
def test_the_demo_loads_the_dataset_once_and_never_reloads_the_model(tmp_path, monkeypatch):
    loads = {"data": 0, "model": 0}
    call, read = registry._call, serialization.load_weights

    def counted_call(*args, **kwargs):
        loads["data"] += 1
        return call(*args, **kwargs)

    def counted_read(*args, **kwargs):
        loads["model"] += 1
        return read(*args, **kwargs)

    monkeypatch.setattr(registry, "_call", counted_call)
    monkeypatch.setattr(serialization, "load_weights", counted_read)
    run = gn.demo(tmp_path / "demo", config=DEMO_CONFIG.with_overrides({"epochs": 2}))
    assert loads == {"data": 1, "model": 0}
    for stage in ("train", "explain", "robustness", "compress"):
        assert run.result(stage) is not None, stage
    assert run.report.is_file()


def test_a_run_reads_each_file_once_and_only_when_asked(tmp_path, monkeypatch):
    run_dir = gn.train(gn.RunConfig(data="breast-cancer", model="mlp", epochs=1), out=tmp_path / "run").path
    reads = []
    read = serialization.load_weights
    monkeypatch.setattr(serialization, "load_weights", lambda *a, **k: reads.append(1) or read(*a, **k))
    run = gn.Run(run_dir)
    assert reads == []  # opening reads nothing
    assert run.model is run.model and run.spec.name == "breast-cancer" and len(reads) == 1
    assert run.data() is run.data() and run.split("test")[0] is run.split("test")[0]
    assert run.config.model == "mlp" and run.result("train")["task"] == "classify"
