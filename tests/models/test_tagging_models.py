"""Many-to-many heads (task ``tag``): every tagging model, the ``tag`` task's loss, metrics and decoding."""

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from glassnet.data import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.models import create_model, list_models, load_model, model_info, save_model
from glassnet.train import get_task
from glassnet.train.tagging import IGNORE_INDEX, Tagging, per_tag_scores, tag_metrics

VOCAB = ["<pad>", "<unk>", "a", "b", "c", "d"]
TEXT_TAG = DataSpec(
    modality="text", input_shape=(7,), task="tag", num_outputs=3, class_names=("lower", "upper", "other"),
    extra={"vocab": VOCAB, "pad_index": 0, "unk_index": 1, "ignore_index": IGNORE_INDEX}, name="chars",
)  # fmt: skip
SEQUENCE_TAG = DataSpec(
    modality="sequence", input_shape=(10, 2), task="tag", num_outputs=4,
    input_mean=(0.0, 5.0), input_std=(1.0, 2.0), name="beats",
)  # fmt: skip
SPECS = {"text": TEXT_TAG, "sequence": SEQUENCE_TAG}
TAGGERS = [name for name in list_models() if "tag" in model_info(name).tasks]


def example_inputs(spec, n=4):
    if spec.modality == "text":
        tokens = torch.randint(2, len(VOCAB), (n, *spec.input_shape))
        lengths = torch.tensor([7, 3, 1, 5][:n])
        return tokens.masked_fill(torch.arange(spec.input_shape[0])[None, :] >= lengths[:, None], 0)
    return torch.rand(n, *spec.input_shape)


def test_the_recurrent_family_and_the_transformer_tag():
    assert set(TAGGERS) == {"rnn", "lstm", "gru", "transformer"}


@pytest.mark.parametrize("modality", SPECS)
@pytest.mark.parametrize("name", TAGGERS)
def test_tagger_forward_backward_finite_and_round_trip(name, modality, tmp_path):
    spec = SPECS[modality]
    torch.manual_seed(0)
    model = create_model(name, spec)
    x = example_inputs(spec)
    out = model(x)
    assert out.shape == (4, spec.input_shape[0], spec.num_outputs)  # one prediction per step
    assert torch.isfinite(out).all()

    targets = torch.randint(0, spec.num_outputs, out.shape[:2])
    get_task("tag").loss(out, targets).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    save_model(model, spec, tmp_path)
    loaded, loaded_spec = load_model(tmp_path)
    assert loaded_spec == spec
    model.eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", TAGGERS)
