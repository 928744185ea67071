"""The top-level API: ``gn.train(...)`` runs the pipeline while ``glassnet.train`` stays a package."""

import importlib
import inspect

import glassnet as gn


def test_train_is_both_the_package_and_the_pipeline_function():
    tasks = importlib.import_module("glassnet.train.tasks")
    # `import glassnet.train.tasks as tasks` resolves through the attribute chain; it failed while
    # glassnet.train was a plain function that shadowed the subpackage
    exec("import glassnet.train.tasks as chained", namespace := {})
    assert namespace["chained"] is tasks
    assert gn.train.Trainer is gn.Trainer
    assert list(inspect.signature(gn.train).parameters)[:2] == ["config", "out"]


def test_calling_gn_train_trains_a_run(tmp_path):
    run = gn.train(gn.RunConfig(data="digits", model="mlp", epochs=1), out=tmp_path / "run")
    assert run.read_result("train")["test"]["accuracy"] > 0.5
