"""`glassnet predict` on raw files for models trained on user files of each modality."""

import numpy as np
import pytest

import glassnet as gn
from glassnet.config import RunConfig
from glassnet.errors import DataError


def train(tmp_path, data, model, **args):
    config = RunConfig(data=str(data), model=model, epochs=2, **args)
    return gn.train(config, out=tmp_path / "run").path


def test_text_run_predicts_lines_of_a_txt_file_and_a_text_column(tmp_path):
    data = tmp_path / "reviews.csv"
    rows = [
        f"{'pos' if i % 2 else 'neg'},{'great fine good' if i % 2 else 'awful bad poor'} item {i}" for i in range(80)
    ]
    data.write_text("label,text\n" + "\n".join(rows) + "\n")
    run = train(tmp_path, data, "gru", model_args={"hidden": 16, "embedding_dim": 8})
    texts = tmp_path / "new.txt"
    texts.write_text("great good\n\nawful poor\n")
    records = gn.predict(run, [str(texts)])
    assert [r["input"] for r in records] == [f"{texts}:1", f"{texts}:3"]
    assert {r["prediction"] for r in records} <= {"neg", "pos"}
    table = tmp_path / "new.csv"
    table.write_text("id,text\n1,great good\n")
    assert len(gn.predict(run, [str(table)])) == 1


def test_sequence_run_predicts_from_the_last_rows_of_a_csv(tmp_path):
    data = tmp_path / "series.csv"
    values = np.sin(np.arange(300) / 5)
    data.write_text("t,level\n" + "".join(f"{i},{v:.5f}\n" for i, v in enumerate(values)))
    run = train(tmp_path, data, "mlp", data_args={"lookback": 12, "horizon": 2})
    history = tmp_path / "recent.csv"
    history.write_text("t,level\n" + "".join(f"{i},{v:.5f}\n" for i, v in enumerate(values[-20:])))
    (record,) = gn.predict(run, [str(history)])
    assert len(record["prediction"]) == 2
    short = tmp_path / "short.csv"
    short.write_text("t,level\n0,1.0\n")
    with pytest.raises(DataError, match="last 12"):
        gn.predict(run, [str(short)])


def test_tabular_run_from_a_csv_predicts_raw_rows_by_column_name(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "patients.csv"
    rows = [f"{x:.3f},{'a' if x > 0 else 'b'},{int(x > 0)}" for x in rng.normal(size=80)]
    data.write_text("score,group,outcome\n" + "\n".join(rows) + "\n")
    run = train(tmp_path, data, "mlp")
    new = tmp_path / "new.csv"
    new.write_text("group,score\na,1.5\nb,-2.0\n")
    records = gn.predict(run, [str(new)])
    assert [r["prediction"] for r in records] == ["1", "0"]
