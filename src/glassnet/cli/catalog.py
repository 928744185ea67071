"""The built-in datasets and models as the command line lists them, read from glassnet's source without importing it.

The registries fill up as their modules are imported, and those modules import torch: seconds
before ``glassnet datasets`` could print a line. The decorators that register them
(``@register_dataset(...)``, ``@register_model(...)``) take literal arguments, so this module reads
those arguments from the source files with ``ast`` (as setuptools reads a version without
importing a package) and falls back to the registries themselves when a decorator holds anything
it cannot evaluate statically. ``tests/cli/test_cli_speed.py`` checks that both give the same list.
"""

from __future__ import annotations

import ast
import functools
import importlib.resources
import inspect
from dataclasses import dataclass
from typing import Any


class _NotStatic(Exception):
    """An expression whose value is only known by running the module."""


@dataclass(frozen=True)
class DatasetEntry:
    """One line of ``glassnet datasets``."""

    name: str
    task: str
    modality: str
    size: str
    source: str
    description: str


@dataclass(frozen=True)
class ModelEntry:
    """One line of ``glassnet models``."""

    name: str
    modalities: tuple[str, ...]
    tasks: tuple[str, ...]
    description: str


def datasets() -> list[DatasetEntry]:
    """The built-in datasets, sorted by name (as ``glassnet.data.list_datasets()``)."""
    found = _read("data", "register_dataset")
    try:
        if found is not None:
            keys = DatasetEntry.__dataclass_fields__
            return sorted((DatasetEntry(**{k: fields[k] for k in keys}) for fields, _ in found), key=lambda d: d.name)
    except KeyError:  # register_dataset's parameters changed: ask the registry
        pass
    from glassnet.data import list_datasets

    return [DatasetEntry(d.name, d.task, d.modality, d.size, d.source, d.description) for d in list_datasets()]


def models() -> list[ModelEntry]:
    """The registered models, sorted by name (as ``glassnet.models.list_models()`` and ``model_info``)."""
    found = _read("models", "register_model")
    if found is None:
        return _imported_models()
    entries = []
    for fields, doc in found:
        if not {"name", "modalities", "tasks", "description"} <= fields.keys():  # register_model changed
            return _imported_models()
        if not fields["description"] and doc is None:  # the builder's docstring is made at run time
            return _imported_models()
        # as register_model: the description, else the first line of the builder's docstring
        description = fields["description"] or (doc or "").split("\n")[0]
        entries.append(ModelEntry(fields["name"], tuple(fields["modalities"]), tuple(fields["tasks"]), description))
    return sorted(entries, key=lambda m: m.name)


def dataset_names() -> list[str]:
    """The built-in datasets' names, sorted."""
    return [d.name for d in datasets()]


def _imported_models() -> list[ModelEntry]:
    from glassnet.models import list_models, model_info

    infos = [model_info(name) for name in list_models()]
    return [ModelEntry(i.name, tuple(i.modalities), tuple(i.tasks), i.description) for i in infos]


def static_model_names() -> list[str] | None:
    """The model names when the source tells them all (no import), else None."""
    found = _read("models", "register_model")
    return None if found is None else sorted(fields["name"] for fields, _ in found)


@functools.cache
def _read(package: str, register: str) -> tuple[tuple[dict[str, Any], str | None], ...] | None:
    """Every registration in ``glassnet.<package>``'s modules: its arguments bound to the register
    function's signature (defaults applied), and the registered function's docstring.

    Two forms are read: a decorator ``@<register>(...)`` on a top-level function, and a top-level
    call of a helper function whose body calls ``<register>(...)`` once, with arguments made of the
    helper's parameters (the docstring is then unknown: None). Returns None when a registration
    cannot be read statically, or is made in any other way.
    """
    folder = importlib.resources.files("glassnet").joinpath(package)
    signature = _signature((folder / "registry.py").read_text(encoding="utf-8"), register)
    if signature is None:
        return None
    found: list[tuple[dict[str, Any], str | None]] = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".py") or path.name == "registry.py":
            continue
        source = path.read_text(encoding="utf-8")
        if f"{register}(" not in source:
            continue
        entries = _registrations(source, register, signature)
        if entries is None:
            return None
        found += entries
    return tuple(found)


