"""Fine-tuning a pretrained text encoder as a run: `glassnet train --model bert pretrained=DIR`."""

from __future__ import annotations

import json

import pytest
import torch

import glassnet as gn
from glassnet.cli import main
from glassnet.config import RunConfig
from glassnet.errors import ConfigError
from glassnet.pipeline.training import ENCODER_LR, for_encoder


def test_the_encoder_s_tokenizer_sizes_and_recipe_are_made_explicit(tiny_encoder, reviews_csv):
    config = for_encoder(RunConfig(data=str(reviews_csv), model="bert", pretrained=str(tiny_encoder)))
    assert config.data_args == {"tokenizer": str(tiny_encoder)}
    assert config.model_args["width"] == 16 and config.model_args["layers"] == 2
    assert config.lr == ENCODER_LR
    assert config.finetune == {"probe_epochs": 0, "unfreeze_every": 0, "lr_decay": 0.9}
    own = for_encoder(
        RunConfig(
            data=str(reviews_csv),
            model="bert",
            pretrained=str(tiny_encoder),
            lr=1e-3,
            finetune={"probe_epochs": 1},
            model_args={"dropout": 0.0},
        )
    )
    assert own.lr == 1e-3 and own.finetune["probe_epochs"] == 1 and own.model_args["dropout"] == 0.0
    plain = RunConfig(data=str(reviews_csv), model="lstm")
    assert for_encoder(plain) is plain


def test_another_tokenizer_or_model_is_refused_before_anything_is_read(tiny_encoder, reviews_csv, tmp_path):
    with pytest.raises(ConfigError, match="data.tokenizer=word does not fit"):
        gn.train(
            RunConfig(
                data=str(reviews_csv), model="bert", pretrained=str(tiny_encoder), data_args={"tokenizer": "word"}
            ),
            out=tmp_path / "a",
        )
    with pytest.raises(ConfigError, match="--model bert, not lstm"):
        gn.train(RunConfig(data=str(reviews_csv), model="lstm", pretrained=str(tiny_encoder)), out=tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_run_fine_tunes_the_encoder_and_predicts_new_texts(tiny_encoder, reviews_csv, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["train", "--data", str(reviews_csv), "--model", "bert", f"pretrained={tiny_encoder}", "--epochs", "2",
         "batch_size=8", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    results = json.loads((out / "results" / "train.json").read_text())
    assert results["pretrained"]["loaded_tensors"] == 37  # 5 embedding + 16 per layer x 2; pooler skipped
    assert results["pretrained"]["fresh"] == ["head.1.bias", "head.1.weight"]
    assert "tokenizer: " + str(tiny_encoder) in (out / "config.yaml").read_text()
    # the embeddings moved: every layer trained from the first epoch
    run = gn.Run.open(out)
    from safetensors.torch import load_file

    start = load_file(str(tiny_encoder / "model.safetensors"))["embeddings.word_embeddings.weight"]
    assert not torch.equal(run.model.embeddings.word_embeddings.weight, start)
    texts = tmp_path / "new.csv"
    texts.write_text("text\nit was a great film\nan awful movie\n")
    capsys.readouterr()
    assert main(["predict", str(out), str(texts), "--output", str(tmp_path / "p.json")]) == 0
    predictions = json.loads((tmp_path / "p.json").read_text())
    assert len(predictions) == 2 and {p["prediction"] for p in predictions} <= {"neg", "pos"}


def test_a_fine_tuned_encoder_compresses_to_int8_and_onnx(tiny_encoder, reviews_csv, tmp_path):
    """Two bugs found here: a dynamically quantised copy's embedding tables cannot be indexed (bert now
    calls them), and ONNX Runtime's symbolic shape inference raised a TypeError on the attention mask
    (its pre-processing now falls back to ONNX's own shape inference)."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "run"
    config = RunConfig(data=str(reviews_csv), model="bert", pretrained=str(tiny_encoder), epochs=1, batch_size=8)
    gn.train(config, out=out)
    assert main(["compress", str(out), "--quantize", "int8", "--export", "onnx", "--quiet"]) == 0
    variants = {v["name"]: v for v in json.loads((out / "results" / "compress.json").read_text())["variants"]}
    assert {"int8-torch-dynamic", "onnx-fp32", "int8-ort-static"} <= set(variants)


def test_quantisation_pre_processing_falls_back_when_symbolic_shape_inference_fails(tmp_path):
    from glassnet.compress.quantization import _pre_process

    calls = []

    def pre_process(source, target, skip_symbolic_shape):
        calls.append(skip_symbolic_shape)
        if not skip_symbolic_shape:
            raise TypeError("object of type 'NoneType' has no len()")

    _pre_process(pre_process, tmp_path / "m.onnx", tmp_path / "p.onnx")
    assert calls == [False, True]


def test_a_fine_tuned_encoder_run_is_itself_an_encoder_for_the_next_run(tiny_encoder, reviews_csv, tmp_path):
    first = tmp_path / "first"
    gn.train(RunConfig(data=str(reviews_csv), model="bert", pretrained=str(tiny_encoder), epochs=1), out=first)
    config = for_encoder(RunConfig(data=str(reviews_csv), model="bert", pretrained=str(first)))
    assert config.data_args == {"tokenizer": str(tiny_encoder)} and config.model_args["width"] == 16
    assert config.lr == ENCODER_LR
    second = gn.train(config, out=tmp_path / "second")
    results = json.loads((second.path / "results" / "train.json").read_text())
    assert results["pretrained"]["fresh"] == []  # same classes: the head carries over too
    assert results["pretrained"]["file"].endswith("first/model.safetensors")
