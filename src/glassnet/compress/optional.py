"""Import the optional compression libraries (ONNX, ONNX Runtime, Torch-Pruning) with a clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

from glassnet.errors import ConfigError

_PACKAGES = {"onnx": "onnx", "onnxruntime": "onnxruntime", "onnxscript": "onnxscript", "torch_pruning": "torch-pruning"}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise ``ConfigError`` saying how to install it.

    Raises:
        ConfigError: the package is not installed (it comes with ``pip install 'glassnet[compress]'``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = _PACKAGES.get(module.split(".")[0], module)
        raise ConfigError(
            f"this compression method needs the '{package}' package, which is not installed: "
            f"run `pip install 'glassnet[compress]'` (or `pip install {package}`). ({exc})"
        ) from exc
