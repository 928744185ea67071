"""Format detection for user files: each path goes to the loader that recognises it."""

import numpy as np
import pytest

from glassnet.data import list_formats, load_dataset
from glassnet.errors import DataError, UnknownNameError


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    text = tmp_path / "reviews.csv"
    text.write_text("label,text\n" + "".join(f"{'pos' if i % 2 else 'neg'},word{i % 2} and more\n" for i in range(40)))
    series = tmp_path / "sales.csv"
    series.write_text("date,units\n" + "".join(f"2020-01-{1 + i % 28:02d}T{i // 28:02d}:00,{i}\n" for i in range(200)))
    table = tmp_path / "patients.csv"
    rows = [f"{x:.3f},{y:.3f},{int(x > 0)}" for x, y in rng.normal(size=(60, 2))]
    table.write_text("age,weight,outcome\n" + "\n".join(rows) + "\n")
    unknown = tmp_path / "notes.xyz"
    unknown.write_text("?")
    return {"text": text, "series": series, "table": table, "unknown": unknown}


def test_each_csv_goes_to_the_format_that_recognises_it(files):
    assert load_dataset(str(files["text"])).spec.modality == "text"
    assert load_dataset(str(files["series"]), lookback=5).spec.modality == "sequence"
    assert load_dataset(str(files["table"])).spec.modality == "tabular"


def test_the_tabular_fallback_is_tried_last_whatever_the_registration_order():
    names = [f.name for f in sorted(list_formats(), key=lambda f: f.fallback)]
    assert names[-1] == "tabular" and {"text", "timeseries", "images"} <= set(names)


def test_format_option_overrides_detection(files):
    bundle = load_dataset(str(files["text"]), format="tabular", target="label")
    assert bundle.spec.modality == "tabular"


def test_unknown_format_name_suggests(files):
    with pytest.raises(UnknownNameError, match="Did you mean 'text'"):
        load_dataset(str(files["text"]), format="txt")


def test_unrecognised_path_lists_the_formats(files):
    with pytest.raises(DataError, match=r"cannot tell the format.*data\.format=NAME"):
        load_dataset(str(files["unknown"]))
