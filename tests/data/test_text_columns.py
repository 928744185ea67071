"""Text CSVs whose columns have other names: ``data.text=Content data.label=Author``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import glassnet as gn
from glassnet.cli.main import main
from glassnet.config import RunConfig
from glassnet.data import load_dataset
from glassnet.data.text import load_text_csv, looks_like_text_csv
from glassnet.errors import ConfigError, DataError

WORDS = {"austen": "pride prejudice estate", "dickens": "orphan workhouse fog"}


def author_csv(path: Path, n: int = 60) -> Path:
    """``id,Author,Content``: each author's texts share three words, plus one word of their own."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "Author", "Content"])
        for i in range(n):
            author = "austen" if i % 2 else "dickens"
            writer.writerow([i, author, f"{WORDS[author]} w{i}"])
    return path


def test_named_columns_are_read_and_recorded(tmp_path):
    path = author_csv(tmp_path / "authors.csv")
    bundle = load_text_csv(path, text="Content", label="Author")
    assert bundle.spec.class_names == ("austen", "dickens")
    assert bundle.spec.extra["text_column"] == "Content"
    assert bundle.info["text_column"] == "Content" and bundle.info["label_column"] == "Author"
    assert {"pride", "orphan"} <= set(bundle.spec.extra["vocab"])
    plain = tmp_path / "plain.csv"
    plain.write_text("label,text\n" + "".join(f"{a},{w} w{i}\n" for i, (a, w) in enumerate(WORDS.items())) * 10)
    assert "text_column" not in load_text_csv(plain).spec.extra  # model.json of default columns is as before


def test_the_format_is_detected_from_the_named_columns(tmp_path):
    path = author_csv(tmp_path / "authors.csv")
    assert not looks_like_text_csv(path)
    assert looks_like_text_csv(path, text="Content", label="Author")
    bundle = load_dataset(str(path), text="Content", label="Author")  # no data.format=text needed
    assert bundle.spec.modality == "text" and bundle.spec.class_names == ("austen", "dickens")


@pytest.mark.parametrize(
    "options, wrong, option",
    [
        ({"text": "Contnt", "label": "Author"}, "Contnt", "text"),
        ({"text": "Content", "label": "Writer"}, "Writer", "label"),
    ],
)
def test_an_unknown_column_is_one_line_listing_the_columns(tmp_path, options, wrong, option):
    path = author_csv(tmp_path / "authors.csv")
    with pytest.raises(DataError) as info:
        load_text_csv(path, **options)
    message = str(info.value)
    assert "\n" not in message
    assert f"has no '{wrong}' column (data.{option}={wrong}; its columns: 'id', 'Author', 'Content')" in message
    if wrong == "Contnt":
        assert "Did you mean 'Content'?" in message


def test_default_columns_missing_point_to_the_options(tmp_path):
    path = author_csv(tmp_path / "authors.csv")
    with pytest.raises(DataError, match=r"has no 'label' column .*Name the label column with data.label=COLUMN"):
        load_text_csv(path)


@pytest.mark.parametrize("options", [{"text": "Author", "label": "Author"}, {"text": "", "label": "Author"}])
def test_the_same_or_an_empty_column_name_is_refused(tmp_path, options):
    with pytest.raises(ConfigError, match="label and text name the same column|must be the name of a column"):
        load_text_csv(author_csv(tmp_path / "authors.csv"), **options)


def test_config_keys_reach_the_loader_and_a_run_predicts_from_the_same_column(tmp_path, capsys):
    path = author_csv(tmp_path / "authors.csv")
    config = RunConfig(data=str(path)).with_overrides(["data.text=Content", "data.label=Author"])
    assert config.data_args == {"text": "Content", "label": "Author"}
    out = tmp_path / "run"
    command = ["train", "--data", str(path), "--model", "gru", "--epochs", "1", "--out", str(out), "--quiet"]
    options = ["data.text=Content", "data.label=Author", "model.hidden=8", "model.embedding_dim=8", "baseline=false"]
    assert main(command + options) == 0
    capsys.readouterr()
    assert gn.load(out).data().spec.extra["text_column"] == "Content"  # the run rebuilds its data as trained
    new = tmp_path / "new.csv"
    new.write_text("Content\npride prejudice estate\n", encoding="utf-8")
    (record,) = gn.predict(out, [str(new)])
    assert record["prediction"] in ("austen", "dickens")
