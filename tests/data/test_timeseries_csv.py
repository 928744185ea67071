"""Time-series CSV files and the sunspots, co2 and ecg built-ins (``glassnet.data.timeseries``)."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import glassnet.data.timeseries as ts
from glassnet.data import list_datasets, load_dataset
from glassnet.errors import ConfigError, DataError

# ---------------------------------------------------------------- fixtures


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(row + "\n" for row in rows))
    return path


def index_csv(tmp_path: Path, n: int = 60, name: str = "index.csv") -> Path:
    """Column ``a`` is the row index (so every value names its row), ``b`` a sine, ``c`` = 1000 + 2 * row."""
    rows = [f"{i},{i},{np.sin(i / 3):.6f},{1000 + 2 * i}" for i in range(n)]
    return write_csv(tmp_path / name, "t,a,b,c", rows)


def sine_csv(tmp_path: Path, n: int = 400, period: float = 16.0) -> Path:
    """A clean daily sine series with a slow trend (dates in the time column)."""
    days = np.arange(n)
    dates = np.datetime64("2020-01-01") + days
    values = np.sin(2 * np.pi * days / period) + 0.001 * days
    return write_csv(tmp_path / "sine.csv", "date,value", [f"{d},{v:.6f}" for d, v in zip(dates, values)])


def target_rows(bundle, split: str) -> set[int]:
    """Row indices forecast by a split's windows (column ``a`` is the row index)."""
    return set(getattr(bundle, split).tensors[1][..., 0].reshape(-1).long().tolist())


def needs_statsmodels() -> None:
    pytest.importorskip("statsmodels", reason="statsmodels is not installed (pip install 'glassnet[timeseries]')")


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize("first", ["date", "Time", "TIMESTAMP", "datetime", "ds", "month", "year", "period", "t"])
def test_detect_claims_csv_whose_first_header_cell_is_time_like(tmp_path, first):
    assert ts.is_timeseries_csv(write_csv(tmp_path / "s.csv", f"{first},value", ["1,2"]))


def test_detect_reads_gzip_and_rejects_other_headers_and_suffixes(tmp_path):
    gz = tmp_path / "s.csv.gz"
    gz.write_bytes(gzip.compress(b"date,value\n2020-01-01,1\n"))
    assert ts.is_timeseries_csv(gz)
    assert not ts.is_timeseries_csv(write_csv(tmp_path / "labels.csv", "label,text", ["a,b"]))
    assert not ts.is_timeseries_csv(write_csv(tmp_path / "feat.csv", "x,date", ["1,2"]))
    assert not ts.is_timeseries_csv(write_csv(tmp_path / "s.txt", "date,value", ["1,2"]))
    assert not ts.is_timeseries_csv(tmp_path)


def test_load_dataset_detects_the_format_from_the_path(tmp_path):
    bundle = load_dataset(str(index_csv(tmp_path)), lookback=4)
    assert bundle.info["format"] == "timeseries" and bundle.spec.name == "index"


# ---------------------------------------------------------------- windows and splits


def test_windows_are_lookback_by_channels_and_targets_horizon_by_target_columns(tmp_path):
    bundle = ts.load_timeseries(index_csv(tmp_path), lookback=5, horizon=3)
    spec = bundle.spec
    assert spec.modality == "sequence" and spec.task == "forecast"
    assert spec.input_shape == (5, 3) and spec.feature_names == ("a", "b", "c")
    assert spec.num_outputs == 9 and spec.extra == {
        "lookback": 5,
        "horizon": 3,
        "stride": 1,
        "target_names": ["a", "b", "c"],
    }
    x, y = bundle.train.tensors
    assert x.dtype == torch.float32 and y.shape == (len(x), 3, 3)


def test_target_of_each_window_is_the_next_horizon_rows(tmp_path):
    bundle = ts.load_timeseries(index_csv(tmp_path), lookback=5, horizon=3)
    for split in ("train", "val", "test"):
        x, y = getattr(bundle, split).tensors
        first_target = x[:, -1, 0] + 1
        torch.testing.assert_close(x[:, :, 0], first_target[:, None] - 5 + torch.arange(5.0))
        torch.testing.assert_close(y[:, :, 0], first_target[:, None] + torch.arange(3.0))
        torch.testing.assert_close(y[:, :, 2], 1000 + 2 * y[:, :, 0])  # every channel aligned with its row