def _registrations(
    source: str, register: str, signature: inspect.Signature
) -> list[tuple[dict[str, Any], str | None]] | None:
    """The registrations in one module's source (see ``_read``), or None."""
    tree = ast.parse(source)
    names = _constants(tree)
    helpers = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and _called(c.func) == register]
            if len(calls) == 1 and calls[0] not in node.decorator_list:
                helpers[node.name] = (node, calls[0])
    found, read = [], 0
    helper_calls = dict.fromkeys(helpers, 0)
    try:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call) and _called(decorator.func) == register:
                        found.append((_bind(signature, decorator, names), ast.get_docstring(node) or ""))
                        read += 1
            elif (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and _called(node.value.func) in helpers
            ):
                helper, call = helpers[_called(node.value.func)]
                helper_signature = _parameters(helper.args)
                if helper_signature is None:
                    return None
                parameters = _bind(helper_signature, node.value, names)
                found.append((_bind(signature, call, {**names, **parameters}), None))
                helper_calls[helper.name] += 1
        # every mention of the register call and of each helper's name must be one read here (a call in
        # a loop, an alias or a registration built at run time is only known by importing the module)
        mentions = source.count(f"{register}(")
        if mentions != read + len(helpers):
            return None
        for name, calls in helper_calls.items():
            if source.count(f"{name}(") != 1 + calls:  # its definition and the calls read above
                return None
    except (_NotStatic, TypeError):
        return None
    return found


def _bind(signature: inspect.Signature, call: ast.Call, names: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``call`` bound to ``signature``, defaults applied.

    Raises:
        _NotStatic: an argument is not a literal (or ``*args``/``**kwargs``).
        TypeError: the arguments do not fit the signature.
    """
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise _NotStatic
    args = [_value(a, names) for a in call.args]
    kwargs = {k.arg: _value(k.value, names) for k in call.keywords if k.arg is not None}
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _signature(source: str, function: str) -> inspect.Signature | None:
    """The signature of ``function`` as written in ``source`` (its defaults evaluated statically)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return _parameters(node.args)
    return None


def _parameters(arguments: ast.arguments) -> inspect.Signature | None:
    """A signature from a function definition's arguments, or None when a default is not a literal."""
    if arguments.vararg or arguments.kwarg:
        return None
    try:
        positional = [*arguments.posonlyargs, *arguments.args]
        defaults = [inspect.Parameter.empty] * (len(positional) - len(arguments.defaults))
        defaults += [_value(d, {}) for d in arguments.defaults]
        parameters = [
            inspect.Parameter(a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
            for a, d in zip(positional, defaults)
        ]
        for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults):
            default = inspect.Parameter.empty if d is None else _value(d, {})
            parameters.append(inspect.Parameter(a.arg, inspect.Parameter.KEYWORD_ONLY, default=default))
    except _NotStatic:
        return None
    return inspect.Signature(parameters)


def _called(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _constants(tree: ast.Module) -> dict[str, Any]:
    """The module's top-level ``NAME = <literal>`` assignments."""
    names: dict[str, Any] = {}
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = getattr(node, "value", None)
        if len(targets) != 1 or not isinstance(targets[0], ast.Name) or value is None:
            continue
        try:
            names[targets[0].id] = _value(value, names)
        except _NotStatic:
            names.pop(targets[0].id, None)  # rebound to something not static: no longer known
    return names


def _value(node: ast.expr, names: dict[str, Any]) -> Any:
    """The value of a literal expression: constants, names of module constants, tuples, lists,
    f-strings of those, and ``+`` between them."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise _NotStatic
    if isinstance(node, ast.Tuple):
        return tuple(_value(e, names) for e in node.elts)
    if isinstance(node, ast.List):
        return [_value(e, names) for e in node.elts]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                if part.conversion != -1 or part.format_spec is not None:
                    raise _NotStatic
                parts.append(str(_value(part.value, names)))
            else:
                parts.append(str(_value(part, names)))
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _value(node.left, names) + _value(node.right, names)
    raise _NotStatic
