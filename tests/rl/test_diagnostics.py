"""Plain-word checks of an agent's training history, on synthetic histories."""

import math

import pytest

from glassnet.data.environments import load_environment
from glassnet.rl.diagnostics import diagnose


@pytest.fixture(scope="module")
def discrete():
    return load_environment("CartPole-v1").spec


@pytest.fixture(scope="module")
def continuous():
    return load_environment("Pendulum-v1").spec


def periods(**series):
    """A history of per-period records from ``key=[values]`` (keys without the ``train/`` prefix, or
    ``val_...`` for ``val/...``)."""
    length = max(len(v) for v in series.values())
    history = []
    for i in range(length):
        record = {"epoch": i + 1, "step": 10 * (i + 1)}
        for key, values in series.items():
            name = key.replace("val_", "val/", 1) if key.startswith("val_") else f"train/{key}"
            if i < len(values):
                record[name] = values[i]
        history.append(record)
    return history


def healthy_ppo():
    return periods(
        entropy=[0.69, 0.6, 0.5, 0.45],
        kl=[0.01, 0.02, 0.015, 0.01],
        explained_variance=[0.1, 0.4, 0.6, 0.8],
        value_mean=[1.0, 5.0, 20.0, 40.0],
        reward_max=[1.0, 1.0, 1.0, 1.0],
        episode_return=[20.0, 60.0, 150.0, 300.0],
        val_return_max=[30.0, 80.0, 200.0, 500.0],
    )


def healthy_dqn():
    return periods(
        q=[0.5, 5.0, 20.0, 50.0],
        td_error=[0.5, 0.4, 0.6, 0.7],
        reward_max=[1.0, 1.0, 1.0, 1.0],
        episode_return=[20.0, 40.0, 100.0, 200.0],
    )


def test_healthy_histories_pass_every_check(discrete, continuous):
    for history, gamma, checks in (
        (healthy_ppo(), 0.99, {"entropy", "values", "kl", "explained_variance"}),
        (healthy_dqn(), 0.99, {"values", "td_error"}),
    ):
        result = diagnose(history, discrete, gamma)
        assert result["warnings"] == [], result
        assert set(result["checks"]) == checks
        assert all(c["passed"] for c in result["checks"].values())
    sac = periods(
        entropy=[0.9, 0.5, 0.0, -0.9],
        q=[-50.0, -300.0, -200.0],
        td_error=[5.0, 3.0, 2.0, 1.0],
        reward_max=[16.2, 16.3, 16.3, 16.3],
        episode_return=[-1400.0, -1200.0, -600.0, -200.0],
    )
    result = diagnose(sac, continuous, 0.99)
    assert result["warnings"] == [] and all(c["passed"] for c in result["checks"].values())
    assert result["checks"]["entropy"]["value"] == pytest.approx(math.exp(1.8))  # the spread shrank e^1.8-fold


def test_the_last_period_is_reported_as_the_final_diagnostics(discrete):
    result = diagnose(healthy_ppo(), discrete, 0.99)
    assert result["final"] == {"entropy": 0.45, "kl": 0.01, "explained_variance": 0.8, "value_mean": 40.0}
    assert diagnose([], discrete, 0.99) == {"warnings": [], "checks": {}, "final": {}}


def test_a_discrete_policy_whose_entropy_collapsed_is_flagged(discrete):
    history = periods(entropy=[0.69, 0.3, 0.02])  # 0.02 / ln 2 = 2.9% of the uniform policy's
    result = diagnose(history, discrete, 0.99)
    check = result["checks"]["entropy"]
    assert not check["passed"] and check["value"] == pytest.approx(0.02 / math.log(2)) and check["threshold"] == 0.05
    assert len(result["warnings"]) == 1 and result["warnings"][0].startswith("entropy collapse")
    assert "step.entropy" in result["warnings"][0]
    assert diagnose(periods(entropy=[0.69, 0.04]), discrete, 0.99)["warnings"] == []  # 5.8%: still exploring


def test_a_continuous_policy_whose_spread_shrank_a_hundredfold_is_flagged(continuous):
    history = periods(entropy=[1.0, 0.0, 1.0 - math.log(200)])  # one action dimension: std 200 times smaller
    result = diagnose(history, continuous, 0.99)
    assert not result["checks"]["entropy"]["passed"]
    assert result["checks"]["entropy"]["value"] == pytest.approx(200)
    assert "entropy collapse" in result["warnings"][0] and "200-fold" in result["warnings"][0]


def test_exploding_and_non_finite_value_estimates_are_flagged(discrete):
    # rewards of at most 1 with gamma 0.99 bound the values by 100; the returns seen reach 200
    history = periods(q=[1.0, 50.0, 1e6], reward_max=[1.0, 1.0, 1.0], episode_return=[20.0, 100.0, 200.0])
    result = diagnose(history, discrete, 0.99)
    check = result["checks"]["values"]
    assert not check["passed"] and check["value"] == 1e6 and check["threshold"] == pytest.approx(2000)
    assert result["warnings"][0].startswith("exploding values")
    infinite = diagnose(periods(value_mean=[1.0, float("inf")]), discrete, 0.99)
    assert not infinite["checks"]["values"]["passed"] and infinite["warnings"]
    nan = diagnose(periods(value_mean=[1.0, float("nan")]), discrete, 0.99)
    assert not nan["checks"]["values"]["passed"], "a NaN value estimate must not pass the check"
    within = periods(q=[1.0, 1500.0], reward_max=[1.0, 1.0], episode_return=[20.0, 200.0])
    assert diagnose(within, discrete, 0.99)["checks"]["values"]["passed"]


def test_growing_td_errors_are_flagged(discrete):
    result = diagnose(periods(td_error=[1.0, 0.5, 0.8, 6.0]), discrete, 0.99)
    check = result["checks"]["td_error"]
    assert not check["passed"] and check["value"] == pytest.approx(12.0) and check["threshold"] == 10.0
    assert result["warnings"][0].startswith("growing TD errors")
    assert "td_error" not in diagnose(periods(td_error=[1.0, 50.0]), discrete, 0.99)["checks"]  # too short to judge


def test_large_policy_updates_are_flagged(discrete):
    result = diagnose(periods(kl=[0.05, 0.2, 0.3]), discrete, 0.99)
    check = result["checks"]["kl"]
    assert not check["passed"] and check["value"] == pytest.approx(0.55 / 3)
    assert result["warnings"][0].startswith("large policy updates") and "step.target_kl" in result["warnings"][0]


def test_a_value_function_that_explains_nothing_is_flagged(discrete):
    for last in (0.0, -0.4):
        result = diagnose(periods(explained_variance=[0.3, 0.5, last]), discrete, 0.99)
        assert not result["checks"]["explained_variance"]["passed"]
        assert "explains none of the returns' variance" in result["warnings"][0]


def test_several_problems_give_one_warning_each(discrete):
    history = periods(
        entropy=[0.69, 0.01, 0.01],
        kl=[0.5, 0.5, 0.5],
        explained_variance=[0.2, -0.1, -0.5],
        value_mean=[1.0, 1e5, 1e9],
        reward_max=[1.0, 1.0, 1.0],
    )
    result = diagnose(history, discrete, 0.99)
    assert [w.split(":")[0] for w in result["warnings"][:3]] == [
        "entropy collapse",
        "exploding values",
        "large policy updates",
    ]
    assert len(result["warnings"]) == 4
    assert not any(c["passed"] for c in result["checks"].values())
