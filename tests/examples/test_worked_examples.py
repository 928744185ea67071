"""The two worked examples of docs/architecture.md: they learn, and a SIGKILLed run resumes bitwise.

(a) examples/gan_points.py: a step that owns two optimisers (a GAN on 2-D points), trained over a
dataset with epochs. (b) examples/corridor_policy_gradient.py: an environment as a batch source,
a policy-gradient step, a step budget.
"""

import importlib.util
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glassnet.train import Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOC = EXAMPLES.parent / "docs" / "architecture.md"


def example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WORKER = Path(__file__).with_name("example_worker.py")


def run(name, out, *args, killed=False):
    done = subprocess.run([sys.executable, str(WORKER), name, str(out), *args], capture_output=True, text=True)
    if killed:
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    else:
        assert done.returncode == 0, done.stderr[-2000:]


def assert_bitwise_equal(a, b):
    first, second = load_file(str(a)), load_file(str(b))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,budget,kill_at",
    [("gan_points", ["--epochs", "4"], 30), ("corridor_policy_gradient", ["--steps", "40"], 25)],
)
def test_a_sigkilled_run_resumes_bitwise_equal_to_an_uninterrupted_one(tmp_path, name, budget, kill_at):
    run(name, tmp_path / "whole", *budget)
    run(name, tmp_path / "cut", *budget, "--kill-at", str(kill_at), killed=True)
    assert not (tmp_path / "cut" / "model.safetensors").exists()  # it died mid-run; checkpoints every 10/20 steps
    run(name, tmp_path / "cut", *budget, "--resume")
    assert_bitwise_equal(tmp_path / "whole" / "model.safetensors", tmp_path / "cut" / "model.safetensors")


def test_the_two_optimiser_gan_learns_the_point_cloud(tmp_path):
    gan = example("gan_points")
    data = torch.Generator().manual_seed(0)
    gan.two_blobs(2048, data)
    held_out = gan.two_blobs(512, data)
    noise = torch.randn(512, 4, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(0)
    with torch.no_grad():
        before = gan.mmd(gan.PointsGAN()(noise), held_out)
    model = gan.train(tmp_path, epochs=10)
    with torch.no_grad():
        after = gan.mmd(model(noise), held_out)
        sample = model(noise)
    assert after < 0.15 * before, (before, after)
    assert 0.3 < (sample[:, 0] > 0).float().mean() < 0.7  # both blobs, not one (no mode collapse)
    record = torch.load(tmp_path / "last.pt", weights_only=True)
    assert sorted(record["optimizers"]) == ["discriminator", "generator"] and record["global_step"] == 160


def test_the_policy_gradient_agent_learns_the_corridor_under_a_step_budget(tmp_path):
    corridor = example("corridor_policy_gradient")
    torch.manual_seed(0)
    before = corridor.policy_return(Trainer(device="cpu"), corridor.policy())["return"]
    model = corridor.train(tmp_path, steps=30)
    after = corridor.policy_return(Trainer(device="cpu"), model)["return"]
    assert before < 0.3 and after >= 0.8, (before, after)
    record = torch.load(tmp_path / "last.pt", weights_only=True)
    assert record["global_step"] == 30 and record["source"]["env"] is not None
    assert [h["step"] for h in record["progress"]["history"]] == [20, 30]  # eval_every=20, then the rest


@pytest.mark.parametrize(
    "name,heading", [("gan_points", "### Worked example (a)"), ("corridor_policy_gradient", "### Worked example (b)")]
)
def test_the_architecture_page_quotes_the_examples_as_they_are(name, heading):
    section = DOC.read_text().split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    source = [line.strip() for line in (EXAMPLES / f"{name}.py").read_text().splitlines()]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    for block in blocks:
        lines = [line.strip() for line in block.strip("\n").splitlines()]
        found = any(source[i : i + len(lines)] == lines for i in range(len(source)))
        assert found, f"docs/architecture.md quotes code that examples/{name}.py does not have:\n{block}"
