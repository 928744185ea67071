"""Audits of segmentation and detection runs: attacks (the score against eps) and explanations."""

import json

import pytest
import torch

import glassnet as gn
from glassnet.cli import main
from glassnet.data import DataSpec
from glassnet.models import create_model
from glassnet.robustness.dense import perturb
from glassnet.train.tasks import get_task

SPEC = DataSpec(modality="image", input_shape=(1, 16, 16), task="segment", num_outputs=3, name="s")


@pytest.mark.parametrize("method", ["random", "fgsm", "pgd"])
def test_perturbations_stay_within_eps_and_the_pixel_range(method):
    torch.manual_seed(0)
    model, task = create_model("unet", SPEC, channels=[4, 8]).eval(), get_task("segment")
    images, targets = torch.rand(4, 1, 16, 16), torch.randint(0, 3, (4, 16, 16))
    attacked = perturb(model, task, images, targets, method, 4 / 255, 5, torch.Generator().manual_seed(0))
    assert (attacked - images).abs().max() <= 4 / 255 + 1e-6 and attacked.min() >= 0 and attacked.max() <= 1
    if method == "pgd":  # the attack ascends the loss, far beyond noise of the same size
        noise = perturb(model, task, images, targets, "random", 4 / 255, 5, torch.Generator().manual_seed(0))
        with torch.no_grad():
            losses = [float(task.loss(model(x), targets)) for x in (images, noise, attacked)]
        assert losses[2] > losses[1] and losses[2] > losses[0]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    runs = {}
    for data, model in (("digits-scenes", "unet"), ("digits-detection", "centernet")):
        out = tmp_path_factory.mktemp("dense") / model
        small = ["data.train_scenes=80", "data.val_scenes=10", "data.test_scenes=20", "model.channels=[8,16]"]
        args = ["train", "--data", data, "--model", model, "--epochs", "2", "--out", str(out), "--quiet"]
        assert main([*args, *small]) == 0
        runs[model] = out
    return runs


@pytest.mark.parametrize("model,metric", [("unet", "miou"), ("centernet", "map_50")])
def test_attack_writes_the_score_against_eps_and_the_report_shows_it(tiny_runs, model, metric, capsys):
    run = tiny_runs[model]
    assert main(["attack", str(run), "--eps", "0.01", "0.03", "--limit", "10"]) == 0
    assert f"clean {metric}" in capsys.readouterr().out
    result = json.loads((run / "results" / "robustness.json").read_text())
    assert result["kind"] == "dense" and result["metric"] == metric and result["examples"] == 10
    assert set(result["curves"]) == {"random", "fgsm", "pgd"}
    assert [p["eps"] for p in result["curves"]["pgd"]] == [0.01, 0.03]
    assert (run / "figures" / "robustness_curves.png").is_file()
    html = gn.report(run).read_text()
    assert "<h2>Robustness</h2>" in html and "ascend the task" in html


def test_attacks_that_do_not_apply_to_dense_models_are_refused(tiny_runs, capsys):
    assert main(["attack", str(tiny_runs["unet"]), "--attack", "square"]) == 2
    assert "random, fgsm, pgd" in capsys.readouterr().err
    assert main(["attack", str(tiny_runs["unet"]), "--norm", "l2"]) == 2


@pytest.mark.parametrize("model", ["unet", "centernet"])
def test_explain_reads_a_dense_model_as_the_classes_an_image_holds(tiny_runs, model):
    run = tiny_runs[model]
    assert main(["explain", str(run), "--n", "6", "--steps", "8", "--quiet"]) == 0
    result = json.loads((run / "results" / "explain.json").read_text())
    assert result["task"] == {"unet": "segment", "centernet": "detect"}[model]
    assert ("pixel share" if model == "unet" else "heatmap logit") in result["target"]
    assert result["examples"] == 6 and "faithfulness" in result["trust"]
    assert "<h2>Explanations</h2>" in gn.report(run).read_text()


def test_class_evidence_leaves_the_background_out_and_follows_the_mask():
    from glassnet.explain.dense import dense_view

    spec = DataSpec(
        modality="image", input_shape=(1, 4, 4), task="segment", num_outputs=3, class_names=("background", "a", "b")
    )
    targets = torch.zeros(3, 4, 4, dtype=torch.long)
    targets[0, :2] = 2  # mostly b
    targets[1, 0, 0] = 1  # one pixel of a
    view = dense_view(torch.nn.Conv2d(1, 3, 1), spec, torch.rand(3, 1, 4, 4), targets)  # image 2: no object
    assert view["spec"].class_names == ("a", "b") and view["spec"].task == "classify"
    assert view["labels"].tolist() == [1, 0] and len(view["inputs"]) == 2
    assert view["model"](torch.rand(2, 1, 4, 4)).shape == (2, 2)


@pytest.mark.parametrize("model", ["unet", "centernet"])
def test_the_server_explains_the_class_a_dense_model_finds_most(tiny_runs, model):
    import base64

    from fastapi.testclient import TestClient

    from glassnet.serve.app import create_app
    from glassnet.train.run import Run

    run = Run.open(tiny_runs[model])
    image = run.split("test")[0][0]
    with TestClient(create_app(run.path)) as client:
        answer = client.post("/explain", json={"inputs": [image.tolist()]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
    names = [n for n in run.spec.class_names if n.lower() != "background"]
    assert body["explained_class"] in names and "explained_score" in body
    assert torch.tensor(body["attributions"]).shape == image.shape
    assert base64.b64decode(body["overlay_png"]).startswith(b"\x89PNG")


def test_each_dense_task_names_the_main_class_of_its_targets():
    from glassnet.train.tasks import get_task

    spec = DataSpec(modality="image", input_shape=(1, 8, 8), task="detect", num_outputs=2, class_names=("a", "b"))
    boxes = torch.tensor(
        [[[0, 0.0, 0.0, 0.2, 0.2], [1, 0.1, 0.1, 0.9, 0.9]], [[-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]]], dtype=torch.float
    )
    detect = get_task("detect")
    assert detect.main_class(boxes, spec).tolist() == [1, -1]  # the largest box; no box
    assert detect.main_class(boxes[:, :0], spec).tolist() == [-1, -1]
    assert detect.background_classes(spec) == 0
    assert detect.class_evidence(torch.zeros(3, 6, 4, 4)).shape == (3, 2)

    named = DataSpec(
        modality="image", input_shape=(1, 4, 4), task="instances", num_outputs=3, class_names=("background", "a", "b")
    )
    maps = torch.zeros(2, 2, 4, 4, dtype=torch.long)
    maps[0, 0, :1] = 1
    maps[0, 0, 1:3] = 2  # the semantic channel: more of b than of a
    maps[0, 1] = 5  # the instance channel is not a class map
    instances = get_task("instances")
    assert instances.main_class(maps, named).tolist() == [2, -1]
    assert instances.background_classes(named) == 1
    assert instances.class_evidence(torch.zeros(2, 6, 4, 4)).shape == (2, 3)  # 3 class logits of 6 channels
    with pytest.raises(NotImplementedError, match="classify"):
        get_task("classify").class_evidence(torch.zeros(2, 3))
