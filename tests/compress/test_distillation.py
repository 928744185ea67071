"""Distillation: the soft-target loss and a student trained through the Trainer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from glassnet.compress import DistillationStep, distill
from glassnet.errors import ConfigError, UnknownNameError
from glassnet.models import count_parameters, create_model
from glassnet.train import Trainer
from glassnet.train.tasks import get_task


def test_alpha_zero_is_the_plain_task_loss(digits_cnn, digits):
    x, y = digits.train.tensors[0][:32], digits.train.tensors[1][:32]
    student = create_model("mlp", digits.spec, width=16).eval()  # eval: dropout would differ between calls
    step = DistillationStep(digits_cnn, alpha=0.0)
    task = get_task("classify")
    assert torch.allclose(step.training_step(student, (x, y), task), task.loss(student(x), y))


def test_soft_loss_is_zero_for_a_student_that_copies_the_teacher(digits_cnn, digits):
    x, y = digits.train.tensors[0][:32], digits.train.tensors[1][:32]
    step = DistillationStep(digits_cnn, temperature=3.0, alpha=1.0)
    assert float(step.training_step(digits_cnn, (x, y), get_task("classify")).detach()) == pytest.approx(0.0, abs=1e-6)


def test_soft_loss_matches_hinton_formula(digits_cnn, digits):
    x, y = digits.train.tensors[0][:16], digits.train.tensors[1][:16]
    student = create_model("mlp", digits.spec, width=16).eval()
    t = 2.0
    loss = DistillationStep(digits_cnn, temperature=t, alpha=1.0).training_step(student, (x, y), get_task("classify"))
    p_teacher = F.softmax(digits_cnn(x) / t, dim=1)
    log_student = F.log_softmax(student(x) / t, dim=1)
    expected = (p_teacher * (p_teacher.log() - log_student)).sum(1).mean() * t * t
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-4)


def test_the_teacher_is_not_trained(digits_cnn, digits):
    before = {k: v.clone() for k, v in digits_cnn.state_dict().items()}
    student = create_model("mlp", digits.spec, width=16)
    trainer = Trainer(task="classify", max_epochs=1, device="cpu", step=DistillationStep(digits_cnn))
    trainer.fit(student, digits)
    assert all(torch.equal(before[k], v) for k, v in digits_cnn.state_dict().items())
    assert all(p.requires_grad for p in digits_cnn.parameters())  # left as it was given


@pytest.mark.parametrize(("kwargs", "match"), [({"temperature": 0}, "temperature"), ({"alpha": 1.5}, "alpha")])
def test_bad_settings_are_config_errors(digits_cnn, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DistillationStep(digits_cnn, **kwargs)


def test_unknown_student_name_suggests_one(digits_cnn, digits):
    with pytest.raises(UnknownNameError, match="Did you mean 'mlp'"):
        distill(digits_cnn, digits, "mpl", epochs=1)


def test_regression_distils_to_the_teacher_outputs(regression_bundle):
    teacher = create_model("mlp", regression_bundle.spec, width=32)
    Trainer(task="regress", max_epochs=20, device="cpu").fit(teacher, regression_bundle)
    student = distill(teacher.eval(), regression_bundle, "mlp", {"width": 8, "depth": 1}, epochs=100, device="cpu")
    x = regression_bundle.test.tensors[0]
    with torch.no_grad():
        spread = float(teacher(x).std())
        assert float((student(x) - teacher(x)).abs().mean()) < 0.2 * spread


@pytest.mark.slow
def test_student_with_4x_fewer_parameters_stays_within_3_points_of_its_teacher(digits):
    teacher = create_model("cnn", digits.spec, channels=[16, 32], hidden=64)
    Trainer(task="classify", max_epochs=15, device="cpu", seed=0).fit(teacher, digits)
    teacher.eval()
    student = distill(teacher, digits, "cnn", {"channels": [8, 16], "hidden": 16}, epochs=25, device="cpu")
    assert count_parameters(student) * 4 <= count_parameters(teacher)
    x, y = digits.test.tensors
    accuracy = lambda m: float((m(x).argmax(1) == y).float().mean())  # noqa: E731
    assert accuracy(teacher) > 0.95
    assert accuracy(student) >= accuracy(teacher) - 0.03
