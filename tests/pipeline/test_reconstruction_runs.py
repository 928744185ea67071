"""`glassnet train` for autoencoders: reconstruction results, anomaly detection, VAE figures, report, CLI."""

import csv
import json

import numpy as np
import pytest
import torch

import glassnet as gn
import glassnet.models.autoencoder  # noqa: F401  (registers the autoencoders until glassnet.models imports it)
from glassnet.cli.main import main
from glassnet.config import RunConfig
from glassnet.errors import ConfigError
from glassnet.figures import reconstruction as reconstruction_figures
from glassnet.train.reconstruction import evaluate_reconstruction, reconstruction_bundle


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train far faster on one thread; two threads on a busy 2-core machine thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def read_result(run_dir, stage="train"):
    return json.loads((run_dir / "results" / f"{stage}.json").read_text())


@pytest.fixture(scope="module")
def blobs_csv(tmp_path_factory):
    """Three well-separated clusters (classes a, b, c) of 6 features in units far from standardised."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(3, 6))
    labels = np.arange(300) % 3
    x = 50 + 10 * (centres[labels] + rng.normal(0, 0.4, size=(300, 6)))
    path = tmp_path_factory.mktemp("data") / "blobs.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"f{i}" for i in range(6)] + ["label"])
        writer.writerows([*map(lambda v: round(v, 4), row), "abc"[k]] for row, k in zip(x, labels))
    return path


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    config = RunConfig(data="digits", model="conv_autoencoder", epochs=2, model_args={"channels": [8, 16]})
    return gn.train(config, out=tmp_path_factory.mktemp("runs") / "digits").path


@pytest.fixture(scope="module")
def anomaly_run(tmp_path_factory, blobs_csv):
    config = RunConfig(data=str(blobs_csv), model="autoencoder", epochs=15, lr=0.01, normal_classes=["a"])
    return gn.train(config, out=tmp_path_factory.mktemp("runs") / "blobs").path


def test_conv_autoencoder_run_writes_reconstruction_results_and_report(digits_run):
    result = read_result(digits_run)
    assert result["task"] == "reconstruct" and result["data"]["task"] == "reconstruct"
    assert set(result["test"]) == {"loss", "mae"} and 0 < result["test"]["loss"] < 1
    assert "test_labels" not in result["data"] and "anomaly" not in result
    figures = {p.name for p in (digits_run / "figures").iterdir()}
    assert {"reconstructions.png", "training_curves.png"} <= figures
    assert not {"confusion_matrix.png", "predictions.png", "vae_samples.png", "anomaly_scores.png"} & figures
    page = gn.report(digits_run).read_text()
    assert 'id="reconstruction"' in page and "Reconstructions" in page and "Anomaly detection" not in page


def test_load_and_evaluate_reproduce_the_reconstruction_error(digits_run):
    run = gn.load(digits_run)
    assert run.spec.task == "reconstruct" and run.spec.input_shape == (1, 8, 8)
    bundle = reconstruction_bundle(gn.load_dataset("digits"))
    loss = evaluate_reconstruction(run.model, bundle.test)["loss"]
    assert loss == pytest.approx(read_result(digits_run)["test"]["loss"], abs=1e-5)
    evaluation = gn.evaluate(digits_run)
    assert evaluation["test"]["loss"] == pytest.approx(loss, abs=1e-5)
    assert read_result(digits_run, "evaluate")["task"] == "reconstruct"


def test_training_on_normal_classes_detects_the_others(anomaly_run):
    result = read_result(anomaly_run)
    test = result["test"]
    assert test["auroc"] > 0.9, test
    assert test["threshold"] > 0 and 0 <= test["precision"] <= 1 and test["recall"] > 0.5
    assert result["anomaly"]["normal_classes"] == ["a"] and result["anomaly"]["threshold_from"] == "val"
    assert result["anomaly"]["test_abnormal"] == 2 * result["anomaly"]["test_normal"]
    assert result["data"]["splits"]["train"]["size"] < 0.4 * 300  # class a only
    assert (anomaly_run / "figures" / "anomaly_scores.png").is_file()
    page = gn.report(anomaly_run).read_text()
    assert "Anomaly detection" in page and "AUROC" in page


def test_evaluate_of_an_anomaly_run_repeats_its_detection_figures(anomaly_run):
    train_test = read_result(anomaly_run)["test"]
    evaluated = gn.evaluate(anomaly_run)["test"]
    for key in ("loss", "auroc", "threshold", "precision", "recall"):
        assert evaluated[key] == pytest.approx(train_test[key], rel=1e-4, abs=1e-6), key
    assert set(gn.evaluate(anomaly_run, split="val")["val"]) == {"loss", "mae"}  # val holds normal examples only


def test_vae_run_reports_the_elbo_and_draws_samples(tmp_path):
    config = RunConfig(data="digits", model="vae", epochs=2, model_args={"widths": [32], "latent": 4})
    run_dir = gn.train(config, out=tmp_path / "vae").path
    result = read_result(run_dir)
    assert {"loss", "mae", "kl", "elbo"} <= set(result["test"]) and result["test"]["kl"] > 0
    assert result["test"]["elbo"] < 0 and "elbo" in result["val"]
    assert (run_dir / "figures" / "vae_samples.png").is_file()
    page = gn.report(run_dir).read_text()
    assert "Variational bound" in page and "drawn from the prior" in page


def test_cli_trains_an_autoencoder_on_normal_classes(blobs_csv, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["train", "--data", str(blobs_csv), "--model", "autoencoder", "normal_classes=[a]", "--epochs", "2"]
    assert main([*argv, "--out", str(out), "--quiet", "--report"]) == 0
    assert "auroc" in read_result(out)["test"] and (out / "report.html").is_file()
    assert read_result(out)["anomaly"]["normal_classes"] == ["a"]
    assert main(["evaluate", str(out)]) == 0
    assert "auroc" in capsys.readouterr().out


def test_cli_names_the_classes_when_a_normal_class_is_unknown(blobs_csv, tmp_path, capsys):
    out = tmp_path / "bad"
    argv = ["train", "--data", str(blobs_csv), "--model", "autoencoder", "normal_classes=[z]", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'z'" in err and "a, b, c" in err and "Traceback" not in err
    assert not (out / "model.json").exists()


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"model": "mlp", "normal_classes": ["a"]}, "reconstruction models only .*autoencoder"),
        ({"model": "autoencoder", "normal_classes": ["a", "b", "c"]}, "names every class"),
    ],
)
def test_normal_classes_that_cannot_apply_are_refused(blobs_csv, tmp_path, overrides, match):
    config = RunConfig(data=str(blobs_csv), epochs=1, **overrides)
    with pytest.raises(ConfigError, match=match):
        gn.train(config, out=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("value", ["a", [True], [-1], ["a", "a"], [1.5]])
def test_config_rejects_bad_normal_classes(value):
    with pytest.raises(ConfigError, match="normal_classes"):
        RunConfig(normal_classes=value)


def test_config_accepts_names_and_indices_and_round_trips():
    config = RunConfig().with_overrides(["normal_classes=[normal, 2]"])
    assert config.normal_classes == ["normal", 2]
    assert RunConfig.from_dict(config.to_dict()) == config and RunConfig().normal_classes == []


@pytest.mark.parametrize("shape", [(3, 20, 2), (3, 7), (2, 1, 6, 5)], ids=["sequence", "tabular", "audio"])
def test_reconstruction_pairs_draw_every_modality(tmp_path, shape):
    rng = np.random.default_rng(0)
    originals = rng.normal(size=shape)
    modality = {3: "sequence", 2: "tabular", 4: "audio"}[len(shape)]
    path = tmp_path / f"{modality}.png"
    reconstruction_figures.reconstruction_pairs(originals, originals + 0.1, modality, path)
    assert path.read_bytes().startswith(b"\x89PNG")
