"""``compress`` (Python), ``compress_run`` / ``glassnet compress`` (run directory), the report
section and ``glassnet predict --onnx``."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from glassnet.cli import main
from glassnet.compress import compress, compress_run, load_compressed
from glassnet.errors import ConfigError, RunError, UnknownNameError
from glassnet.pipeline import load, predict
from glassnet.report import report

RECORD_KEYS = {
    "name", "method", "runtime", "file", "size_bytes", "parameters", "nonzero_parameters", "metrics",
    "latency_ms_p50", "latency_ms_p95", "throughput", "size_ratio", "parameter_ratio", "latency_speedup",
    "throughput_speedup", "slower", "notes",
}  # fmt: skip


def test_compress_measures_every_variant_against_the_original(cancer_mlp, cancer):
    result = compress(cancer_mlp, cancer, quantize="torch-dynamic", prune=0.5, prune_method="global",
                      fine_tune_epochs=1, repeats=5)  # fmt: skip
    names = [v["name"] for v in result.variants]
    assert names == ["fp32", "pruned-global", "int8-torch-dynamic"]
    assert result.metric == "accuracy" and result.test_size == len(cancer.test)
    for record in result.variants:
        assert set(record) >= RECORD_KEYS
        assert 0 <= record["accuracy"] <= 1
        assert record["latency_ms_p95"] >= record["latency_ms_p50"] > 0 and record["throughput"] > 0
        assert record["file"] is None  # out=None keeps nothing on disk
    base = result.variant("fp32")
    assert base["latency_speedup"] == 1 and base["accuracy_change"] == 0 and base["slower"] == []
    pruned = result.variant("pruned-global")
    assert pruned["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert pruned["nonzero_parameters"] < 0.6 * base["nonzero_parameters"]
    assert pruned["zlib_bytes"] < pruned["size_bytes"]
    int8 = result.variant("int8-torch-dynamic")
    assert int8["size_bytes"] < base["size_bytes"]
    # the record's verdict follows its figures, whichever way they went
    assert ("batch-1 latency" in int8["slower"]) == (int8["latency_speedup"] < 1)
    json.dumps(result.to_dict(), allow_nan=False)


def test_methods_that_do_not_apply_are_skipped_with_the_reason(cancer_mlp, cancer):
    result = compress(cancer_mlp, cancer, quantize="torch-static", repeats=3)
    assert [v["name"] for v in result.variants] == ["fp32"]
    assert result.skipped[0]["variant"] == "int8-torch-static"
    assert "no convolution" in result.skipped[0]["reason"]


def test_the_model_given_is_left_untouched(cancer_mlp, cancer):
    before = {k: v.clone() for k, v in cancer_mlp.state_dict().items()}
    compress(cancer_mlp, cancer, prune=0.5, fine_tune_epochs=1, quantize="torch-dynamic", repeats=3)
    assert all(torch.equal(before[k], v) for k, v in cancer_mlp.state_dict().items())
    assert all(p.requires_grad for p in cancer_mlp.parameters())


def test_threads_apply_during_the_call_only(cancer_mlp, cancer):
    threads = torch.get_num_threads()  # 1: the one_thread fixture
    torch.set_num_threads(2)
    try:
        result = compress(cancer_mlp, cancer, quantize="torch-dynamic", repeats=3, threads=1)
        assert result.threads == 1 and result.to_dict()["threads"] == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "nothing to do"),
        ({"prune": 1.5}, "must be in \\(0, 1\\)"),
        ({"prune": 0.5, "prune_method": "channels"}, "prune_method must be one of structured, global, layer"),
        ({"quantize": "int4"}, "quantize must be int8"),
        ({"export_format": "tflite"}, "export must be one of onnx"),
        ({"export_format": "onnx", "repeats": 0}, "repeats must be an integer >= 1"),
        ({"export_format": "onnx", "threads": 0}, "threads must be a positive integer"),
        ({"export_format": "onnx", "student_hparams": {"width": 8}}, "without a student model"),
        ({"distill": "mlp", "temperature": -1}, "temperature"),
        ({"quantize": "ort-static", "stack": True}, "stack=True quantises the pruned model"),
        ({"prune": 0.5, "quantize": "torch-dynamic", "stack": True}, "needs prune=F and quantize=int8"),
        ({"prune": 0.5, "quantize": "ort-static", "stack": "yes"}, "stack must be True or False"),
    ],
)
def test_bad_options_fail_before_any_work(cancer_mlp, cancer, options, match):
    with pytest.raises(ConfigError, match=match):
        compress(cancer_mlp, cancer, **options)


def test_unknown_student_fails_before_any_work(cancer_mlp, cancer):
    with pytest.raises(UnknownNameError, match="Did you mean 'mlp'"):
        compress(cancer_mlp, cancer, distill="mpl")


def test_compress_run_writes_files_results_figure_and_report(cancer_run, tmp_path):
    run = shutil.copytree(cancer_run, tmp_path / "bc")
    result = compress_run(run, prune=0.5, fine_tune_epochs=1, distill="mlp", student_hparams={"width": 4},
                          distill_epochs=2, repeats=3)  # fmt: skip
    saved = json.loads((run / "results" / "compress.json").read_text())
    assert [v["name"] for v in saved["variants"]] == ["fp32", "pruned-structured", "distilled-mlp"]
    assert saved["variants"][0]["file"] == "model.safetensors"
    assert saved["variants"][0]["size_bytes"] == (run / "model.safetensors").stat().st_size
    assert saved["variants"][1]["file"] == "compressed/pruned-structured.safetensors"
    assert saved["settings"]["prune"] == 0.5
    assert (run / "figures" / "compress_tradeoff.png").stat().st_size > 1000
    pruned, spec = load_compressed(run / "compressed" / "pruned-structured.safetensors")
    assert spec == load(run).spec and sum(p.numel() for p in pruned.parameters()) < saved["variants"][0]["parameters"]
    student = load(run / "compressed" / "student")  # the student is a run directory of its own
    assert student.model.glassnet_arch["hparams"]["width"] == 4
    assert result.variant("pruned-structured")["parameters"] < result.variant("fp32")["parameters"]
    page = report(run).read_text()
    assert "<h2>Compression</h2>" in page and "pruned-structured" in page and "data:image/png;base64" in page
    assert 'src="http' not in page


def test_compress_run_on_a_missing_run_says_so(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        compress_run(tmp_path / "nope", export_format="onnx")


def test_cli_compress_prints_the_table_and_onnx_check(exported_run, capsys):
    saved = json.loads((exported_run / "results" / "compress.json").read_text())
    names = [v["name"] for v in saved["variants"]]
    assert names == ["fp32", "int8-torch-dynamic", "int8-torch-static", "onnx-fp32", "int8-ort-static"]
    assert saved["onnx"]["passed"] and saved["onnx"]["max_abs_diff"] < 1e-4
    assert saved["onnx"]["file"] == "compressed/model.onnx"
    assert (exported_run / "compressed" / "model.int8.onnx").is_file()
    from glassnet.stages.compress import print_variants as print_table

    print_table(saved)
    out = capsys.readouterr().out
    assert "int8-ort-static" in out and "ONNX check" in out and ": ok" in out


def test_cli_stack_quantises_the_pruned_model(exported_run, tmp_path):
    run = shutil.copytree(exported_run, tmp_path / "digits")
    args = ["compress", str(run), "--prune", "0.5", "--fine-tune", "0", "--quantize", "ort-static", "--stack"]
    assert main([*args, "--repeats", "3", "--quiet"]) == 0
    saved = json.loads((run / "results" / "compress.json").read_text())
    variants = {v["name"]: v for v in saved["variants"]}
    assert list(variants) == [
        "fp32",
        "pruned-structured",
        "onnx-fp32",
        "int8-ort-static",
        "pruned-structured+int8-ort-static",
    ]
    stacked = variants["pruned-structured+int8-ort-static"]
    assert stacked["file"] == "compressed/pruned.int8.onnx" and (run / stacked["file"]).is_file()
    assert stacked["parameters"] == variants["pruned-structured"]["parameters"]
    assert stacked["export_max_abs_diff"] < 1e-4  # the pruned model's fp32 export matched it before quantisation
    # int8 weights of the narrower model (this model is so small that scales and graph weigh as much)
    assert stacked["size_bytes"] < 0.75 * variants["pruned-structured"]["size_bytes"]
    assert stacked["size_bytes"] < 0.75 * variants["int8-ort-static"]["size_bytes"]
    assert stacked["accuracy"] >= variants["pruned-structured"]["accuracy"] - 0.03
    assert not saved["skipped"]


def test_cli_compress_errors_exit_2(cancer_run, capsys):
    assert main(["compress", str(cancer_run)]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert main(["compress", str(cancer_run), "--prune", "2"]) == 2
    assert "must be in (0, 1)" in capsys.readouterr().err
    assert main(["compress", str(cancer_run), "--student", "width=8", "--export", "onnx"]) == 2
    assert "without a student model" in capsys.readouterr().err


def test_predict_onnx_matches_pytorch(exported_run):
    torch_records = predict(exported_run, data="digits", limit=20)
    onnx_records = predict(exported_run, data="digits", limit=20, onnx=True)
    assert [r["prediction"] for r in onnx_records] == [r["prediction"] for r in torch_records]
    for a, b in zip(onnx_records, torch_records):
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-4)
    int8 = predict(exported_run, data="digits", limit=20, onnx="compressed/model.int8.onnx")
    assert sum(a["prediction"] == b["prediction"] for a, b in zip(int8, torch_records)) >= 18


def test_cli_predict_onnx(exported_run, capsys):
    assert main(["predict", str(exported_run), "--data", "digits", "--limit", "3", "--onnx"]) == 0
    out = capsys.readouterr().out
    assert "prediction" in out and len(out.strip().splitlines()) == 5  # header, rule, 3 rows


def test_cli_predict_onnx_without_export_exit_2(cancer_run, capsys):
    assert main(["predict", str(cancer_run), "--data", "breast-cancer", "--limit", "3", "--onnx"]) == 2
    assert "glassnet compress RUN --export onnx" in capsys.readouterr().err


def test_cli_quantize_takes_repeats_and_commas(cancer_run, tmp_path, capsys):
    run = shutil.copytree(cancer_run, tmp_path / "bc")
    args = ["compress", str(run), "--quantize", "torch-dynamic,torch-static", "--quantize", "torch-dynamic"]
    assert main([*args, "--repeats", "3", "--threads", "1", "--quiet"]) == 0
    saved = json.loads((run / "results" / "compress.json").read_text())
    assert saved["settings"]["quantize"] == ["torch-dynamic", "torch-static"]
    assert saved["threads"] == 1
    out = capsys.readouterr().out
    assert "int8-torch-dynamic" in out and "skipped int8-torch-static" in out


@pytest.mark.slow
def test_digits_cnn_keeps_its_accuracy_through_int8_and_half_its_channels(digits):
    from glassnet.models import create_model
    from glassnet.train import Trainer

    model = create_model("cnn", digits.spec, channels=[16, 32], hidden=64)
    Trainer(task="classify", max_epochs=15, device="cpu", seed=0).fit(model, digits)
    result = compress(
        model.eval(), digits, prune=0.5, prune_steps=2, fine_tune_epochs=5, lr=2e-3, quantize="ort-static", repeats=5
    )
    base = result.variant("fp32")
    assert base["accuracy"] > 0.95
    assert result.variant("int8-ort-static")["accuracy"] >= base["accuracy"] - 0.01
    pruned = result.variant("pruned-structured")
    assert pruned["parameter_ratio"] > 3
    assert pruned["accuracy"] >= base["accuracy"] - 0.03
    assert result.onnx["passed"]


def test_cli_predict_onnx_given_an_input_file_instead_says_where_it_goes(exported_run, tmp_path, capsys):
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), dtype=np.float32))
    assert main(["predict", str(exported_run), "--onnx", str(tmp_path / "x.npy")]) == 2
    assert "put input files before --onnx" in capsys.readouterr().err
    assert main(["predict", str(exported_run), str(tmp_path / "x.npy"), "--onnx"]) == 0
