"""The RL Zoo settings shipped in examples/rl/*.yaml load, name a registered algorithm and model, and build."""

from pathlib import Path

import pytest

from glassnet.config import load_config
from glassnet.data.environments import FAMILIES, family_of, installed, load_environment
from glassnet.models import create_model
from glassnet.train.steps import step_from_options

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "examples" / "rl").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds_its_step_and_model(path):
    config = load_config(str(path), [])
    assert config.env and config.env_steps > 0 and config.step.get("name") in ("ppo", "dqn", "sac")
    family = family_of(config.env)
    if family in FAMILIES and not installed(family):
        pytest.skip(f"{config.env} needs {FAMILIES[family][1]}")
    spec = load_environment(config.env, **config.env_args).spec
    step = step_from_options(config.step, spec, None, "ppo")
    assert config.model == step.model  # the file names the model its algorithm trains
    step.check(create_model(config.model, spec, **config.model_args))
