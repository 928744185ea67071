"""``bert``: BERT's module tree and names, pretrained loading, masking, and the encoder's checks."""

from __future__ import annotations

import json

import pytest
import torch

from glassnet.data import DataSpec
from glassnet.data.encoders import encoder_files
from glassnet.errors import ConfigError
from glassnet.models import create_model
from glassnet.models.bert import encoder_for, encoder_hparams
from glassnet.train.finetune import layer_groups, load_pretrained

SIZES = {"width": 16, "layers": 2, "heads": 2, "ff": 32, "max_positions": 32}


def spec(length=12, classes=3, vocab=20):
    return DataSpec(
        name="t",
        modality="text",
        task="classify",
        input_shape=(length,),
        num_outputs=classes,
        class_names=tuple("abc"[:classes]),
        extra={"vocab": [f"t{i}" for i in range(vocab)], "pad_index": 0},
    )


def test_parameter_names_are_bert_s_own():
    names = set(create_model("bert", spec(), **SIZES).state_dict())
    for name in (
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "encoder.layer.1.attention.self.query.weight",
        "encoder.layer.1.attention.output.dense.bias",
        "encoder.layer.1.attention.output.LayerNorm.bias",
        "encoder.layer.1.intermediate.dense.weight",
        "encoder.layer.1.output.dense.weight",
        "encoder.layer.1.output.LayerNorm.weight",
    ):
        assert name in names


def test_padding_does_not_change_a_text_s_output():
    torch.manual_seed(0)
    model = create_model("bert", spec(length=12), **SIZES).eval()
    short = torch.tensor([[2, 5, 7, 3] + [0] * 8])
    model_long = create_model("bert", spec(length=20), **SIZES).eval()
    model_long.load_state_dict(model.state_dict())
    longer = torch.tensor([[2, 5, 7, 3] + [0] * 16])
    with torch.no_grad():
        assert torch.allclose(model(short), model_long(longer), atol=1e-5)
        other = torch.tensor([[2, 5, 7, 3] + [9] * 8])  # the same start with real tokens after it differs
        assert not torch.allclose(model(short), model(other), atol=1e-3)
        assert torch.isfinite(model(torch.zeros(2, 12, dtype=torch.long))).all()  # padding alone


def test_cls_pooling_reads_the_first_token():
    torch.manual_seed(0)
    model = create_model("bert", spec(), pooling="cls", **SIZES).eval()
    x = torch.tensor([[2, 5, 7, 3] + [0] * 8])
    with torch.no_grad():
        hidden = model.encoder(model.embeddings(x), (x != 0)[:, None, None, :])
        assert torch.allclose(model.encode(x), hidden[:, 0])


def test_layer_groups_run_from_embeddings_through_each_layer_to_the_head():
    model = create_model("bert", spec(), **SIZES)
    groups = layer_groups(model)
    assert len(groups) == 4 and groups[0] == [model.embeddings] and groups[-1] == [model.head]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"heads": 3}, "heads must divide width"),
        ({"max_positions": 8}, "data.max_length=8"),
        ({"pooling": "max"}, "pooling"),
    ],
)
def test_sizes_that_do_not_fit_are_refused(args, match):
    with pytest.raises(ConfigError, match=match):
        create_model("bert", spec(), **{**SIZES, **args})


def test_a_hugging_face_checkpoint_loads_by_name_skipping_its_pooler(tiny_encoder):
    files = encoder_files(tiny_encoder)
    hparams = encoder_hparams(files)
    assert hparams == {"width": 16, "layers": 2, "heads": 2, "ff": 32, "max_positions": 32, "type_vocab": 2}
    model = create_model("bert", spec(vocab=20), **hparams)
    result = load_pretrained(model, tiny_encoder)
    assert result.fresh == ["head.1.bias", "head.1.weight"]
    from safetensors.torch import load_file

    state = load_file(str(files.weights))
    assert torch.equal(
        model.state_dict()["encoder.layer.1.output.dense.weight"], state["encoder.layer.1.output.dense.weight"]
    )
    assert "pooler.dense.weight" in state and not hasattr(model, "pooler")


def test_other_architectures_and_models_are_refused(tiny_encoder, write_encoder, tmp_path):
    assert encoder_for("bert", "") is None and encoder_for("bert", str(tmp_path)) is None
    with pytest.raises(ConfigError, match="--model bert, not lstm"):
        encoder_for("lstm", str(tiny_encoder))
    config = json.loads((tiny_encoder / "config.json").read_text())
    roberta = write_encoder(tmp_path / "roberta", config={**config, "model_type": "roberta"})
    with pytest.raises(ConfigError, match="roberta encoder.*BERT-architecture"):
        encoder_for("bert", str(roberta))
    del config["hidden_size"]
    sizeless = write_encoder(tmp_path / "sizeless", config=config)
    with pytest.raises(ConfigError, match="lacks hidden_size"):
        encoder_for("bert", str(sizeless))


def test_attention_dropout_follows_dropout_unless_set_and_is_checked():
    default = create_model("bert", spec(), dropout=0.2, **SIZES)
    assert default.encoder.layer[0].attention.self.p == 0.2
    own = create_model("bert", spec(), dropout=0.2, attention_dropout=0.0, **SIZES)
    assert own.encoder.layer[0].attention.self.p == 0.0
    assert own.encoder.layer[0].output.dropout.p == 0.2
    with pytest.raises(ConfigError, match="attention_dropout"):
        create_model("bert", spec(), attention_dropout=1.0, **SIZES)


def test_attention_with_dropout_on_a_cpu_computes_what_the_fused_kernel_does(monkeypatch):
    """With dropout, a CPU computes attention itself (the fused kernel drops nothing); with the mask
    replaced by the identity it must give the fused kernel's result, padding masked out."""
    import glassnet.models.layers as layers_module

    torch.manual_seed(0)
    model = create_model("bert", spec(), dropout=0.0, attention_dropout=0.3, **SIZES)
    x = torch.tensor([[2, 5, 7, 3] + [0] * 8, [4, 4, 9, 1, 2, 6, 8, 3, 3, 2, 1, 5]])
    with torch.no_grad():
        fused = model.eval()(x)
        monkeypatch.setattr(layers_module, "fast_dropout", lambda weights, p, training=True: weights)
        assert torch.allclose(model.train()(x), fused, atol=1e-5)
        monkeypatch.undo()
        torch.manual_seed(1)
        dropped = model(x)
    assert not torch.allclose(dropped, fused, atol=1e-3)  # the weights are dropped in training
