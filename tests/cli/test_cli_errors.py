"""Every command-line error a user can fix: exit status 2, one ``glassnet: error:`` message, no traceback.

``--debug`` shows the traceback instead (in-process: the ``GlassnetError`` propagates).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glassnet.cli import main
from glassnet.errors import CheckpointError, ConfigError, UnknownNameError

PREFIX = "glassnet: error:"
TABULAR = ["--data", "breast-cancer", "--model", "mlp"]  # as in conftest.py


# ---------------------------------------------------------------- helpers


def run_cli(capsys, args):
    """Run ``glassnet ARGS`` in-process; returns (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(capsys, args, *fragments):
    """Assert ARGS fails as a user error whose message contains every fragment; returns stderr."""
    code, _, err = run_cli(capsys, args)
    assert code == 2, err
    assert err.startswith(PREFIX), err
    assert err.count(PREFIX) == 1, err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    return err


def copy_run(run, tmp_path):
    return Path(shutil.copytree(run, tmp_path / "copy"))


def snapshot(directory):
    """Bytes and modification time of every file below ``directory``."""
    return {
        p.relative_to(directory): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(Path(directory).rglob("*"))
        if p.is_file()
    }


def console_script():
    path = Path(sys.executable).parent / "glassnet"
    found = str(path) if path.is_file() else shutil.which("glassnet")
    assert found, "the glassnet console script is not installed"
    return found


def on_run(command, run):
    """Arguments of a command that reads the model of ``run``."""
    return {
        "evaluate": ["evaluate", run],
        "predict": ["predict", run, "--data", "breast-cancer", "--limit", "2"],
        "report": ["report", run],
    }[command]


class WritesMarkerWhenUnpickled:
    """Unpickling this calls ``open(marker, "w")``: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ---------------------------------------------------------------- train: names and configuration


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--data", "digitz", "--model", "cnn"], ["unknown dataset 'digitz'", "Did you mean 'digits'"]),
        (["--data", "digits", "--model", "cnnn"], ["unknown model 'cnnn'", "Did you mean 'cnn'"]),
        (["--data", "breast-cancer", "--model", "cnn"], ["model 'cnn'", "'breast-cancer'", "fit it: mlp"]),
        (["--data", "digits", "--model", "cnn", "lr=0.1", "epochz=3"], ["'epochz'", "Did you mean 'epochs'"]),
        (["--data", "digits", "--model", "cnn", "epochs=-1"], ["epochs must be >= 1", "epochs=-1"]),
        (["--data", "digits", "--model", "cnn", "--epochs", "0"], ["epochs must be >= 1"]),
        (["--data", "digits", "--model", "cnn", "optimizer=adam"], ["adamw, sgd", "Did you mean 'adamw'"]),
        (["--data", "digits", "--model", "cnn", "lr=abc"], ["lr must be of type float", "'abc'"]),
        (["--data", "digits", "--model", "cnn", "batch_size=0"], ["batch_size must be >= 1"]),
        (["--data", "digits", "--model", "cnn", "epochs"], ["'epochs' is not of the form key=value"]),
        (["--data", "digits", "--model", "cnn", "model.channelz=[8]"], ["'channelz'", "Did you mean 'channels'"]),
        (["--data", "digits", "--model", "cnn", "data.val_fractionn=0.2"], ["no option 'val_fractionn'"]),
        (["--data", "digits", "--model", "cnn", "data.val_fraction=2"], ["val_fraction=2"]),
        (["--data", "./no/such/data.csv", "--model", "mlp"], ["'./no/such/data.csv' not found"]),
        (["--model", "mlp"], ["needs --data and --model"]),
    ],
    ids=[
        "unknown-dataset",
        "unknown-model",
        "model-does-not-fit-data",
        "unknown-key",
        "negative-epochs",
        "zero-epochs-flag",
        "unknown-optimizer",
        "lr-not-a-number",
        "zero-batch-size",
        "override-without-value",
        "unknown-model-hparam",
        "unknown-data-option",
        "bad-data-option-value",
        "missing-data-path",
        "no-data",
    ],
)
def test_train_rejects_bad_input(capsys, tmp_path, args, fragments):
    assert_user_error(capsys, ["train", *args, "--quiet", "--out", tmp_path / "run"], *fragments)
    assert not (tmp_path / "run").exists()


def test_sgd_momentum_out_of_range_is_a_config_error(capsys, tmp_path):
    # A negative momentum is a bad value like lr=0: the user should get a message, not torch's ValueError.
    args = ["train", *TABULAR, "--quiet", "--out", tmp_path / "run", "optimizer=sgd", "momentum=-1"]
    assert_user_error(capsys, args, "momentum")


def test_unknown_monitor_is_a_user_error(capsys, tmp_path):
    assert_user_error(
        capsys, ["train", *TABULAR, "--quiet", "--out", tmp_path / "run", "epochs=1", "monitor=val/acc"], "'val/acc'"
    )


def test_a_failed_train_leaves_out_free_for_the_corrected_command(capsys, tmp_path):
    out = tmp_path / "run"
    common = ["train", *TABULAR, "--quiet", "--out", out, "epochs=1", "model.width=8"]
    assert_user_error(capsys, [*common, "monitor=val/acc"], "'val/acc'")
    code, _, err = run_cli(capsys, [*common, "monitor=val/loss"])
    assert code == 0, err
    assert (out / "model.safetensors").is_file()


def test_a_failed_overwrite_keeps_the_previous_run(capsys, tabular_run, tmp_path):
    run = copy_run(tabular_run, tmp_path)
    kept = ("config.yaml", "model.json", "model.safetensors", "results/train.json")
    before = {name: (run / name).read_bytes() for name in kept}
    args = ["train", *TABULAR, "--quiet", "--out", run, "--overwrite", "epochs=1", "monitor=val/acc"]
    assert_user_error(capsys, args, "'val/acc'")
    assert {name: (run / name).read_bytes() for name in kept} == before


# ---------------------------------------------------------------- train: --config files


def test_missing_config_file(capsys, tmp_path):
    assert_user_error(capsys, ["train", "--config", tmp_path / "nope.yaml"], "nope.yaml", "not found")


def test_invalid_yaml_config_file(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: digits\nepochs: [1,\n  lr: : 3\n")
    assert_user_error(capsys, ["train", "--config", path], "bad.yaml", "not valid YAML")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("- 1\n- 2\n", "mapping"), ("data: digits\nmodel: cnn\nepoch: 3\n", "Did you mean 'epochs'")],
    ids=["not-a-mapping", "unknown-key"],
)
def test_config_file_with_bad_content(capsys, tmp_path, text, fragment):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert_user_error(capsys, ["train", "--config", path, "--quiet", "--out", tmp_path / "run"], "config", fragment)


# ---------------------------------------------------------------- train: --out


def test_existing_out_is_not_touched_without_overwrite(capsys, tabular_run, tmp_path):
    run = copy_run(tabular_run, tmp_path)
    before = snapshot(run)
    args = ["train", *TABULAR, "--epochs", "1", "--quiet", "--out", run]
    assert_user_error(capsys, args, "already holds a run", "--overwrite")
    assert snapshot(run) == before


def test_out_that_is_a_file_is_refused(capsys, tmp_path):
    out = tmp_path / "out"
    out.write_text("keep me")
    assert_user_error(capsys, ["train", *TABULAR, "--epochs", "1", "--quiet", "--out", out], "is a file")
    assert out.read_text() == "keep me"


# ---------------------------------------------------------------- run directories


@pytest.mark.parametrize("command", ["evaluate", "predict", "report"])
def test_missing_run_directory(capsys, tmp_path, command):
    run = tmp_path / "no-such-run"
    assert_user_error(capsys, on_run(command, run), "no-such-run", "does not exist")
    assert not run.exists()


@pytest.mark.parametrize("command", ["evaluate", "predict", "report"])
def test_incomplete_run_directory(capsys, tabular_run, tmp_path, command):
    run = copy_run(tabular_run, tmp_path)
    (run / "model.safetensors").unlink()
    assert_user_error(capsys, on_run(command, run), "not a complete run", "model.safetensors missing")


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_corrupt_weights(capsys, tabular_run, tmp_path, command):
    run = copy_run(tabular_run, tmp_path)
    (run / "model.safetensors").write_bytes(b"\x00garbage bytes, not safetensors\xff" * 8)
    assert_user_error(capsys, on_run(command, run), "cannot read weights", "model.safetensors", "corrupt")
    with pytest.raises(CheckpointError):
        main([*map(str, on_run(command, run)), "--debug"])


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_truncated_weights(capsys, tabular_run, tmp_path, command):
    run = copy_run(tabular_run, tmp_path)
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert_user_error(capsys, on_run(command, run), "cannot read weights")


@pytest.mark.parametrize("command", ["evaluate", "predict", "report"])
def test_model_json_that_is_not_json(capsys, tabular_run, tmp_path, command):
    run = copy_run(tabular_run, tmp_path)
    (run / "model.json").write_text("{this is not json")
    assert_user_error(capsys, on_run(command, run), "model.json", "not valid JSON")


@pytest.mark.parametrize("command", ["evaluate", "predict", "report"])
def test_model_json_without_spec(capsys, tabular_run, tmp_path, command):
    run = copy_run(tabular_run, tmp_path)
    (run / "model.json").write_text('{"format": "glassnet.model/1", "name": "mlp", "hparams": {}}')
    assert_user_error(capsys, on_run(command, run), "model.json", "'spec'")


def test_evaluate_on_an_unknown_dataset(capsys, tabular_run):
    assert_user_error(capsys, ["evaluate", tabular_run, "--data", "digitz"], "Did you mean 'digits'")


def test_evaluate_on_data_that_does_not_fit_the_model(capsys, tabular_run):
    assert_user_error(capsys, ["evaluate", tabular_run, "--data", "digits"], "does not match the model")


# ---------------------------------------------------------------- predict: input files


def test_predict_needs_inputs_or_data(capsys, tabular_run):
    assert_user_error(capsys, ["predict", tabular_run], "INPUT", "--data")


def test_predict_refuses_inputs_and_data_together(capsys, tabular_run, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(30, dtype=np.float32))
    assert_user_error(capsys, ["predict", tabular_run, tmp_path / "x.npy", "--data", "breast-cancer"], "either")


def test_predict_limit_must_be_positive(capsys, tabular_run):
    assert_user_error(capsys, ["predict", tabular_run, "--data", "breast-cancer", "--limit", "0"], "--limit")


def test_predict_output_with_unknown_suffix_writes_nothing(capsys, tabular_run, tmp_path):
    output = tmp_path / "preds.txt"
    args = ["predict", tabular_run, "--data", "breast-cancer", "--limit", "2", "--output", output]
    assert_user_error(capsys, args, ".json or .csv")
    assert not output.exists()


def test_predict_missing_input_file(capsys, tabular_run, tmp_path):
    assert_user_error(capsys, ["predict", tabular_run, tmp_path / "missing.npy"], "missing.npy", "not found")


def test_predict_unsupported_suffix(capsys, tabular_run, tmp_path):
    path = tmp_path / "rows.txt"
    path.write_text("1,2,3\n")
    assert_user_error(capsys, ["predict", tabular_run, path], "rows.txt", "unknown file type .txt", ".npy")


def test_predict_npy_of_wrong_shape(capsys, tabular_run, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 7), dtype=np.float32))
    assert_user_error(capsys, ["predict", tabular_run, tmp_path / "wrong.npy"], "(3, 7)", "(30,)")


def test_predict_refuses_a_pickled_npy_without_unpickling_it(capsys, tabular_run, tmp_path):
    marker = tmp_path / "unpickled"
    objects = np.array([WritesMarkerWhenUnpickled(marker), None], dtype=object)
    np.save(tmp_path / "objects.npy", objects, allow_pickle=True)
    assert_user_error(capsys, ["predict", tabular_run, tmp_path / "objects.npy"], "objects.npy", "pickle")
    assert not marker.exists()


def test_predict_npy_that_is_not_npy(capsys, tabular_run, tmp_path):
    (tmp_path / "garbage.npy").write_bytes(b"not a numpy file at all")
    assert_user_error(capsys, ["predict", tabular_run, tmp_path / "garbage.npy"], "garbage.npy")


def test_predict_npy_of_strings(capsys, tabular_run, tmp_path):
    np.save(tmp_path / "words.npy", np.array(["a"] * 30))
    assert_user_error(capsys, ["predict", tabular_run, tmp_path / "words.npy"], "expected numbers")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_predict_npy_with_nan_or_inf(capsys, tabular_run, tmp_path, bad):
    x = np.ones((2, 30), dtype=np.float32)
    x[1, 3] = bad
    np.save(tmp_path / "bad.npy", x)
    assert_user_error(capsys, ["predict", tabular_run, tmp_path / "bad.npy"], "bad.npy", "NaN or infinite")


def test_predict_csv_with_a_malformed_row(capsys, tabular_run, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(",".join(["1.0"] * 30) + "\n" + ",".join(["1.0"] * 29 + ["abc"]) + "\n")
    assert_user_error(capsys, ["predict", tabular_run, path], "rows.csv", "row 2", "'abc'")


def test_predict_csv_with_the_wrong_number_of_columns(capsys, tabular_run, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("1,2,3,4,5\n")
    assert_user_error(capsys, ["predict", tabular_run, path], "row 1 has 5 columns", "30")


def test_predict_csv_that_is_not_text(capsys, tabular_run, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"\xff\xfe\x00\x81,\x90\n")
    assert_user_error(capsys, ["predict", tabular_run, path], "rows.csv")


def test_predict_image_with_a_tabular_model(capsys, tabular_run, tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "digit.png")
    assert_user_error(
        capsys,
        ["predict", tabular_run, tmp_path / "digit.png"],
        "for a model of tabular data",
        "unknown file type .png",
        "it reads .csv, .npy",
    )


def test_predict_csv_with_an_image_model(capsys, image_run, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(",".join(["0"] * 64) + "\n")
    assert_user_error(capsys, ["predict", image_run, path], "for a model of image data", "unknown file type .csv")


def test_predict_image_that_is_not_an_image(capsys, image_run, tmp_path):
    (tmp_path / "digit.png").write_bytes(b"this is not a png")
    assert_user_error(capsys, ["predict", image_run, tmp_path / "digit.png"], "cannot read image", "digit.png")


def test_predict_npy_of_wrong_shape_for_an_image_model(capsys, image_run, tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((2, 64), dtype=np.float32))
    assert_user_error(capsys, ["predict", image_run, tmp_path / "flat.npy"], "(2, 64)", "(1, 8, 8)")


# ---------------------------------------------------------------- other commands


def test_models_for_an_unknown_dataset(capsys):
    assert_user_error(capsys, ["models", "--data", "digitz"], "Did you mean 'digits'")


def test_argparse_usage_errors_exit_with_status_2(capsys, tabular_run):
    with pytest.raises(SystemExit) as excinfo:
        main(["predict", str(tabular_run), "--data", "breast-cancer", "--split", "tset"])
    assert excinfo.value.code == 2
    assert "invalid choice: 'tset'" in capsys.readouterr().err


# ---------------------------------------------------------------- --debug


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--debug", "--data", "digitz", "--model", "cnn"],
        ["--debug", "train", "--data", "digitz", "--model", "cnn"],
    ],
    ids=["after-command", "before-command"],
)
def test_debug_raises_instead_of_printing(capsys, args):
    with pytest.raises(UnknownNameError, match="Did you mean 'digits'"):
        main(args)
    assert PREFIX not in capsys.readouterr().err


def test_debug_raises_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="epochs"):
        main(["train", "--debug", "--data", "digits", "--model", "cnn", "--out", str(tmp_path / "r"), "epochz=3"])


def test_console_script_prints_no_traceback(tmp_path):
    done = subprocess.run(
        [console_script(), "train", "--data", "digitz", "--model", "cnn"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(PREFIX) and "Did you mean 'digits'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_console_script_with_debug_shows_the_traceback(tmp_path):
    done = subprocess.run(
        [console_script(), "train", "--debug", "--data", "digitz", "--model", "cnn"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode not in (0, 2), done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert "UnknownNameError" in done.stderr and "Did you mean 'digits'" in done.stderr
