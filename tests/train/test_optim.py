import pytest
import torch

from glassnet.errors import UnknownNameError
from glassnet.train.optim import adam, build_optimizer, build_scheduler


def lrs(schedule, total, steps=None):
    model = torch.nn.Linear(2, 1)
    optimizer = build_optimizer(model, "adamw", lr=1.0, weight_decay=0.1)
    scheduler = build_scheduler(optimizer, schedule, total)
    values = []
    for _ in range(steps or total):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


@pytest.mark.parametrize("total", [1, 2, 3, 10, 1000])
def test_onecycle_works_for_any_number_of_steps(total):
    # torch's OneCycleLR raised ZeroDivisionError for runs shorter than ten steps
    values = lrs("onecycle", total, steps=total + 3)
    assert values[0] == pytest.approx(1 / 25)
    assert max(values) <= 1.0 and min(values) > 0


def test_onecycle_peaks_after_warmup_then_decays_to_almost_zero():
    values = lrs("onecycle", 100)
    assert values.index(max(values)) == 10 and max(values) == pytest.approx(1.0)
    assert values[-1] < 1e-3


def test_cosine_and_none():
    assert lrs("cosine", 10)[0] == 1.0 and lrs("cosine", 10)[-1] < 0.03
    assert set(lrs("none", 5)) == {1.0}


def test_weight_decay_skips_biases():
    optimizer = build_optimizer(torch.nn.Linear(3, 2), "sgd", lr=0.1, weight_decay=0.5)
    decays = {p.ndim: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decays == {2: 0.5, 1: 0.0}


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'adamw'"):
        build_optimizer(torch.nn.Linear(2, 1), "adam", 1e-3, 0)
    optimizer = build_optimizer(torch.nn.Linear(2, 1), "sgd", 1e-3, 0)
    with pytest.raises(UnknownNameError, match="schedule"):
        build_scheduler(optimizer, "step", 10)


def test_adam_is_fused_where_the_parameters_allow_and_updates_as_the_loop_does():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    assert build_optimizer(model, "adamw", 1e-3, 0.01).defaults["fused"] is True
    twin = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    twin.load_state_dict(model.state_dict())
    fused = adam(model.parameters(), lr=1e-2, betas=(0.5, 0.9))
    loop = torch.optim.Adam(twin.parameters(), lr=1e-2, betas=(0.5, 0.9))
    assert fused.defaults["fused"] is True and type(adam([torch.zeros(1)], 1e-3, decoupled=True)).__name__ == "AdamW"
    for _ in range(5):
        x = torch.randn(16, 4)
        for net, optimizer in ((model, fused), (twin, loop)):
            optimizer.zero_grad()
            net(x).pow(2).mean().backward()
            optimizer.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    integer = torch.zeros(3, dtype=torch.int64)  # not a float: the loop, not the fused kernel
    assert (
        adam([{"params": [torch.zeros(2, requires_grad=True)]}, {"params": [integer]}], 1e-3).defaults["fused"] is None
    )
