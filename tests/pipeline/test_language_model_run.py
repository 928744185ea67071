import json
import os

import pytest

import glassnet as gn


@pytest.mark.skipif(not os.environ.get("GLASSNET_DATA"), reason="needs text/20newsgroups-*.csv.gz: set GLASSNET_DATA")
def test_a_language_model_run_stores_perplexity_and_a_text_sample(tmp_path):
    config = gn.RunConfig(
        data="20newsgroups-chars",
        model="char_transformer",
        epochs=1,
        monitor="val/perplexity",
        data_args={"max_chars": 20000, "max_test_chars": 5000, "context": 32},
        model_args={"d_model": 16, "heads": 2, "layers": 1},
    )
    run = gn.train(config, out=tmp_path / "lm")
    result = json.loads(run.result_file("train").read_text())
    assert {"perplexity", "bits_per_char"} <= set(result["test"])
    assert result["sample"]["text"].startswith("the ") and len(result["sample"]["text"]) == 204
    html = gn.report(run.path).read_text()
    assert "<h2>Generated text</h2>" in html and "<h2>Test predictions</h2>" not in html
