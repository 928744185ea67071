"""How an attack's result is written into a run: ``results/robustness.json`` and its figures.

The stage (``glassnet robustness``) and ``RobustnessResult.save`` (a result computed in Python) both
write through ``write_record``, so a saved result is exactly what the stage would have written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glassnet.config import RunConfig
from glassnet.robustness import figures

if TYPE_CHECKING:
    from glassnet.robustness.evaluate import RobustnessResult
    from glassnet.train.run import Run


def write_record(run: Run, result: RobustnessResult, data: str, split: str) -> dict[str, Any]:
    """Write ``result`` into ``run``: ``results/robustness.json`` (with the data's name, the split and
    the run's adversarial-training settings) and its figures; returns the record. The stage and
    ``RobustnessResult.save`` both write through here."""
    spec, config = run.spec, run.config
    record = {"data": data, "split": split, **result.to_dict()}
    record["adversarial_training"] = _training_settings(config, spec)
    figures.accuracy_curves(record, run.figure("robustness_curves"))
    examples = result.adversarial_examples
    path = run.figure("adversarial_examples")
    if examples.get("records"):
        originals, adversarial = examples["originals"].numpy(), examples["adversarial"].numpy()
        figures.adversarial_examples(originals, adversarial, examples["records"], list(spec.class_names), path)
        if originals.ndim == 2:  # table rows: the report lists the changed features in their own units
            changes = figures.feature_changes(originals, adversarial, spec.feature_names, spec.input_std)
            for entry, change in zip(record["adversarial_examples"], changes, strict=True):
                entry.update(change)
    else:
        path.unlink(missing_ok=True)  # a figure from an earlier attack would no longer match the results
    run.write_result("robustness", record)
    return record


def _training_settings(config: RunConfig | None, spec: Any) -> dict[str, Any] | None:
    """The run's adversarial-training settings with their defaults filled in (None: trained normally)."""
    if config is None or config.step.get("name") != "adversarial":
        return None
    from glassnet.train.steps.adversarial import adversarial_step

    options = {k: v for k, v in config.step.items() if k != "name"}
    return adversarial_step(options, spec).describe()
