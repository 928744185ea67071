"""Classical baselines: one per task family, scored like the network, and the verdict that compares them."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import glassnet as gn
from glassnet.cli import main
from glassnet.data import DataBundle, DataSpec
from glassnet.train.baselines import compare, fit_baselines, seasonal_period, sentence, texts
from glassnet.train.tasks import get_task


def test_a_table_gets_a_logistic_regression_scored_exactly_like_scikit_learn(tabular_bundle):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    block = fit_baselines(get_task("classify"), tabular_bundle, {"accuracy": 0.5})
    assert block["name"] == "logistic_regression" and block["chosen_on"] == "val"
    x, y = tabular_bundle.train.tensors
    direct = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x.double().numpy(), y.numpy())
    test_x, test_y = tabular_bundle.test.tensors
    assert block["test"]["accuracy"] == pytest.approx(
        (direct.predict(test_x.double().numpy()) == test_y.numpy()).mean()
    )
    assert [c["name"] for c in block["candidates"]] == ["logistic_regression", "majority"]
    assert block["candidates"][1]["floor"] and block["candidates"][1]["test"]["accuracy"] < 0.5
    assert block["comparison"]["verdict"] == "trails" and block["train_examples"] == len(x)


def test_text_gets_tfidf_and_a_linear_svm(make_key_token_bundle):
    bundle = make_key_token_bundle(300)
    block = fit_baselines(get_task("classify"), bundle, None)
    assert block["name"] == "tfidf_linear_svm" and "loss" not in block["test"]
    assert block["test"]["accuracy"] > 0.9  # the key token is a word: an n-gram model finds it
    assert "comparison" not in block
    assert texts(bundle.spec, torch.tensor([[6, 5, 0, 0]])) == ["w6 w5"]


def test_regression_compares_errors_relatively(regression_bundle):
    block = fit_baselines(get_task("regress"), regression_bundle, {"mae": 0.5, "rmse": 0.6})
    assert block["name"] == "ridge" and block["test"]["mae"] < 2  # the data is linear with noise 1
    comparison = block["comparison"]
    assert comparison["metric"] == "mae" and comparison["mode"] == "min" and not comparison["bounded"]
    assert comparison["verdict"] == "beats" and comparison["relative"] < 0


def sine_windows(n=400, lookback=24, horizon=3, period=7):
    t = np.arange(n + lookback + horizon, dtype=np.float32)
    series = 10 + 5 * np.sin(2 * np.pi * t / period)
    x = np.stack([series[i : i + lookback] for i in range(n)])[:, :, None]
    y = np.stack([series[i + lookback : i + lookback + horizon] for i in range(n)])[:, :, None]
    return x, y


def test_forecasts_get_persistence_and_a_seasonal_naive_that_finds_the_period():
    x, y = sine_windows()
    assert seasonal_period(torch.from_numpy(x[:, :, 0])) == 7
    bundle = gn.data.bundle_from_splits(
        (x[:300], y[:300]), (x[300:350], y[300:350]), (x[350:], y[350:]), name="sine", modality="sequence",
        task="forecast", feature_names=("v",), extra={"lookback": 24, "horizon": 3, "target_names": ["v"]},
    )  # fmt: skip
    block = fit_baselines(get_task("forecast"), bundle, {"mae": 0.5})
    names = [c["name"] for c in block["candidates"]]
    assert names == ["persistence", "seasonal_naive", "mean"]
    assert block["name"] == "seasonal_naive" and block["test"]["mae"] < 1e-4  # a pure sine repeats exactly
    persistence = block["candidates"][0]["test"]["mae"]
    expected = np.abs(y[350:, :, 0] - x[350:, -1:, 0]).mean()
    assert persistence == pytest.approx(float(expected), rel=1e-4)
    assert block["comparison"]["verdict"] == "trails"


def test_multilabel_reconstruction_and_language_models_have_their_baselines(make_key_token_bundle):
    pairs = gn.load_dataset("digit-pairs", pairs_per_digit=0.5)
    block = fit_baselines(get_task("multilabel"), pairs, None)
    assert block["name"] == "logistic_regression" and block["test"]["micro_f1"] > 0.5

    from glassnet.train.reconstruction import reconstruction_bundle

    digits = reconstruction_bundle(gn.load_dataset("digits"), normal_classes=[0, 1, 2, 3, 4])
    block = fit_baselines(get_task("reconstruct"), digits, {"auroc": 0.9, "mae": 0.1})
    assert block["name"] == "pca" and block["comparison"]["metric"] == "auroc"
    assert 0.7 < block["test"]["auroc"] <= 1 and "auroc" not in block["val"]  # chosen on the val loss

    rng = np.random.default_rng(0)
    tokens = torch.as_tensor(np.tile([2, 3, 4, 5], (60, 5)) + 0 * rng.integers(0, 1, (60, 20)))
    spec = DataSpec(modality="text", input_shape=(19,), task="language_model", num_outputs=6, name="cycle",
                    extra={"vocab": ["<pad>", "<unk>", "a", "b", "c", "d"], "pad_index": 0})  # fmt: skip
    split = TensorDataset(tokens[:, :-1], tokens[:, 1:])
    block = fit_baselines(get_task("language_model"), DataBundle(split, split, split, spec), {"perplexity": 1.1})
    unigram = block["candidates"][1]["test"]["perplexity"]
    assert block["name"] == "bigram" and block["test"]["perplexity"] < 1.5 < unigram  # a cycle is all bigrams
    assert unigram == pytest.approx(4.0, rel=0.1)


def test_tagging_compares_macro_f1_with_the_sentence_start_rule():
    bundle = gn.load_dataset("truecase-generated", n=200, max_length=48)
    block = fit_baselines(get_task("tag"), bundle, {"macro_f1": 0.9, "accuracy": 0.9})
    assert block["name"] == "rule" and block["comparison"]["metric"] == "macro_f1"
    from glassnet.data.tagging import rule_baseline
    from glassnet.train.tagging import tag_metrics

    x, y = bundle.test.tensors
    assert block["test"]["macro_f1"] == pytest.approx(tag_metrics(rule_baseline(bundle.spec, x), y, 3)["macro_f1"])


def test_sequence_to_sequence_says_why_it_has_none():
    assert "no classical baseline" in fit_baselines(get_task("seq2seq"), gn.load_dataset("reverse-strings"))["skipped"]


@pytest.mark.parametrize(
    "network,baseline,mode,examples,verdict",
    [
        (0.95, 0.90, "max", 1000, "beats"),
        (0.901, 0.90, "max", 1000, "ties"),  # within half a point
        (0.90, 0.905, "max", 100, "ties"),  # one test example is a point here
        (0.80, 0.90, "max", 1000, "trails"),
        (10.0, 12.0, "min", 1000, "beats"),
        (10.0, 10.05, "min", 1000, "ties"),  # within 1%
        (30.0, 10.0, "min", 1000, "trails"),
    ],
)
def test_the_verdict_and_its_tie_band(network, baseline, mode, examples, verdict):
    metric = "accuracy" if mode == "max" else "mae"
    comparison = compare({metric: network}, {metric: baseline}, metric, mode, examples)
    assert comparison["verdict"] == verdict
    line = sentence({"description": "a model", "comparison": comparison})
    assert line.startswith(f"the network {verdict} the baseline (a model)")
    if verdict == "trails" and mode == "min":
        assert "3.0x the baseline's" in line


def test_a_run_records_its_baseline_the_cli_says_the_verdict_and_it_can_be_switched_off(tmp_path, capsys):
    command = ["train", "--data", "digits", "--model", "mlp", "epochs=1", "--quiet"]
    assert main([*command, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "baseline: the network trails the baseline (a logistic regression" in out and "warning:" in out
    run = gn.load(tmp_path / "a")
    block = run.result("train")["baseline"]
    assert block["comparison"]["network"] == run.result("train")["test"]["accuracy"]
    assert "The network trails the baseline" in gn.report(run).read_text()
    assert main(["evaluate", str(tmp_path / "a"), "--split", "val"]) == 0
    assert "baseline: the network" in capsys.readouterr().out
    evaluated = run.result("evaluate")
    assert evaluated["baseline"]["test"] == block["val"]  # the same examples: the val split both times
    assert main([*command, "baseline=false", "--out", str(tmp_path / "b")]) == 0
    assert "baseline" not in gn.load(tmp_path / "b").result("train")
    assert "baseline:" not in capsys.readouterr().out


DATA = os.environ.get("GLASSNET_DATA")


@pytest.mark.slow
@pytest.mark.skipif(
    not DATA or not (Path(DATA) / "text" / "sentiment.csv").exists(),
    reason="the sentiment corpus is not available: set GLASSNET_DATA to ../shared/data",
)
def test_the_sentiment_baseline_is_scikit_learns_figure_on_the_same_split():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    bundle = gn.load_dataset("sentiment")
    block = fit_baselines(get_task("classify"), bundle, {"accuracy": 0.8, "macro_f1": 0.72})
    (x, y), (tx, ty) = bundle.train.tensors, bundle.test.tensors
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    direct = make_pipeline(vectorizer, LinearSVC(C=1.0)).fit(texts(bundle.spec, x), y.numpy())
    predicted = direct.predict(texts(bundle.spec, tx))
    assert block["test"]["accuracy"] == pytest.approx((predicted == ty.numpy()).mean(), abs=1e-6)
    assert block["test"]["macro_f1"] == pytest.approx(f1_score(ty.numpy(), predicted, average="macro"), abs=1e-5)
    assert 0.70 < block["test"]["macro_f1"] < 0.78 and not math.isnan(block["fit_time_s"])
