"""Audit stage ``explain``: why a model decided, whether the explanation can be trusted, and pictures of it.

``explain(model, inputs, method=...)`` returns attributions computed by Captum in memory-budgeted
chunks; ``explain_run(run_dir)`` explains a trained run's test examples, runs the trust checks
(deletion and insertion curves, infidelity, max-sensitivity, model randomisation, completeness)
and the global views, and writes ``results/explain.json`` and ``figures/explain_*.png``.

The names below load on first use, so that ``glassnet.explain.names`` and ``glassnet.explain.methods``
(what the command line needs for its help) import without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glassnet.lazy import lazy_exports

if TYPE_CHECKING:
    from glassnet.explain.attribute import Attributions, explain, resolve_method
    from glassnet.explain.methods import METHODS, MethodInfo, method_names
    from glassnet.explain.run import explain_run

_HOMES = {
    "Attributions": "glassnet.explain.attribute",
    "explain": "glassnet.explain.attribute",
    "resolve_method": "glassnet.explain.attribute",
    "METHODS": "glassnet.explain.methods",
    "MethodInfo": "glassnet.explain.methods",
    "method_names": "glassnet.explain.methods",
    "explain_run": "glassnet.explain.run",
}

__all__ = ["METHODS", "Attributions", "MethodInfo", "explain", "explain_run", "method_names", "resolve_method"]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
