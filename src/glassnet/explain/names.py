"""The explain stage's defaults and the tasks it covers: plain constants the command line reads to build its
parser without importing torch or Captum."""

from __future__ import annotations

DEFAULT_MEMORY_MB = 512.0  # memory budget of one forward and backward pass
DEFAULT_EXAMPLES = 64  # test examples a run's explanation covers
TASKS = ("classify", "regress", "forecast")
# masks and boxes: explained as classifiers of the classes an image holds (glassnet.explain.dense), attacked
# on their own score (glassnet.robustness.dense)
DENSE_TASKS = ("segment", "detect", "instances")
