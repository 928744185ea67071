"""Audit stage ``explain``: why a model decided, whether the explanation can be trusted, and pictures of it.

``explain(model, inputs, method=...)`` returns attributions computed by Captum in memory-budgeted
chunks; ``explain_run(run_dir)`` explains a trained run's test examples, runs the trust checks
(deletion and insertion curves, infidelity, max-sensitivity, model randomisation, completeness)
and the global views, and writes ``results/explain.json`` and ``figures/explain_*.png``.
"""

from glassnet.explain.attribute import Attributions, explain, resolve_method
from glassnet.explain.methods import METHODS, MethodInfo, method_names
from glassnet.explain.run import explain_run

__all__ = ["METHODS", "Attributions", "MethodInfo", "explain", "explain_run", "method_names", "resolve_method"]
