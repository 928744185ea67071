"""``robustness``: curves, worst case, table ranges, text in embedding space, and the gradient-masking checks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import glassnet as gn
from glassnet.errors import ConfigError, DataError
from glassnet.robust import embedding_pgd, robustness
from glassnet.robust.embedding import perturbed

FAST = {"apgd_steps": 10, "square_queries": 50}


def test_result_has_the_stable_keys_and_is_json(image_model, quadrants):
    result = robustness(image_model, quadrants, eps=[0.1, 0.3], attack=["fgsm", "pgd", "deepfool"], **FAST)
    record = result.to_dict()
    json.dumps(record)
    for key in ("norm", "eps", "clean_accuracy", "robust_accuracy", "curves", "worst_case", "checks", "warnings"):
        assert key in record
    assert record["eps"] == [0.1, 0.3]
    assert set(record["curves"]) == {"fgsm", "pgd", "deepfool"}
    assert record["worst_case"]["attacks"] == ["apgd-ce", "apgd-dlr-t", "square"]
    assert list(record["robust_accuracy"]) == ["0.1", "0.3"]
    assert record["examples"] == len(quadrants.test)
    assert record["minimum_norms"]["deepfool"]["found"] > 0


def test_worst_case_is_no_better_than_any_of_its_components_or_curves(image_model, quadrants):
    result = robustness(image_model, quadrants, eps=[0.15, 0.3], attack=["pgd"], **FAST)
    worst = result.worst_case
    for i in range(2):
        assert worst["accuracy"][i] <= worst["after"]["apgd-ce"][i]
        assert worst["accuracy"][i] <= result.clean_accuracy
    assert worst["accuracy"][-1] < 0.5  # the quadrant model is not robust at eps 0.3
    assert result.clean_accuracy > 0.9


def test_an_undefended_model_passes_the_masking_checks(image_model, quadrants):
    result = robustness(image_model, quadrants, eps=[0.1, 0.3], attack=["fgsm", "pgd"], **FAST)
    assert {c["name"] for c in result.checks} == {
        "black_box_not_stronger",
        "accuracy_falls_with_eps",
        "unbounded_attack_succeeds",
        "iterative_beats_single_step",
    }
    assert all(c["passed"] for c in result.checks), result.checks
    assert result.warnings == []


class Quantised(nn.Module):
    """Gradient masking by construction: the input is rounded to 0/1, so every input gradient is zero."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(torch.round(x).detach() + 0 * x)


def test_a_gradient_masking_model_raises_warnings(image_model, quadrants):
    masked = Quantised(image_model)
    result = robustness(masked, quadrants, eps=[0.3, 0.6], attack=["pgd"], apgd_steps=10, square_queries=200)
    failed = {c["name"] for c in result.checks if not c["passed"]}
    assert "unbounded_attack_succeeds" in failed or "black_box_not_stronger" in failed
    assert result.warnings and all("gradient" in w for w in result.warnings)


def test_rising_accuracy_is_flagged(image_model, quadrants, monkeypatch):
    from glassnet.robust import evaluate

    original = evaluate._budget_curve

    def rising(*args, **kwargs):
        curve, adversarial = original(*args, **kwargs)
        return sorted(curve), adversarial  # ascending with eps: what a failing attack looks like

    monkeypatch.setattr(evaluate, "_budget_curve", rising)
    result = robustness(image_model, quadrants, eps=[0.1, 0.2, 0.4], attack=["pgd"], worst_case=False)
    check = next(c for c in result.checks if c["name"] == "accuracy_falls_with_eps")
    assert not check["passed"] and "pgd" in check["detail"]
    assert any("rises" in w for w in result.warnings)


def test_minimum_norm_curve_falls_with_eps(image_model, quadrants):
    result = robustness(image_model, quadrants, eps=[0.25, 0.5, 1.0, 3.0], norm="l2", attack=["cw"], worst_case=False)
    curve = result.curves["cw"]
    assert curve == sorted(curve, reverse=True)
    assert curve[-1] < 0.05


