"""Tests of the tabular CSV loader on small generated tables (no shared data needed)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glassnet.data.tabular  # noqa: F401  (registers the "tabular" format before the integrator wires it)
from glassnet.data import DataSpec, load_dataset, stratified_split
from glassnet.data.registry import list_formats
from glassnet.data.tabular import encode_frame, load_tabular, looks_tabular, read_csv_inputs
from glassnet.errors import ConfigError, DataError

# --------------------------------------------------------------------------- fixtures


def write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def mixed_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Numbers, a category and missing values in both; the outcome depends on income and colour."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "age": rng.normal(40, 10, n).round(1),
            "colour": rng.choice(["red", "green", "blue"], n),
            "income": rng.normal(50_000, 10_000, n).round(0),
        }
    )
    frame.loc[::7, "age"] = np.nan
    frame.loc[::11, "colour"] = None
    frame["outcome"] = np.where((frame["income"] > 50_000) ^ (frame["colour"] == "red"), "yes", "no")
    return frame


def separable_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Three classes, each a cluster of two numbers far apart, plus a categorical hint and noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    points = 100 + 10 * (centres[y] + rng.normal(0, 0.6, (n, 2)))
    return pd.DataFrame(
        {
            "x1": points[:, 0].round(2),
            "x2": points[:, 1].round(2),
            "shade": np.array(["light", "medium", "dark"])[y],
            "noise": rng.normal(0, 1, n).round(3),
            "outcome": np.array(["ant", "bee", "cat"])[y],
        }
    )


def to_csv(frame: pd.DataFrame, tmp_path: Path, name: str = "table.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def numeric_table(rows: int = 40, bad: dict[int, str] | None = None) -> str:
    """A header and ``rows`` data rows ``a,b,cls``; ``bad`` replaces column a of some data rows (1-based)."""
    lines = ["a,b,cls"]
    for r in range(1, rows + 1):
        a = (bad or {}).get(r, str(r * 1.5))
        lines.append(f"{a},{r % 7},{'x' if r % 2 else 'z'}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- bad input


def test_empty_file_names_the_file(tmp_path):
    path = write(tmp_path, "", "empty.csv")
    with pytest.raises(DataError, match=r"'.*empty\.csv' is empty; a table needs a header line"):
        load_tabular(path)


def test_header_only_names_the_file_and_asks_for_rows(tmp_path):
    path = write(tmp_path, "age,colour,outcome\n\n", "header.csv")
    with pytest.raises(DataError, match=r"header\.csv' has a header \(line 1\) but no data rows"):
        load_tabular(path)


def test_missing_target_column_lists_the_columns_and_the_closest_name(tmp_path):
    path = to_csv(mixed_frame(), tmp_path, "patients.csv")
    with pytest.raises(DataError, match=r"patients\.csv' has no column 'outcomes' \(target\)") as info:
        load_tabular(path, target="outcomes")
    assert "Did you mean 'outcome'?" in str(info.value)
    assert "id, age, colour, income, outcome" in str(info.value)


def test_text_in_a_numeric_column_names_column_row_line_and_value(tmp_path):
    path = write(tmp_path, numeric_table(bad={17: "abc"}))
    with pytest.raises(DataError) as info:
        load_tabular(path, target="cls")
    message = str(info.value)
    assert "table.csv' column 'a' row 17 (line 18) holds 'abc', which is not a number" in message
    assert "categorical=['a']" in message


def test_a_column_listed_as_categorical_may_hold_text_among_numbers(tmp_path):
    path = write(tmp_path, numeric_table(bad={17: "abc"}))
    bundle = load_tabular(path, target="cls", categorical=["a"])
    assert "a=abc" in bundle.spec.feature_names and "b" in bundle.spec.feature_names


def test_error_lines_count_blank_lines_and_quoted_line_breaks(tmp_path):
    rows = numeric_table(rows=30).splitlines()
    rows[3] = rows[3].replace(",x", ',"x\ny"').replace(",z", ',"z\ny"')  # data row 3 spans two lines
    rows.insert(5, "")  # a blank line after data row 4
    rows[12] = "oops," + rows[12].split(",", 1)[1]  # data row 11 -> line 14 (+1 quote, +1 blank)
    path = write(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"column 'a' row 11 \(line 14\) holds 'oops'"):
        load_tabular(path, target="cls", task="classify")


@pytest.mark.parametrize(
    ("line", "seen"),
    [("1,2,x,9", 4), ("1,2", 2)],
    ids=["too-many-fields", "too-few-fields"],
)
def test_rows_of_different_lengths_name_the_line(tmp_path, line, seen):
    rows = numeric_table(rows=10).splitlines()
    rows[6] = line  # file line 7
    path = write(tmp_path, "\n".join(rows) + "\n", "ragged.csv")
    with pytest.raises(DataError, match=rf"ragged\.csv' line 7 has {seen} fields; the header has 3"):
        load_tabular(path)


def test_pandas_parser_errors_become_data_errors_naming_the_file(tmp_path):
    from glassnet.data.tabular import _parser_error

    error = _parser_error(
        "x.csv", ValueError("Error tokenizing data. C error: Expected 3 fields in line 5, saw 4"), ","
    )
    assert isinstance(error, DataError)
    assert str(error).startswith("'x.csv' line 5 has 4 fields; the header has 3")
    path = write(tmp_path, 'a,b,cls\n1,2,x\n3,4,"y\n5,6,z\n', "quote.csv")  # pandas: EOF inside string
    with pytest.raises(DataError, match=r"quote\.csv' line 3 opens a quote \(\"\) that is never closed"):
        load_tabular(path)
    path = write(tmp_path, 'a,b,cls\n1,2,x\n3,"4,y\n5,6,z\n', "quote2.csv")
    with pytest.raises(DataError, match=r"quote2\.csv' line 3 has 2 fields.*quote \(\"\) opened on line 3"):
        load_tabular(path)


def test_infinity_names_the_row_and_column(tmp_path):
    path = write(tmp_path, numeric_table(bad={5: "inf"}), "inf.csv")
    with pytest.raises(DataError, match=r"inf\.csv' column 'a' row 5 \(line 6\) holds 'inf' \(infinite\)"):
        load_tabular(path)


def test_infinity_in_the_target_names_the_row(tmp_path):
    frame = pd.DataFrame({"x": np.arange(30.0), "y": np.linspace(0, 1, 30)})
    frame.loc[9, "y"] = -np.inf
    path = to_csv(frame, tmp_path)
    with pytest.raises(DataError, match=r"column 'y' row 10 \(line 11\) holds '-inf'"):
        load_tabular(path)


def test_missing_target_values_name_the_rows(tmp_path):
    frame = mixed_frame()
    frame.loc[[3, 8], "outcome"] = None
    path = to_csv(frame, tmp_path)
    with pytest.raises(DataError) as info:
        load_tabular(path)
    message = str(info.value)
    assert "table.csv' target column 'outcome' is empty in 2 row(s): row 4 (line 5), row 9 (line 10)" in message
    assert "fill in the target or remove those rows" in message


def test_a_single_class_is_a_data_error(tmp_path):
    frame = mixed_frame().assign(outcome="yes")
    path = to_csv(frame, tmp_path, "one.csv")
    with pytest.raises(DataError, match=r"one\.csv' target column 'outcome' has a single class \('yes'\)"):
        load_tabular(path)


def test_too_many_categories_suggests_dropping_the_column(tmp_path):
    frame = mixed_frame().assign(name=[f"person{i}" for i in range(120)])
    path = to_csv(frame, tmp_path)
    with pytest.raises(DataError) as info:
        load_tabular(path, target="outcome", max_categories=50)
    message = str(info.value)
    assert "table.csv' column 'name' has " in message and "more than max_categories=50" in message
    assert "drop=['name']" in message
    assert load_tabular(path, target="outcome", drop=["name"]).spec.input_shape == (8,)


def test_unknown_option_is_a_config_error_listing_the_options(tmp_path):
    path = to_csv(mixed_frame(), tmp_path)
    with pytest.raises(ConfigError, match=r"format 'tabular' has no option 'bogus'.*target, task, categorical"):
        load_dataset(str(path), format="tabular", bogus=1)
    with pytest.raises(ConfigError, match="has no option 'bogus'"):
        load_dataset(str(path), bogus=1)


def test_bad_option_values_are_config_errors(tmp_path):
    path = to_csv(mixed_frame(), tmp_path)
    with pytest.raises(ConfigError, match=r"task must be one of auto, classify, regress. Received: task='clasify'"):
        load_tabular(path, task="clasify")
    with pytest.raises(ConfigError, match=r"max_categories must be an integer >= 1. Received: max_categories=0"):
        load_tabular(path, max_categories=0)
    with pytest.raises(ConfigError, match="drop lists 'outcome', the target column"):
        load_tabular(path, drop=["outcome"])
    with pytest.raises(DataError, match=r"has no column 'ID' \(drop\). Did you mean 'id'\?"):
        load_tabular(path, drop="ID")


def test_bad_headers_name_the_column(tmp_path):
    with pytest.raises(DataError, match=r"dup\.csv' has two columns named 'a'"):
        load_tabular(write(tmp_path, "a,b,a\n1,2,3\n", "dup.csv"))
    with pytest.raises(DataError, match=r"noname\.csv' column 2 has no name in the header \(line 1\)"):
        load_tabular(write(tmp_path, "a,,c\n1,2,3\n", "noname.csv"))
    with pytest.raises(DataError, match=r"semi\.csv' has a single column 'a;b;c'.*delimited"):
        load_tabular(write(tmp_path, "a;b;c\n1;2;3\n", "semi.csv"))


def test_an_empty_column_and_a_text_regression_target_are_data_errors(tmp_path):
    frame = mixed_frame().assign(notes=None)
    path = to_csv(frame, tmp_path)
    with pytest.raises(DataError, match=r"column 'notes' is empty in every row; drop it with drop=\['notes'\]"):
        load_tabular(path, target="outcome")
    path = to_csv(mixed_frame(), tmp_path)
    with pytest.raises(DataError, match=r"column 'outcome' row 1 \(line 2\) holds '(yes|no)'.*set task=classify"):
        load_tabular(path, task="regress")


def test_a_class_too_rare_to_split_names_it(tmp_path):
    frame = mixed_frame()
    frame.loc[5, "outcome"] = "maybe"
    path = to_csv(frame, tmp_path)
    with pytest.raises(DataError, match=r"target column 'outcome' cannot be split.*'maybe' \(1 rows\)"):
        load_tabular(path)


def test_a_bad_file_fails_before_the_run_directory_is_written(tmp_path):
    import glassnet

    path = write(tmp_path, numeric_table(bad={3: "abc"}))
    out = tmp_path / "run"
    with pytest.raises(DataError, match="column 'a' row 3"):
        glassnet.train(glassnet.RunConfig(data=str(path), model="mlp", epochs=1), out=out)
    assert not out.exists()


# --------------------------------------------------------------------------- happy paths


def test_mixed_columns_with_missing_values(tmp_path):
    path = to_csv(mixed_frame(), tmp_path, "patients.csv")
    bundle = load_tabular(path, drop=["id"])
    spec = bundle.spec
    assert spec.modality == "tabular" and spec.task == "classify" and spec.class_names == ("no", "yes")
    assert spec.feature_names == (
        "age",
        "age_missing",
        "colour=<missing>",
        "colour=blue",
        "colour=green",
        "colour=red",
        "income",
    )
    assert spec.input_shape == (7,) and spec.name == "patients"
    assert [len(bundle.train), len(bundle.val), len(bundle.test)] == [84, 18, 18]
    x = np.concatenate([bundle.split(s).tensors[0].numpy() for s in ("train", "val", "test")])
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x[:, 2:6].sum(axis=1), 1)  # every row has exactly one colour
    assert x[:, 1].sum() == mixed_frame()["age"].isna().sum()  # indicator marks each missing age
    assert x[:, 6].max() > 10_000  # natural units: standardisation is the model's first layer
    assert bundle.info["target"] == "outcome" and bundle.info["target_chosen"] == "the last column"
    assert bundle.info["dropped_columns"] == ["id"] and bundle.info["categorical_columns"] == ["colour"]


def test_imputation_and_categories_are_fitted_on_the_training_rows_only(tmp_path):
    n = 100
    y = np.arange(n) % 2
    train, val, test = stratified_split(y, 0.15, 0.15, 0, True)
    held_out = np.concatenate([val, test])
    x = np.zeros(n)
    x[train] = np.arange(len(train)) + 1.0  # train values 1..70: median 35.5
    x[held_out] = 1000.0 + np.arange(len(held_out))  # the full-file median would be much higher
    frame = pd.DataFrame({"x": x, "c": "seen", "y": y})
    frame.loc[held_out, "c"] = "only-in-test"
    frame.loc[[train[0], val[0], test[0]], "x"] = np.nan
    bundle = load_tabular(to_csv(frame, tmp_path))
    column = bundle.spec.extra["tabular"]["columns"][0]
    train_median = float(np.median(np.delete(x[train], 0)))
    assert column["median"] == pytest.approx(train_median)
    assert train_median != pytest.approx(float(np.nanmedian(frame["x"])))
    assert bundle.spec.feature_names == ("x", "x_missing", "c=seen")
    for split in ("val", "test"):
        inputs = bundle.split(split).tensors[0].numpy()
        imputed = inputs[inputs[:, 1] == 1]
        assert len(imputed) == 1 and imputed[0, 0] == pytest.approx(train_median)
        np.testing.assert_array_equal(inputs[:, 2], 0)  # a category unseen in train: all-zero group


def test_unseen_category_at_predict_time_is_all_zero(tmp_path):
    bundle = load_tabular(to_csv(mixed_frame(), tmp_path), drop=["id"])
    rows = pd.DataFrame({"age": ["30", None], "colour": ["purple", "red"], "income": [60_000, "41000"]})
    x = encode_frame(rows, bundle.spec, "new rows")
    median = bundle.spec.extra["tabular"]["columns"][0]["median"]
    np.testing.assert_allclose(x[0], [30, 0, 0, 0, 0, 0, 60_000])
    np.testing.assert_allclose(x[1], [median, 1, 0, 0, 0, 1, 41_000])


def test_read_csv_inputs_encodes_rows_and_labels_them_by_line(tmp_path):
    bundle = load_tabular(to_csv(mixed_frame(), tmp_path), drop=["id"])
    path = write(tmp_path, "income,colour,age\n60000,purple,30\n\n41000,red,\n", "new.csv")
    x, labels = read_csv_inputs(path, bundle.spec)
    assert x.shape == (2, 7) and x.dtype == np.float32
    assert labels == [f"{path}:2", f"{path}:4"]
    np.testing.assert_allclose(x[0], [30, 0, 0, 0, 0, 0, 60_000])


def test_predict_inputs_missing_a_feature_column_or_holding_text_are_data_errors(tmp_path):
    bundle = load_tabular(to_csv(mixed_frame(), tmp_path), drop=["id"])
    path = write(tmp_path, "age,colour\n30,red\n", "few.csv")
    with pytest.raises(DataError, match=r"few\.csv' has no column 'income'; the model needs the columns age, colour"):
        read_csv_inputs(path, bundle.spec)
    path = write(tmp_path, "age,colour,income\n30,red,1\n31,red,lots\n", "text.csv")
    with pytest.raises(DataError, match=r"text\.csv' column 'income' row 2 \(line 3\) holds 'lots'"):
        read_csv_inputs(path, bundle.spec)
    plain = DataSpec(modality="tabular", input_shape=(7,), task="classify", num_outputs=2)
    with pytest.raises(DataError, match="not trained on a CSV table"):
        read_csv_inputs(path, plain)


def test_the_recipe_survives_json_and_encodes_the_same(tmp_path):
    bundle = load_tabular(to_csv(mixed_frame(), tmp_path), drop=["id"])
    restored = DataSpec.from_dict(json.loads(json.dumps(bundle.spec.to_dict())))
    assert restored == bundle.spec
    frame = mixed_frame()
    np.testing.assert_array_equal(encode_frame(frame, restored, "a"), encode_frame(frame, bundle.spec, "b"))


def test_a_float_target_is_detected_as_regression(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    frame = pd.DataFrame({"u": x[:, 0], "v": x[:, 1], "price": 100 + 20 * x[:, 0] + rng.normal(0, 1, 150)})
    bundle = load_tabular(to_csv(frame, tmp_path))
    assert bundle.spec.task == "regress" and bundle.spec.num_outputs == 1 and bundle.spec.class_names == ()
    assert bundle.train.tensors[1].shape == (len(bundle.train), 1)
    assert bundle.spec.target_mean[0] == pytest.approx(bundle.train.tensors[1].mean().item(), rel=1e-5)
    assert bundle.info["task_chosen"] == "auto: numeric target"


def test_integer_targets_are_classes_up_to_twenty_values(tmp_path):
    frame = pd.DataFrame({"u": np.arange(300.0), "grade": np.arange(300) % 3 + 1})
    bundle = load_tabular(to_csv(frame, tmp_path))
    assert bundle.spec.task == "classify" and bundle.spec.class_names == ("1", "2", "3")
    assert bundle.info["task_chosen"] == "auto: integer target with 3 values"
    frame["grade"] = np.arange(300) % 30
    assert load_tabular(to_csv(frame, tmp_path)).spec.task == "regress"


def test_numeric_class_names_sort_as_numbers(tmp_path):
    frame = pd.DataFrame({"u": np.arange(120.0), "code": np.array([2, 10, 1])[np.arange(120) % 3]})
    bundle = load_tabular(to_csv(frame, tmp_path))
    assert bundle.spec.class_names == ("1", "2", "10")


def test_task_can_be_forced(tmp_path):
    frame = pd.DataFrame({"u": np.arange(300.0), "stars": np.arange(300) % 5 + 1})
    path = to_csv(frame, tmp_path)
    bundle = load_tabular(path, task="regress")
    assert bundle.spec.task == "regress" and bundle.info["task_chosen"] == "task=regress"
    frame["stars"] = frame["stars"] / 2
    bundle = load_tabular(to_csv(frame, tmp_path), task="classify")
    assert bundle.spec.task == "classify" and bundle.spec.class_names == ("0.5", "1", "1.5", "2", "2.5")


def test_the_target_defaults_to_a_conventional_name_then_the_last_column(tmp_path):
    frame = pd.DataFrame({"Label": ["a", "b"] * 30, "u": np.arange(60.0), "v": np.arange(60.0) % 4})
    bundle = load_tabular(to_csv(frame, tmp_path))
    assert bundle.info["target"] == "Label" and bundle.info["target_chosen"] == "the column named 'Label'"
    assert bundle.spec.feature_names == ("u", "v")
    bundle = load_tabular(to_csv(frame.rename(columns={"Label": "kind"}), tmp_path))
    assert bundle.info["target"] == "v" and bundle.info["target_chosen"] == "the last column"


def test_tsv_and_gzip_files_are_read(tmp_path):
    frame = mixed_frame()
    tsv = tmp_path / "patients.tsv"
    frame.to_csv(tsv, sep="\t", index=False)
    gz = tmp_path / "patients.csv.gz"
    with gzip.open(gz, "wt") as handle:
        frame.to_csv(handle, index=False)
    semi = tmp_path / "patients.txt"
    frame.to_csv(semi, sep=";", index=False)
    shapes = {p.name: load_tabular(p, drop="id").spec.feature_names for p in (tsv, gz, semi)}
    assert len(set(shapes.values())) == 1 and len(shapes[gz.name]) == 7
    assert load_tabular(gz).spec.name == "patients"


def test_blank_lines_and_missing_markers_are_skipped(tmp_path):
    body = "".join(
        f"{'?' if i % 4 == 0 else i},{'NA' if i % 3 == 0 else 'ab'[i % 2]},{'pq'[i % 2]}\n" for i in range(40)
    )
    bundle = load_tabular(write(tmp_path, "u,c,y\n1,a,p\n\n  \n" + body))
    assert bundle.info["empty_rows_skipped"] == 2 and bundle.info["rows"] == 41
    assert bundle.spec.feature_names == ("u", "u_missing", "c=<missing>", "c=a", "c=b")


def test_detection_claims_table_files_only(tmp_path):
    for name in ("a.csv", "b.tsv", "c.txt", "d.csv.gz", "E.CSV"):
        assert looks_tabular(write(tmp_path, "x,y\n1,2\n", name)), name
    assert not looks_tabular(write(tmp_path, "{}", "f.json"))
    assert not looks_tabular(tmp_path)
    assert "tabular" in [f.name for f in list_formats()]


def test_same_split_seed_gives_the_same_split(tmp_path):
    path = to_csv(mixed_frame(), tmp_path)
    a, b, c = load_tabular(path, split_seed=3), load_tabular(path, split_seed=3), load_tabular(path, split_seed=4)
    for split in ("train", "val", "test"):
        for left, right in zip(a.split(split).tensors, b.split(split).tensors):
            assert left.equal(right)
    assert not a.test.tensors[0].equal(c.test.tensors[0])


def test_train_end_to_end_on_a_generated_csv(tmp_path):
    import glassnet

    path = to_csv(separable_frame(), tmp_path, "insects.csv")
    config = glassnet.RunConfig(data=str(path), model="mlp", epochs=5, device="cpu")
    run = glassnet.train(config, out=tmp_path / "run")
    results = json.loads((run.results_dir / "train.json").read_text())
    assert results["test"]["accuracy"] >= 0.95
    assert results["data"]["target"] == "outcome" and results["data"]["format"] == "tabular"
    spec = json.loads(run.model_json.read_text())
    assert "tabular" in json.dumps(spec)  # the recipe travels with the model for predict


@pytest.mark.slow
def test_wine_table_trains_an_mlp_to_ninety_percent(tmp_path):
    from sklearn.datasets import load_wine

    import glassnet

    raw = load_wine(as_frame=True)
    frame = raw.frame.assign(target=raw.target_names[raw.target])
    path = to_csv(frame, tmp_path, "wine.csv")
    config = glassnet.RunConfig(data=str(path), model="mlp", epochs=20, batch_size=32, device="cpu")
    run = glassnet.train(config, out=tmp_path / "run")
    results = json.loads((run.results_dir / "train.json").read_text())
    assert results["data"]["class_names"] == ["class_0", "class_1", "class_2"]
    assert results["test"]["accuracy"] >= 0.9
