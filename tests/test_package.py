"""The package: its top-level API (``gn.train(...)`` runs the pipeline while ``glassnet.train`` stays a
package), its metadata and extras, and the wheel that ``python -m build`` makes."""

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import glassnet as gn

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: `build` (a dev dependency) brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "glassnet"
# `pip install 'glassnet[a,b]'`, `pip install -e '.[dev]'`: the extras a message or a page names
EXTRA_MENTION = re.compile(r"(?:\bglassnet|['\"]\.)\[([A-Za-z][A-Za-z0-9_,\- ]*)\]")
# extras that `all` leaves out on purpose: rl builds Box2D/MuJoCo from source on some machines
NOT_IN_ALL = {"all", "dev", "docs", "rl"}


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


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def extras() -> dict[str, list[str]]:
    return pyproject()["project"]["optional-dependencies"]


def test_every_extra_named_in_messages_and_docs_is_a_real_extra():
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    named = {}
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for group in EXTRA_MENTION.findall(line):
                for name in group.split(","):
                    named.setdefault(name.strip(), []).append(f"{path.relative_to(ROOT)}:{number}")
    assert {"compress", "serve"} <= set(named), "the scan no longer finds the known install hints"
    unknown = {name: places for name, places in named.items() if name not in extras()}
    assert not unknown, f"pip install hints name extras that pyproject.toml lacks: {unknown}"


def test_install_hints_in_messages_quote_the_brackets():
    """Unquoted, ``pip install glassnet[serve]`` fails in zsh (the brackets are a file pattern)."""
    unquoted = re.compile(r"pip install (?:-e )?(?:glassnet|\.)\[")
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
            if id(node) not in docstrings and unquoted.search(text):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.strip()}")
    assert not found, "write pip install 'glassnet[NAME]' (quoted) in: " + "; ".join(found)


def test_all_holds_every_user_extra_and_dev_holds_all_and_docs():
    def included(name: str) -> set[str]:
        (requirement,) = [r for r in extras()[name] if r.startswith("glassnet[")]
        return {extra.strip() for extra in requirement[len("glassnet[") : -1].split(",")}

    assert included("all") == set(extras()) - NOT_IN_ALL
    assert {"all", "docs"} <= included("dev")


def test_metadata_declares_types_urls_and_classifiers():
    project = pyproject()["project"]
    assert "py.typed" in pyproject()["tool"]["setuptools"]["package-data"]["glassnet"]
    assert (PACKAGE / "py.typed").is_file()
    assert {"Homepage", "Documentation", "Issues", "Source"} <= set(project["urls"])
    assert "Typing :: Typed" in project["classifiers"]
    minor = {
        c.rsplit(" ", 1)[1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")
    }
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in minor, "the Python running the tests is not listed"


def _built(tmp_path: Path) -> tuple[Path, Path]:
    """The sdist and the wheel of the checkout (the wheel built from the sdist, as pip would)."""
    out = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return sdist, wheel


@pytest.mark.slow
def test_the_wheel_installs_in_a_clean_venv_and_runs_the_demo(tmp_path):
    sdist, wheel = _built(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    shipped = {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert {"glassnet/py.typed", "glassnet/models/imagenet_classes.json"} <= shipped
    assert not shipped - names, f"files of src/glassnet missing from the wheel: {sorted(shipped - names)}"
    assert not [name for name in names if name.startswith(("tests/", "docs/", "benchmarks/"))]
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "src/glassnet/py.typed"} <= members

    # a new venv that has only the wheel; its dependencies come from this environment's
    # site-packages through a .pth file (so torch is not installed again), which does not
    # put the checkout's src/ on the path: the editable install's own .pth is not read there
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "_glassnet_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(MPLBACKEND="Agg", TQDM_DISABLE="1")
    where = subprocess.run(
        [python, "-c", "import glassnet; print(glassnet.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(purelib), f"glassnet was imported from {where}, not from the wheel"
    out = tmp_path / "demo"
    done = subprocess.run(
        [venv / "bin" / "glassnet", "demo", "--no-audit", "--epochs", "2", "--quiet", "--out", str(out)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (out / "report.html").is_file()
