"""``glassnet --help`` and the listings answer without importing torch, and ``import glassnet`` stays lazy.

Speed is asserted through what gets imported (robust on a loaded machine), not through a timing.
"""

import subprocess
import sys

from glassnet.cli import catalog

HEAVY = ("torch", "numpy", "pandas", "sklearn", "matplotlib", "scipy")


def imported_after(code):
    """The heavy modules that ``code`` leaves imported, run in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_help_listings_and_completion_import_no_heavy_library():
    code = """
import contextlib, io
from glassnet.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    for argv in (["datasets"], ["models"], ["completion", "bash"], ["trian"], ["--help"]):
        try:
            assert main(argv) == 0, argv
        except SystemExit as exit:
            assert exit.code in (0, 2), argv
"""
    assert imported_after(code) == "[]"


def test_import_glassnet_and_dir_are_light():
    assert imported_after("import glassnet\nassert 'Trainer' in dir(glassnet)") == "[]"


def test_the_catalog_reads_the_registries_statically_and_matches_them():
    from glassnet.data import list_datasets
    from glassnet.models import list_models, model_info

    # None would mean a fallback to importing the registries (correct, but seconds slower)
    assert catalog._read("data", "register_dataset") is not None
    assert catalog._read("models", "register_model") is not None
    expected = [
        catalog.DatasetEntry(d.name, d.task, d.modality, d.size, d.source, d.description) for d in list_datasets()
    ]
    assert catalog.datasets() == expected
    infos = [model_info(name) for name in list_models()]
    assert catalog.models() == [
        catalog.ModelEntry(i.name, tuple(i.modalities), tuple(i.tasks), i.description) for i in infos
    ]
    assert catalog.static_model_names() == list_models()


def test_a_registration_the_catalog_cannot_read_falls_back_to_none():
    import inspect

    signature = inspect.signature(lambda name, *, size="": None)
    looped = "for n in ('a', 'b'):\n    register_dataset(n)(lambda: None)\n"
    assert catalog._registrations(looped, "register_dataset", signature) is None
    computed = "@register_dataset(make_name())\ndef f():\n    pass\n"
    assert catalog._registrations(computed, "register_dataset", signature) is None
    literal = "SIZE = 'big'\n@register_dataset(f'x-{SIZE}', size=SIZE + '!')\ndef f():\n    '''Doc.'''\n"
    assert catalog._registrations(literal, "register_dataset", signature) == [
        ({"name": "x-big", "size": "big!"}, "Doc.")
    ]


def test_gn_keeps_its_api_whatever_is_imported_first():
    code = """
import importlib, inspect
import glassnet.train.tasks  # the subpackage first: gn.train must still be the pipeline function too
import glassnet.report.card  # and gn.report the function, not the package
import glassnet as gn
from glassnet import Trainer, load_dataset
from glassnet.pipeline import train as pipeline_train
from glassnet.report import report
assert callable(gn.train) and gn.train.Trainer is Trainer
assert inspect.signature(gn.train) == inspect.signature(pipeline_train)
assert gn.report is report and callable(gn.compress) and callable(gn.explain) and callable(gn.robustness)
assert set(gn.__all__) <= set(dir(gn))
missing = [name for name in gn.__all__ if getattr(gn, name, None) is None]
assert not missing, missing
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_without_a_static_reading_the_catalog_asks_the_registries(monkeypatch):
    static_datasets, static_models = catalog.datasets(), catalog.models()
    monkeypatch.setattr(catalog, "_read", lambda package, register: None)
    assert catalog.datasets() == static_datasets
    assert catalog.models() == static_models
    assert catalog.static_model_names() is None
