"""Hyper-parameter search with Optuna, where every trial is an ordinary run (docs/tune.md).

>>> from glassnet.tune import tune
>>> summary = tune(data="breast-cancer", model="mlp", trials=20,  # doctest: +SKIP
...                space={"lr": "log(1e-4,1e-2)", "model.width": [64, 128, 256], "epochs": 5})
>>> summary["best"]["params"], summary["best"]["run_dir"]  # doctest: +SKIP
"""

from glassnet.tune.space import Dimension, SearchSpace, parse_space
from glassnet.tune.study import TrialReporter, tune

__all__ = ["Dimension", "SearchSpace", "TrialReporter", "parse_space", "tune"]