def test_tabular_attacks_stay_inside_each_features_training_range(tabular_model, blobs_bundle):
    result = robustness(tabular_model, blobs_bundle, eps=[0.05, 0.5], attack=["pgd"], **FAST)
    assert result.bounds == "per-feature range of the training data"
    assert result.curves["pgd"][-1] < result.clean_accuracy
    examples = result.adversarial_examples
    assert examples, "a 50% budget fools some blobs"
    train = blobs_bundle.train.tensors[0]
    test = blobs_bundle.test.tensors[0]
    low = torch.minimum(train.amin(0), test.amin(0))
    high = torch.maximum(train.amax(0), test.amax(0))
    adv = examples["adversarial"]
    assert (adv >= low - 1e-4).all() and (adv <= high + 1e-4).all()
    width = high - low
    assert ((adv - examples["originals"]).abs() <= 0.5 * width + 1e-3).all()


def test_inputs_as_a_pair_of_tensors_with_a_limit(image_model, quadrants):
    x, y = quadrants.test.tensors
    result = robustness(image_model, (x, y), eps=0.1, attack="fgsm", worst_case=False, limit=10)
    assert result.examples == 10 and result.eps == [0.1]


def test_text_models_are_attacked_in_embedding_space():
    torch.manual_seed(0)
    vocab = ["<pad>", "<unk>", *[f"w{i}" for i in range(30)]]
    spec = gn.DataSpec(
        modality="text",
        input_shape=(12,),
        task="classify",
        num_outputs=2,
        extra={"vocab": vocab, "tokenizer": "word", "lowercase": True, "pad_index": 0, "max_length": 12},
    )
    model = gn.create_model("gru", spec).eval()
    tokens = torch.randint(2, 32, (40, 12))
    tokens[:, 9:] = 0  # padding
    with torch.no_grad():
        y = model(tokens).argmax(1)  # the model is right by construction
    delta = embedding_pgd(model, tokens, y, eps=0.5, steps=5)
    assert (delta[:, 9:] == 0).all(), "padding is never perturbed"
    scale = model.embedding.weight[1:].norm(dim=1).mean()
    assert (delta.norm(dim=-1) <= 0.5 * scale * (1 + 1e-4)).all()
    with torch.no_grad(), perturbed(model, delta):
        fooled = (model(tokens).argmax(1) != y).float().mean()
    assert fooled > 0

    result = robustness(model, (tokens, y), spec=spec, eps=[0.5, 2.0], options={"pgd": {"steps": 5}})
    assert result.space == "embedding" and "embedding" in result.bounds
    assert result.clean_accuracy == 1.0 and list(result.curves) == ["embedding-pgd"]
    with pytest.raises(ConfigError, match="embedding space with pgd only"):
        robustness(model, (tokens, y), spec=spec, attack="square")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"eps": []}, ConfigError, "at least one budget"),
        ({"eps": [-0.1]}, ConfigError, "eps must be a finite number > 0"),
        ({"eps": [2.0]}, ConfigError, "linf eps must be <= 1"),
        ({"attack": "nope"}, Exception, "unknown attack 'nope'"),
        ({"attack": "cw"}, ConfigError, "supports norm l2"),
        ({"norm": "l1"}, ConfigError, "norm must be one of"),
        ({"options": {"cw": {"steps": 3}}}, ConfigError, "options given for attack 'cw'"),
        ({"limit": 0}, ConfigError, "limit must be an integer >= 1"),
    ],
)
def test_bad_arguments_get_clear_errors(image_model, quadrants, kwargs, error, message):
    with pytest.raises(error, match=message):
        robustness(image_model, quadrants, worst_case=False, **kwargs)


def test_regression_models_and_empty_data_are_refused(image_model, quadrants, regression_bundle):
    model = gn.create_model("mlp", regression_bundle.spec)
    with pytest.raises(DataError, match="robustness evaluates classifiers"):
        robustness(model, regression_bundle)
    x, y = quadrants.test.tensors
    with pytest.raises(DataError, match="no examples"):
        robustness(image_model, (x[:0], y[:0]))


def test_the_model_comes_back_in_its_mode_with_its_gradients(image_model, quadrants):
    image_model.train()
    try:
        robustness(image_model, quadrants, eps=0.1, attack="fgsm", worst_case=False, checks=False)
        assert image_model.training
        assert all(p.requires_grad for p in image_model.parameters())
        # the channels-last layout used during the attacks is undone
        assert all(p.is_contiguous() for p in image_model.parameters())
    finally:
        image_model.eval()
