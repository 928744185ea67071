"""The layers of DESIGN.md hold: every module imports only from its own layer or below, and no import cycles.

Imports are read from the source (``ast``), module-level and inside functions alike; imports under
``if TYPE_CHECKING:`` are for type hints only and do not count. ``from glassnet.a import b``
depends on the module ``glassnet.a.b`` when there is one, else on the package ``glassnet.a``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "glassnet"

# lowest first; a module may import from its own layer and the layers below
LAYERS = [
    (
        "base",
        [
            "glassnet.errors",
            "glassnet.version",
            "glassnet.config",
            "glassnet.runs",
            "glassnet.figures",
            "glassnet.stages",
            "glassnet.progress",
            "glassnet.provenance",
            "glassnet.notebook",
            "glassnet.lazy",
            "glassnet.threads",
        ],
    ),
    ("data", ["glassnet.data"]),
    ("models", ["glassnet.models"]),
    ("learning", ["glassnet.train", "glassnet.rl", "glassnet.generate"]),
    ("audit", ["glassnet.explain", "glassnet.robustness", "glassnet.compress"]),
    ("presentation", ["glassnet.report", "glassnet.serve"]),
    ("workflow", ["glassnet.pipeline", "glassnet.stages.*", "glassnet.tune"]),
    ("interface", ["glassnet.cli"]),
    ("api", ["glassnet"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in SOURCE.rglob("*.py")}


def layer(module: str) -> int:
    """Index of the most specific layer prefix that covers ``module``."""
    best, length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix.endswith(".*"):
                covers = module.startswith(prefix[:-1]) and module != prefix[:-2]
            else:
                covers = module == prefix or module.startswith(prefix + ".")
            if covers and len(prefix) > length:
                best, length = index, len(prefix)
    assert best is not None, f"{module} is in no layer"
    return best


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str) -> set[str]:
    """The glassnet modules ``module`` imports (type-checking imports excluded)."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("glassnet"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("glassnet"):
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    found.add(child if child in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return {name for name in found if name in MODULES}


GRAPH = {module: imports(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_from_its_layer_or_below(module):
    above = {dep for dep in GRAPH[module] if layer(dep) > layer(module)}
    names = [LAYERS[layer(dep)][0] for dep in sorted(above)]
    assert not above, f"{module} ({LAYERS[layer(module)][0]}) imports from higher layers: {sorted(above)} ({names})"


def test_no_import_cycles():
    """Between modules, counting only imports that are not of a module's own package ``__init__``."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def edges(module: str) -> set[str]:
        # a package's __init__ importing its own submodules, and those importing siblings, is not a cycle
        return {dep for dep in GRAPH[module] if not module.startswith(dep + ".")}

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(edges(module)):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                walk(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            walk(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_imports_and_ignores_type_checking_ones():
    assert "glassnet.train.trainer" in GRAPH["glassnet.train.run"]
    assert "glassnet.train.trainer" not in GRAPH["glassnet.train.steps.base"]  # under TYPE_CHECKING
    assert layer("glassnet.stages") < layer("glassnet.stages.explain") == layer("glassnet.pipeline.demo")