def test_split_is_chronological_and_no_target_row_is_in_two_splits(tmp_path):
    bundle = ts.load_timeseries(index_csv(tmp_path, n=100), lookback=6, horizon=2)
    train, val, test = (target_rows(bundle, s) for s in ("train", "val", "test"))
    assert max(train) < min(val) and max(val) < min(test)
    assert train | val | test == set(range(6, 100))  # every row after the first lookback is forecast once
    assert bundle.info["periods"]["test"] == {"rows": 15, "windows": 14, "from": "85", "to": "99"}
    # validation inputs may look back into training rows: known at prediction time, not leakage
    assert bundle.val.tensors[0][0, 0, 0].item() < min(val)


def test_stride_spaces_the_windows(tmp_path):
    bundle = ts.load_timeseries(index_csv(tmp_path, n=100), lookback=4, stride=5)
    starts = bundle.train.tensors[1][:, 0, 0]
    assert torch.all(starts.diff() == 5) and starts[0] == 4


def test_statistics_are_fitted_on_the_training_windows_only(tmp_path):
    bundle = ts.load_timeseries(index_csv(tmp_path, n=200), columns=["a", "c"], lookback=8, horizon=2)
    x, y = bundle.train.tensors
    np.testing.assert_allclose(bundle.spec.input_mean, x.mean(dim=(0, 1)).numpy(), rtol=1e-5)
    np.testing.assert_allclose(bundle.spec.target_mean, y.reshape(len(y), -1).mean(0).numpy(), rtol=1e-5)
    assert bundle.spec.input_mean[0] < 75 < 99.5  # the full series' mean of `a` is 99.5
    first_val_row = min(target_rows(bundle, "val"))
    assert x[..., 0].max() < first_val_row and y[..., 0].max() < first_val_row


def test_a_subset_of_the_columns_is_forecast(tmp_path):
    bundle = ts.load_timeseries(index_csv(tmp_path), columns="a, b", target=["c"], lookback=4, horizon=2)
    assert bundle.spec.feature_names == ("a", "b", "c")  # a target's own past is always an input
    assert bundle.spec.num_outputs == 2 and bundle.spec.extra["target_names"] == ["c"]
    x, y = bundle.test.tensors
    torch.testing.assert_close(y[:, :, 0], 1000 + 2 * (x[:, -1:, 0] + 1 + torch.arange(2.0)))


def test_default_columns_skip_text_columns(tmp_path):
    rows = [f"{i},{i},shop{i % 3},{i * 2}" for i in range(40)]
    bundle = ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,a,store,b", rows), lookback=3)
    assert bundle.spec.feature_names == ("a", "b") and bundle.info["skipped_columns"] == ["store"]


def test_dates_are_parsed_and_unsorted_rows_sorted_by_time(tmp_path):
    dates = np.datetime64("2021-03-01") + np.arange(40)
    rows = [f"{d},{i}" for i, d in enumerate(dates)]
    rng = np.random.default_rng(0)
    shuffled = write_csv(tmp_path / "s.csv", "Date,value", [rows[i] for i in rng.permutation(40)])
    bundle = ts.load_timeseries(shuffled, lookback=3)
    assert bundle.info["sorted_by_time"] is True
    assert bundle.info["periods"]["train"]["from"] == "2021-03-01"
    x, y = bundle.train.tensors
    torch.testing.assert_close(x[0, :, 0], torch.tensor([0.0, 1.0, 2.0]))