def test_padding_never_changes_the_tags_of_real_steps(name):
    torch.manual_seed(0)
    model = create_model(name, TEXT_TAG).eval()
    alone = torch.tensor([[2, 3, 4]])
    padded = torch.tensor([[2, 3, 4, 0, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(model(padded)[:, :3], model(alone), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_recurrent_taggers_read_both_ways_by_default(name):
    tagger = create_model(name, TEXT_TAG)
    assert tagger.rnn.bidirectional
    # a later step changes an earlier step's tag only when the model also reads backwards
    x = torch.tensor([[2, 3, 4, 5]])
    changed = torch.tensor([[2, 3, 4, 2]])
    tagger.eval()
    with torch.no_grad():
        assert not torch.allclose(tagger(x)[0, 0], tagger(changed)[0, 0])
    forward_only = create_model(name, TEXT_TAG, bidirectional=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(forward_only(x)[0, :3], forward_only(changed)[0, :3])


def test_plain_rnn_stays_one_directional_for_whole_sequence_tasks():
    classify = DataSpec(**{**TEXT_TAG.to_dict(), "task": "classify"})
    assert not create_model("rnn", classify).rnn.bidirectional
    assert create_model("rnn", classify, bidirectional=True).rnn.bidirectional
    assert create_model("rnn", TEXT_TAG).glassnet_arch["hparams"]["bidirectional"] is None  # resolved per spec


def test_transformer_tagger_ignores_the_cls_pool():
    model = create_model("transformer", TEXT_TAG, pool="cls", d_model=16, heads=2)
    assert model.cls is None
    assert model(example_inputs(TEXT_TAG)).shape == (4, 7, 3)


def test_models_that_cannot_tag_name_those_that_can():
    with pytest.raises(ConfigError, match="Models that fit it: gru, lstm, rnn, transformer"):
        create_model("cnn1d", SEQUENCE_TAG)


# ---------------------------------------------------------------- the tag task


def logits_and_targets(seed=0, n=6, steps=9, tags=3):
    generator = torch.Generator().manual_seed(seed)
    outputs = torch.randn(n, steps, tags, generator=generator)
    targets = torch.randint(0, tags, (n, steps), generator=generator)
    lengths = torch.tensor([9, 4, 1, 7, 9, 2])[:n]
    targets[torch.arange(steps)[None, :] >= lengths[:, None]] = IGNORE_INDEX
    return outputs, targets


def test_the_loss_skips_padding_steps():
    task = get_task("tag")
    outputs, targets = logits_and_targets()
    changed = outputs.clone()
    changed[targets == IGNORE_INDEX] = 100.0  # anything at padding
    assert task.loss(changed, targets) == task.loss(outputs, targets)
    valid = targets != IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(outputs[valid], targets[valid])
    torch.testing.assert_close(task.loss(outputs, targets), expected)


def test_metrics_match_scikit_learn_over_the_tagged_steps():
    outputs, targets = logits_and_targets()
    metrics = get_task("tag").metrics(outputs, targets)
    valid = targets != IGNORE_INDEX
    true, predicted = targets[valid].numpy(), outputs.argmax(dim=2)[valid].numpy()
    assert metrics["accuracy"] == pytest.approx(accuracy_score(true, predicted))
    assert metrics["macro_f1"] == pytest.approx(f1_score(true, predicted, average="macro"))
    whole = [bool(((outputs.argmax(2)[i] == targets[i]) | ~valid[i]).all()) for i in range(len(targets))]
    assert metrics["sequence_accuracy"] == pytest.approx(sum(whole) / len(whole))
    assert set(metrics) == {"loss", "accuracy", "macro_f1", "sequence_accuracy"}


def test_macro_f1_counts_only_tags_that_occur():
    targets = torch.tensor([[0, 0, 1, IGNORE_INDEX]])
    predicted = torch.tensor([[0, 1, 1, 2]])  # tag 2 only at padding: it never occurs
    assert tag_metrics(predicted, targets, 3)["macro_f1"] == pytest.approx(
        f1_score([0, 0, 1], [0, 1, 1], average="macro")
    )


def test_per_tag_scores_and_the_confusion_matrix():
    outputs, targets = logits_and_targets(seed=3)
    matrix = Tagging().confusion_matrix(outputs, targets)
    assert sum(map(sum, matrix)) == int((targets != IGNORE_INDEX).sum())
    scores = per_tag_scores(matrix)
    valid = targets != IGNORE_INDEX
    expected = f1_score(targets[valid].numpy(), outputs.argmax(2)[valid].numpy(), average=None, labels=[0, 1, 2])
    torch.testing.assert_close(scores["f1"], torch.tensor(expected, dtype=torch.float64))
    assert scores["support"].tolist() == [float(sum(row)) for row in matrix]


def test_decode_gives_one_tag_per_step():
    outputs, _ = logits_and_targets()
    decoded = get_task("tag").decode(outputs)
    assert torch.equal(decoded["prediction"], outputs.argmax(dim=2))
    assert decoded["probabilities"].shape == outputs.shape and decoded["confidence"].shape == outputs.shape[:2]
    torch.testing.assert_close(decoded["probabilities"].sum(dim=2), torch.ones(outputs.shape[:2]))


@pytest.mark.parametrize(
    "outputs,targets,fragment",
    [
        (torch.zeros(2, 5), torch.zeros(2, dtype=torch.long), "N x T x V logits"),
        (torch.zeros(2, 4, 3), torch.zeros(2, 5, dtype=torch.long), "N x T x V logits"),
        (torch.zeros(1, 2, 3), torch.tensor([[0, 3]]), "tag ids must be in 0..2"),
        (torch.zeros(1, 2, 3), torch.full((1, 2), IGNORE_INDEX), "every target is padding"),
    ],
)
def test_bad_outputs_or_targets_are_explained(outputs, targets, fragment):
    with pytest.raises(DataError, match=fragment):
        get_task("tag").metrics(outputs, targets)


def test_monitor_modes():
    task = get_task("tag")
    assert task.mode("val/macro_f1") == task.mode("val/accuracy") == "max" and task.mode("val/loss") == "min"
