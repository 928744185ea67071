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


def test_explain_and_compress_are_packages_and_their_stage_functions():
    from glassnet.compress.core import compress as compress_function
    from glassnet.explain.attribute import explain as explain_function

    assert gn.explain.Attributions is not None and gn.compress.DistillationStep is not None
    assert inspect.signature(gn.explain) == inspect.signature(explain_function)
    assert inspect.signature(gn.compress) == inspect.signature(compress_function)
    assert callable(gn.robustness)


def test_importing_glassnet_leaves_the_heavy_optional_libraries_unloaded():
    import subprocess
    import sys

    heavy = "('captum', 'onnx', 'onnxruntime', 'torch_pruning')"
    code = f"import sys, glassnet; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