def test_numeric_times_are_sorted_and_unparsable_times_keep_the_file_order(tmp_path):
    rows = [f"{2000 - i},{i}" for i in range(30)]  # years in descending order
    bundle = ts.load_timeseries(write_csv(tmp_path / "years.csv", "year,value", rows), lookback=3)
    assert bundle.train.tensors[0][0, :, 0].tolist() == [29.0, 28.0, 27.0]
    labels = [f"q{i},{i}" for i in range(30)]
    kept = ts.load_timeseries(write_csv(tmp_path / "q.csv", "period,value", labels), lookback=3)
    assert kept.train.tensors[0][0, :, 0].tolist() == [0.0, 1.0, 2.0] and kept.info["sorted_by_time"] is False


def test_fill_interpolate_is_linear_in_time_and_ffill_carries_the_last_value(tmp_path):
    times = [0, 1, 2, 4, 5] + list(range(6, 40))  # uneven spacing around the gap
    values = ["0", "10", "", "40", "50"] + [str(10 * t) for t in range(6, 40)]
    path = write_csv(tmp_path / "gap.csv", "t,v", [f"{t},{v}" for t, v in zip(times, values)])
    interpolated = ts.load_timeseries(path, lookback=4, fill="interpolate").train.tensors[0][0, :, 0]
    assert interpolated.tolist() == [0.0, 10.0, 20.0, 40.0]  # t=2 lies between t=1 (10) and t=4 (40)
    carried = ts.load_timeseries(path, lookback=4, fill="ffill").train.tensors[0][0, :, 0]
    assert carried.tolist() == [0.0, 10.0, 10.0, 40.0]


def test_gzip_csv_loads(tmp_path):
    text = index_csv(tmp_path).read_bytes()
    gz = tmp_path / "series.csv.gz"
    gz.write_bytes(gzip.compress(text))
    bundle = load_dataset(str(gz), lookback=4)
    assert bundle.spec.name == "series" and len(bundle.train) == len(
        ts.load_timeseries(tmp_path / "index.csv", lookback=4).train
    )


# ---------------------------------------------------------------- bad input


def test_series_shorter_than_lookback_plus_horizon(tmp_path):
    path = index_csv(tmp_path, n=20)
    with pytest.raises(DataError, match=r"needs at least 25 rows for lookback 24 \+ horizon 1; has 20") as info:
        ts.load_timeseries(path)
    assert "index.csv" in str(info.value) and "data.lookback" in str(info.value)


def test_train_split_too_short_for_a_window(tmp_path):
    with pytest.raises(DataError, match=r"train split .* needs at least 31 rows for lookback 30 \+ horizon 1; has 28"):
        ts.load_timeseries(index_csv(tmp_path, n=40), lookback=30, val_fraction=0.15, test_fraction=0.15)


def test_test_split_shorter_than_the_horizon(tmp_path):
    with pytest.raises(DataError, match=r"'.*index.csv': the test split .* needs at least 3 rows for horizon 3.*has 1"):
        ts.load_timeseries(index_csv(tmp_path, n=60), lookback=4, horizon=3, test_fraction=0.02)


