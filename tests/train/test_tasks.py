"""Tasks: class weights, label smoothing, the multi-label task and its metrics."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from glassnet.config import RunConfig
from glassnet.data import bundle_from_arrays
from glassnet.errors import ConfigError, DataError
from glassnet.models import create_model
from glassnet.train import Classification, MultiLabel, Trainer, get_task, make_task, seed_everything
from glassnet.train.tasks import class_weights_from


def test_class_weights_weigh_the_cross_entropy():
    torch.manual_seed(0)
    outputs, targets = torch.randn(8, 3), torch.tensor([0, 1, 2, 2, 1, 0, 2, 2])
    task = Classification(class_weights=[1.0, 2.0, 0.5])
    expected = F.cross_entropy(outputs, targets, weight=torch.tensor([1.0, 2.0, 0.5]))
    assert torch.allclose(task.loss(outputs, targets), expected)
    assert not torch.allclose(task.loss(outputs, targets), Classification().loss(outputs, targets))


def test_label_smoothing_matches_torch_and_penalises_certainty():
    outputs, targets = torch.tensor([[20.0, -20.0], [-20.0, 20.0]]), torch.tensor([0, 1])
    smoothed = Classification(label_smoothing=0.2)
    assert torch.allclose(smoothed.loss(outputs, targets), F.cross_entropy(outputs, targets, label_smoothing=0.2))
    assert Classification().loss(outputs, targets) < 1e-6 < smoothed.loss(outputs, targets)


def test_balanced_class_weights_follow_the_inverse_frequency_rule():
    targets = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2])  # 6, 2, 4 of 12
    weights = class_weights_from("balanced", "classify", targets, 3)
    assert torch.allclose(weights, torch.tensor([12 / (3 * 6), 12 / (3 * 2), 12 / (3 * 4)]))


def test_balanced_positive_weights_for_multilabel_are_negatives_over_positives():
    targets = torch.tensor([[1, 0], [1, 0], [1, 1], [0, 0]], dtype=torch.float32)
    weights = class_weights_from("balanced", "multilabel", targets)
    assert torch.allclose(weights, torch.tensor([1 / 3, 3 / 1]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"class_weights": [1.0, -1.0]}, "finite numbers >= 0"),
        ({"class_weights": [1.0, float("nan")]}, "finite numbers >= 0"),
        ({"class_weights": ["a"]}, "list of numbers"),
        ({"label_smoothing": 1.0}, r"\[0, 1\)"),
        ({"label_smoothing": -0.1}, r"\[0, 1\)"),
    ],
)
def test_bad_loss_options_are_config_errors_quoting_the_value(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Classification(**kwargs)


def test_weights_of_the_wrong_length_are_refused():
    with pytest.raises(ConfigError, match="2 values for 3 classes"):
        make_task("classify", [1.0, 2.0], num_outputs=3)
    with pytest.raises(ConfigError, match="2 values for 3 classes"):
        Classification(class_weights=[1.0, 2.0]).loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ConfigError, match="'balanced' or a list"):
        make_task("classify", "inverse")


def test_loss_options_are_refused_for_tasks_without_classes():
    with pytest.raises(ConfigError, match="classify and multilabel tasks only"):
        make_task("regress", "balanced")
    with pytest.raises(ConfigError, match="classify and multilabel tasks only"):
        make_task("forecast", label_smoothing=0.1)
    assert type(make_task("regress")) is type(get_task("regress"))


def test_config_validates_the_new_keys():
    config = RunConfig().with_overrides(["class_weights=balanced", "label_smoothing=0.1"])
    assert config.class_weights == "balanced" and config.label_smoothing == 0.1
    assert RunConfig().with_overrides(["class_weights=[1, 2.5]"]).class_weights == [1, 2.5]
    for bad in ("class_weights=uniform", "class_weights=[1,-2]", "class_weights=[]", "label_smoothing=1.5"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            RunConfig().with_overrides([bad])


def imbalanced_bundle(seed=0):
    """Two overlapping classes, 9 to 1: the minority is easy to ignore without weights."""
    rng = np.random.default_rng(seed)
    y = (np.arange(1000) % 10 == 0).astype(int)
    x = rng.normal(0, 1, size=(1000, 2)) + y[:, None] * 1.5
    return bundle_from_arrays(
        x.astype(np.float32), y, name="imbalanced", modality="tabular", task="classify", class_names=("common", "rare")
    )


def minority_recall(task):
    bundle = imbalanced_bundle()
    seed_everything(0)
    model = create_model("mlp", bundle.spec, width=16, dropout=0.0)
    trainer = Trainer(task=task, max_epochs=8, batch_size=64, seed=0)
    trainer.fit(model, bundle.train)
    predicted = trainer.predict(model, bundle.test).prediction
    truth = bundle.test.tensors[1]
    return ((predicted == 1) & (truth == 1)).sum().item() / (truth == 1).sum().item()


def test_balanced_weights_raise_the_recall_of_a_rare_class():
    bundle = imbalanced_bundle()
    weighted = make_task("classify", "balanced", train_targets=bundle.train.tensors[1], num_outputs=2)
    plain, balanced = minority_recall("classify"), minority_recall(weighted)
    assert balanced >= plain + 0.3, (plain, balanced)


# --- multi-label -------------------------------------------------------------------------------


def test_multilabel_loss_is_binary_cross_entropy_on_logits():
    torch.manual_seed(0)
    outputs, targets = torch.randn(6, 4), (torch.rand(6, 4) > 0.5).float()
    assert torch.allclose(MultiLabel().loss(outputs, targets), F.binary_cross_entropy_with_logits(outputs, targets))
    weighted = MultiLabel(pos_weights=[1.0, 2.0, 3.0, 4.0]).loss(outputs, targets)
    expected = F.binary_cross_entropy_with_logits(outputs, targets, pos_weight=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.allclose(weighted, expected)
    smoothed = MultiLabel(label_smoothing=0.2).loss(outputs, targets)
    assert torch.allclose(smoothed, F.binary_cross_entropy_with_logits(outputs, targets * 0.8 + 0.1))


def test_multilabel_metrics_match_a_hand_count_and_scikit_learn():
    # probabilities through the logit, so thresholding at 0.5 is easy to read
    probabilities = torch.tensor([[0.9, 0.2, 0.7], [0.6, 0.8, 0.1], [0.3, 0.4, 0.6], [0.2, 0.9, 0.8]])
    targets = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    outputs = torch.logit(probabilities)
    metrics = MultiLabel().metrics(outputs, targets)
    predicted = (probabilities >= 0.5).int().numpy()
    assert metrics["subset_accuracy"] == pytest.approx(2 / 4)  # rows 0 and 2 exactly right
    assert metrics["label_accuracy"] == pytest.approx(10 / 12)
    assert metrics["micro_f1"] == pytest.approx(f1_score(targets.numpy(), predicted, average="micro"))
    assert metrics["macro_f1"] == pytest.approx(f1_score(targets.numpy(), predicted, average="macro"))
    assert 0 < metrics["map"] <= 1 and 0 < metrics["auroc"] <= 1
    per_label = MultiLabel().per_label(outputs, targets)
    assert [row["support"] for row in per_label] == [2, 1, 2]
    assert per_label[1] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3, abs=1e-6), "support": 1}


def test_ranking_metrics_are_left_out_when_a_label_never_occurs():
    outputs, targets = torch.randn(5, 2), torch.tensor([[1, 0], [0, 0], [1, 0], [0, 0], [1, 0]])
    metrics = MultiLabel().metrics(outputs, targets)
    assert "map" not in metrics and "auroc" not in metrics and "macro_f1" in metrics


def test_multilabel_decode_uses_per_label_thresholds():
    outputs = torch.logit(torch.tensor([[0.6, 0.6, 0.2], [0.95, 0.3, 0.5]]))
    decoded = MultiLabel(threshold=[0.5, 0.7, 0.5]).decode(outputs)
    assert decoded["prediction"].tolist() == [[1, 0, 0], [1, 0, 1]]
    assert torch.allclose(decoded["confidence"], torch.tensor([[0.6, 0.4, 0.8], [0.95, 0.7, 0.5]]), atol=1e-6)
    assert decoded["probabilities"].shape == (2, 3)


def test_multilabel_refuses_bad_thresholds_and_misshapen_targets():
    with pytest.raises(ConfigError, match="threshold"):
        MultiLabel(threshold=1.0)
    with pytest.raises(ConfigError, match="2 values for 3 labels"):
        MultiLabel(threshold=[0.5, 0.5]).decode(torch.zeros(1, 3))
    with pytest.raises(DataError, match="shaped like the outputs"):
        MultiLabel().loss(torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]))


def test_multilabel_monitor_modes():
    task = get_task("multilabel")
    assert task.mode("val/loss") == "min" and task.mode("val/macro_f1") == "max" and task.mode("val/map") == "max"


def multilabel_bundle(n=600, seed=0):
    """Three labels, each the sign of one input column: any combination can occur."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, size=(n, 5)).astype(np.float32)
    y = (x[:, :3] > 0).astype(np.float32)
    from glassnet.data import bundle_from_splits

    cut = [int(n * 0.7), int(n * 0.85)]
    splits = [(x[a:b], y[a:b]) for a, b in ((0, cut[0]), (cut[0], cut[1]), (cut[1], n))]
    return bundle_from_splits(*splits, name="signs", modality="tabular", task="multilabel", class_names=("a", "b", "c"))


def test_classifiers_fit_multilabel_data_and_the_trainer_learns_it():
    bundle = multilabel_bundle()
    assert bundle.spec.num_outputs == 3
    seed_everything(0)
    model = create_model("mlp", bundle.spec, width=32)
    trainer = Trainer(task="multilabel", max_epochs=20, batch_size=32, lr=1e-2, seed=0)
    trainer.fit(model, bundle)
    metrics = trainer.evaluate(model, bundle.test)
    assert metrics["subset_accuracy"] >= 0.85 and metrics["macro_f1"] >= 0.93, metrics
    assert trainer.predict(model, bundle.test).prediction.shape == (len(bundle.test), 3)