def test_non_numeric_value_names_line_column_and_value(tmp_path):
    rows = [f"{i},{i},{i}" for i in range(30)]
    rows[6] = "6,6,abc"
    with pytest.raises(DataError, match=r"'.*s.csv' line 8, column 'b': 'abc' is not a number"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,a,b", rows), lookback=3)


def test_a_text_column_named_in_columns_is_rejected(tmp_path):
    rows = [f"{i},{i},shop" for i in range(30)]
    with pytest.raises(DataError, match=r"line 2, column 'store': 'shop' is not a number"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,a,store", rows), columns=["a", "store"], lookback=3)


def test_missing_values_name_the_first_lines_and_say_how_to_fill(tmp_path):
    rows = [f"{i},{i},{i}" for i in range(30)]
    rows[3], rows[9] = "3,,3", "9,9,NaN"
    with pytest.raises(DataError, match=r"missing values in 2 rows, first at line 5 \('a'\), line 11 \('b'\)") as info:
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,a,b", rows), lookback=3)
    assert "data.fill=interpolate" in str(info.value) and "s.csv" in str(info.value)


def test_infinity_is_rejected_with_its_line(tmp_path):
    rows = [f"{i},{i}" for i in range(30)]
    rows[4] = "4,-inf"
    with pytest.raises(DataError, match=r"line 6, column 'v': '-inf' is infinite"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,v", rows), lookback=3)


def test_ffill_cannot_fill_the_first_rows(tmp_path):
    rows = ["0,", "1,"] + [f"{i},{i}" for i in range(2, 30)]
    with pytest.raises(DataError, match=r"column 'v' is missing its first values \(line 2, line 3\).*interpolate"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,v", rows), lookback=3, fill="ffill")


def test_interpolate_needs_at_least_one_value_in_a_column(tmp_path):
    rows = [f"{i},{i}," for i in range(30)]
    with pytest.raises(DataError, match=r"column 'w' has no values at all"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,v,w", rows), columns="v,w", lookback=3, fill="interpolate")


@pytest.mark.parametrize("option", ["columns", "target"])
def test_unknown_column_lists_the_value_columns(tmp_path, option):
    with pytest.raises(
        DataError, match=rf"no column 'aa' \(in data.{option}\). Did you mean 'a'\? Its value columns: a, b, c"
    ):
        ts.load_timeseries(index_csv(tmp_path), **{option: ["aa"]}, lookback=3)


def test_the_time_column_is_not_a_value_column(tmp_path):
    with pytest.raises(DataError, match=r"target names 't', the time column; choose from a, b, c"):
        ts.load_timeseries(index_csv(tmp_path), target="t", lookback=3)


@pytest.mark.parametrize(("key", "value"), [("lookback", 0), ("horizon", 0), ("stride", -1), ("lookback", 2.5)])
def test_window_options_must_be_positive_integers(tmp_path, key, value):
    with pytest.raises(ConfigError, match=rf"{key} must be an integer >= 1. Received: {key}={value}"):
        ts.load_timeseries(index_csv(tmp_path), **{key: value})


@pytest.mark.parametrize(("val", "test"), [(0.15, 0.0), (0.5, 0.5), (-0.1, 0.2)])
def test_fractions_that_leave_an_empty_split(tmp_path, val, test):
    with pytest.raises(ConfigError, match=rf"empty split.*val_fraction={val}, test_fraction={test}"):
        ts.load_timeseries(index_csv(tmp_path), lookback=3, val_fraction=val, test_fraction=test)


def test_zero_val_fraction_gives_an_empty_validation_split(tmp_path):
    bundle = ts.load_timeseries(index_csv(tmp_path), lookback=3, val_fraction=0.0)
    assert len(bundle.val) == 0 and len(bundle.test) > 0


def test_unknown_fill_mode(tmp_path):
    with pytest.raises(ConfigError, match=r"fill must be one of error, interpolate, ffill. Received: fill='mean'"):
        ts.load_timeseries(index_csv(tmp_path), fill="mean")


def test_duplicated_times_name_both_lines(tmp_path):
    rows = [f"2020-01-{d:02d},{d}" for d in range(1, 29)]
    rows[10] = rows[9].replace(",10", ",99")
    with pytest.raises(DataError, match=r"lines 11 and 12 both have time '2020-01-10'.*one row per time"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "date,v", rows), lookback=3)


def test_an_unreadable_time_among_dates(tmp_path):
    rows = [f"2020-01-{d:02d},{d}" for d in range(1, 29)]
    rows[4] = "2020-13-45,5"
    with pytest.raises(DataError, match=r"time column 'date': cannot read line 6 \('2020-13-45'\) as a time"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "date,v", rows), lookback=3)


def test_rows_of_different_lengths(tmp_path):
    rows = [f"{i},{i},{i}" for i in range(30)]
    rows[2] = "2,2"
    with pytest.raises(DataError, match=r"'.*s.csv' line 4 has 2 cells but the header has 3 \(t, a, b\)"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,a,b", rows), lookback=3)


def test_empty_file_and_missing_value_columns(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"'.*empty.csv' needs a header row with a time column"):
        ts.load_timeseries(empty)
    with pytest.raises(DataError, match=r"no numeric value column after the time column 't' \(columns: name\)"):
        ts.load_timeseries(write_csv(tmp_path / "s.csv", "t,name", [f"{i},x" for i in range(30)]), lookback=3)


def test_file_that_is_not_text(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"date,v\n\xff\xfe\x00\x81")
    with pytest.raises(DataError, match=r"cannot read time-series CSV '.*binary.csv'.*UTF-8"):
        ts.load_timeseries(path)


def test_command_line_exits_2_naming_the_line_and_writes_nothing(tmp_path, capsys):
    from glassnet.cli import main

    rows = [f"{i},{i}" for i in range(40)]
    rows[7] = "7,seven"
    path = write_csv(tmp_path / "bad.csv", "t,v", rows)
    out = tmp_path / "run"
    assert main(["train", "--data", str(path), "--model", "mlp", "--out", str(out), "data.lookback=4"]) == 2
    err = capsys.readouterr().err
    assert "line 9, column 'v': 'seven' is not a number" in err and "Traceback" not in err
    assert not out.exists()


# ---------------------------------------------------------------- training end to end


def test_mlp_beats_the_naive_last_value_forecast_on_a_sine(tmp_path):
    import glassnet
    from glassnet.config import RunConfig

    path = sine_csv(tmp_path)
    options = {"lookback": 16, "horizon": 1}
    config = RunConfig(data=str(path), model="mlp", epochs=10, lr=3e-3, batch_size=32, device="cpu", data_args=options)
    run = glassnet.train(config, out=tmp_path / "run")
    model_mae = json.loads((Path(run.path) / "results" / "train.json").read_text())["test"]["mae"]
    x, y = ts.load_timeseries(path, **options).test.tensors
    naive_mae = (x[:, -1:, :] - y).abs().mean().item()
    assert model_mae < 0.6 * naive_mae, (model_mae, naive_mae)


# ---------------------------------------------------------------- built-ins


def test_built_ins_are_listed_with_size_task_and_source():
    infos = {d.name: d for d in list_datasets()}
    assert infos["sunspots"].task == "forecast" and infos["co2"].task == "forecast"
    assert infos["ecg"].task == "classify"
    for name in ("sunspots", "co2", "ecg"):
        assert infos[name].modality == "sequence" and infos[name].size and infos[name].source


def test_sunspots_forecasts_the_next_year_from_24():
    needs_statsmodels()
    bundle = load_dataset("sunspots")
    assert bundle.spec.input_shape == (24, 1) and bundle.spec.num_outputs == 1
    periods = bundle.info["periods"]
    assert periods["train"]["from"] == "1700" and periods["test"]["to"] == "2008"
    assert sum(p["rows"] for p in periods.values()) == 309
    assert len(load_dataset("sunspots", lookback=10, horizon=2).train) == 217 - 10 - 2 + 1


def test_co2_is_monthly_without_gaps_and_forecasts_12_months():
    needs_statsmodels()
    bundle = load_dataset("co2")
    assert bundle.spec.input_shape == (36, 1) and bundle.spec.num_outputs == 12
    assert sum(p["rows"] for p in bundle.info["periods"].values()) == 526
    for split in ("train", "val", "test"):
        x, y = getattr(bundle, split).tensors
        assert torch.isfinite(x).all() and torch.isfinite(y).all() and x.min() > 300


@pytest.mark.parametrize("name", ["sunspots", "co2"])
def test_missing_statsmodels_says_how_to_install_it(monkeypatch, name):
    for module in ("statsmodels", "statsmodels.datasets", f"statsmodels.datasets.{name}"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(DataError, match=r"pip install statsmodels \(or pip install 'glassnet\[timeseries\]'\)"):
        load_dataset(name)


def ecg_fixture(root: Path, labels: list[int] | None = None, text: str | None = None) -> None:
    """A small ``ecg/mitdb.csv`` under ``root``: 1,000 samples, samples 420-470 abnormal."""
    (root / "ecg").mkdir(parents=True)
    if text is None:
        labels = labels or [int(420 <= i < 470) for i in range(1000)]
        text = "data,label\n" + "".join(f"{np.sin(i / 20):.4f},{label}\n" for i, label in enumerate(labels))
    (root / "ecg" / "mitdb.csv").write_text(text)


def synthetic_ecg(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An ECG-like 360 Hz signal and its R-peak indices: irregular rhythm, one premature beat, wander, noise.

    Each beat is a P wave, a Q-R-S of Gaussian bumps (R: 1.0, 3 samples wide) and a broad T wave
    as tall as 0.35; the baseline wanders by 0.3 at 0.3 Hz, so raw thresholds would fail.
    """
    rng = np.random.default_rng(seed)
    intervals = rng.integers(250, 330, size=24)
    intervals[15] = 170  # a premature beat
    peaks = 200 + np.concatenate([[0], np.cumsum(intervals)])
    t = np.arange(peaks[-1] + 200)
    signal = 0.3 * np.sin(2 * np.pi * 0.3 * t / 360) + rng.normal(0, 0.02, len(t))
    for peak in peaks:
        for offset, height, width in ((-60, 0.15, 10), (-8, -0.15, 3), (0, 1.0, 3), (8, -0.25, 3), (80, 0.35, 20)):
            signal += height * np.exp(-0.5 * ((t - peak - offset) / width) ** 2)
    return signal, peaks


def test_r_peaks_of_a_synthetic_ecg_are_found_to_the_sample():
    signal, truth = synthetic_ecg()
    found = ts.detect_r_peaks(signal)
    assert len(found) == len(truth)
    assert np.abs(found - truth).max() <= 1
    inverted = ts.detect_r_peaks(-signal)  # a lead with downward R waves
    assert len(inverted) == len(truth) and np.abs(inverted - truth).max() <= 1


def test_r_peaks_keep_the_refractory_distance_and_a_flat_line_has_none():
    signal, truth = synthetic_ecg(seed=1)
    slow = ts.detect_r_peaks(signal, min_distance=0.6)  # longer than the premature beat's 170 samples
    assert len(slow) == len(truth) - 1 and np.diff(slow).min() >= 0.6 * 360
    assert len(ts.detect_r_peaks(np.zeros(1000))) == 0
    with pytest.raises(DataError, match="an ECG of 5 samples is too short"):
        ts.detect_r_peaks(np.zeros(5))


def test_beat_windows_are_centred_on_the_peaks_and_drop_beats_off_the_ends():
    signal = np.arange(100.0)
    beats, kept = ts.beat_windows(signal, np.array([3, 20, 50, 97]), before=5, after=4)
    assert kept.tolist() == [20, 50]
    assert beats.tolist() == [list(range(15, 24)), list(range(45, 54))]


def test_small_class_split_puts_a_lone_example_in_test_and_is_seeded():
    labels = np.array([0] * 24 + [1])
    train, val, test = ts.small_class_split(labels, 0.15, 0.15, seed=3)
    assert (len(train), len(val), len(test)) == (16, 4, 5) and 24 in test
    assert len(np.unique(np.concatenate([train, val, test]))) == 25
    again = ts.small_class_split(labels, 0.15, 0.15, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((train, val, test), again))
    assert not np.array_equal(test, ts.small_class_split(labels, 0.15, 0.15, seed=4)[2])


def test_ecg_beats_are_labelled_by_their_r_peak(tmp_path, monkeypatch):
    signal, peaks = synthetic_ecg()
    labels = np.zeros(len(signal), dtype=int)
    labels[peaks[16] - 120 : peaks[16] + 150] = 1  # an episode around the premature beat, over its neighbour's T wave
    text = "data,label\n" + "".join(f"{v:.4f},{label}\n" for v, label in zip(signal, labels))
    ecg_fixture(tmp_path, text=text)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    bundle = load_dataset("ecg", before=100, after=120)
    assert bundle.spec.input_shape == (220, 1) and bundle.info["segment"] == "beats"
    assert (bundle.info["r_peaks"], bundle.info["beats"], bundle.info["abnormal_beats"]) == (25, 25, 1)
    x, y = bundle.test.tensors
    beat = x[y == 1][0, :, 0].numpy()
    assert np.allclose(beat, np.round(signal[peaks[16] - 100 : peaks[16] + 120], 4), atol=1e-4)
    assert bundle.train.tensors[1].sum() == 0 and bundle.val.tensors[1].sum() == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"segment": "heartbeats"}, r"segment must be one of beats, windows. Received: segment='heartbeats'"),
        ({"window": 50}, r"window applies to segment=windows, not segment='beats'. Received: window=50"),
        ({"segment": "windows", "before": 9}, r"before applies to segment=beats, not segment='windows'"),
        ({"after": 0}, r"after must be an integer >= 1. Received: after=0"),
        ({"before": -1}, r"before must be an integer >= 0. Received: before=-1"),
    ],
)
def test_ecg_options_that_do_not_fit_the_segment(tmp_path, monkeypatch, options, message):
    ecg_fixture(tmp_path)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(ConfigError, match=message):
        load_dataset("ecg", **options)


def test_ecg_windows_are_labelled_abnormal_when_any_sample_is(tmp_path, monkeypatch):
    ecg_fixture(tmp_path)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    bundle = load_dataset("ecg", segment="windows", window=25, val_fraction=0.2, test_fraction=0.2)
    assert bundle.spec.input_shape == (25, 1) and bundle.spec.class_names == ("normal", "abnormal")
    labels = torch.cat([bundle.train.tensors[1], bundle.val.tensors[1], bundle.test.tensors[1]])
    assert len(labels) == 40 and labels.sum() == 3  # windows 400-424, 425-449, 450-474
    assert all(getattr(bundle, s).tensors[1].sum() == 1 for s in ("train", "val", "test"))  # stratified


def test_ecg_missing_file_says_to_set_glassnet_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("GLASSNET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"ecg/mitdb.csv was not found \(looked for .*nowhere.*\). Set GLASSNET_DATA"):
        load_dataset("ecg")


def test_ecg_bad_label_names_the_line(tmp_path, monkeypatch):
    ecg_fixture(tmp_path, labels=[0] * 5 + [2] + [0] * 994)
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(
        DataError, match=r"mitdb.csv' line 7: data='0.2474', label='2'; data must be a finite number and label 0 or 1"
    ):
        load_dataset("ecg")


def test_ecg_file_without_its_columns(tmp_path, monkeypatch):
    ecg_fixture(tmp_path, text="signal,label\n0.1,0\n")
    monkeypatch.setenv("GLASSNET_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"lacks column\(s\) data; it needs columns data,label"):
        load_dataset("ecg")


def shared_ecg_root() -> None:
    root = os.environ.get("GLASSNET_DATA")
    if not root or not (Path(root) / "ecg" / "mitdb.csv").is_file():
        pytest.skip("the MIT-BIH ECG file is not available; set GLASSNET_DATA to ../shared/data")


def test_shared_ecg_file_gives_75_windows_4_abnormal():
    shared_ecg_root()
    bundle = load_dataset("ecg", segment="windows")
    summary = bundle.summary()["splits"]
    assert sum(s["size"] for s in summary.values()) == 75
    assert sum(s["class_counts"][1] for s in summary.values()) == 4
    assert all(s["class_counts"][1] >= 1 for s in summary.values())
    assert bundle.spec.input_shape == (100, 1) and bundle.spec.num_outputs == 2


def test_shared_ecg_file_gives_25_beats_1_abnormal():
    shared_ecg_root()
    bundle = load_dataset("ecg")
    assert (bundle.info["r_peaks"], bundle.info["beats"], bundle.info["abnormal_beats"]) == (26, 25, 1)
    summary = bundle.summary()["splits"]
    assert [summary[s]["class_counts"] for s in ("train", "val", "test")] == [[16, 0], [4, 0], [4, 1]]
    assert bundle.spec.input_shape == (200, 1)
    x, y = bundle.test.tensors
    assert x[y == 1][0, 90, 0].item() == pytest.approx(0.905)  # the premature beat's R peak, sample 7080
