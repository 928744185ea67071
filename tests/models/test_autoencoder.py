"""Autoencoders and the reconstruct task: contract, VAE KL and sampling, denoising, learning, errors."""

import math

import numpy as np
import pytest
import torch

import glassnet.models.autoencoder  # noqa: F401  (registers the autoencoders until glassnet.models imports it)
from glassnet.data import DataSpec, bundle_from_arrays
from glassnet.errors import ConfigError, DataError
from glassnet.models import create_model, load_model, save_model
from glassnet.models.autoencoder import anomaly_scores
from glassnet.models.outputs import VariationalOutput, prediction
from glassnet.train import Trainer
from glassnet.train.reconstruction import Reconstruction, evaluate_reconstruction, reconstruction_bundle
from glassnet.train.tasks import get_task


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train far faster on one thread; two threads on a busy 2-core machine thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SPECS = {
    "image": DataSpec(
        modality="image", input_shape=(1, 8, 8), task="reconstruct", num_outputs=64,
        input_mean=(0.3,), input_std=(0.2,), name="img-rec",
    ),
    "image-rgb-odd": DataSpec(modality="image", input_shape=(3, 12, 9), task="reconstruct", num_outputs=324),
    "tabular": DataSpec(
        modality="tabular", input_shape=(5,), task="reconstruct", num_outputs=5,
        input_mean=(1.0,) * 5, input_std=(2.0,) * 5, name="tab-rec",
    ),
    "sequence": DataSpec(
        modality="sequence", input_shape=(13, 2), task="reconstruct", num_outputs=26,
        input_mean=(0.0, 5.0), input_std=(1.0, 2.0), name="seq-rec",
    ),
}  # fmt: skip

CASES = [
    ("autoencoder", {}, ["image", "image-rgb-odd", "tabular", "sequence"]),
    ("autoencoder", {"noise": 0.3}, ["tabular"]),
    ("conv_autoencoder", {}, ["image", "image-rgb-odd", "sequence"]),
    ("vae", {}, ["image", "tabular", "sequence"]),
    ("vae", {"kind": "conv"}, ["image-rgb-odd", "sequence"]),
]


def contract_cases():
    for name, hparams, keys in CASES:
        for key in keys:
            yield pytest.param(name, hparams, SPECS[key], id=f"{name}-{key}-{hparams}")


@pytest.mark.parametrize("name,hparams,spec", list(contract_cases()))
def test_contract_forward_backward_finite_round_trip(name, hparams, spec, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, spec, **hparams)
    x = torch.rand(4, *spec.input_shape)
    outputs = model(x)
    out = prediction(outputs)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    get_task("reconstruct").loss(outputs, x).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    save_model(model, spec, tmp_path)
    loaded, loaded_spec = load_model(tmp_path)
    assert loaded_spec == spec and loaded.glassnet_arch["name"] == name
    model.eval()
    torch.testing.assert_close(prediction(loaded(x)), prediction(model(x)), rtol=0, atol=0)


def test_reconstructions_are_in_natural_units():
    spec = SPECS["tabular"]
    model = create_model("autoencoder", spec).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.zero_()  # the decoder then outputs 0 in standardised units, i.e. the mean
    out = model(torch.rand(3, 5))
    torch.testing.assert_close(out, torch.full((3, 5), 1.0))


def test_task_is_registered_with_mse_mae_and_modes():
    task = get_task("reconstruct")
    assert isinstance(task, Reconstruction) and task.name == "reconstruct"
    outputs, targets = torch.zeros(2, 3), torch.tensor([[1.0, -1.0, 2.0], [0.0, 0.0, 2.0]])
    assert task.loss(outputs, targets).item() == pytest.approx(10 / 6)
    metrics = task.metrics(outputs, targets)
    assert metrics == pytest.approx({"loss": 10 / 6, "mae": 6 / 6})
    assert task.mode("val/loss") == "min" and task.mode("val/elbo") == "max"
    assert torch.equal(task.decode(outputs)["prediction"], outputs)


def test_vae_kl_is_positive_in_training_and_enters_the_loss_and_elbo():
    torch.manual_seed(0)
    spec = SPECS["tabular"]
    model = create_model("vae", spec, decoder_std=0.5).train()
    x = 1.0 + 2.0 * torch.randn(8, 5)
    out = model(x)
    assert isinstance(out, VariationalOutput)  # a structured output, no tensor attributes
    assert out.kl.shape == (8,) and (out.kl > 0).all()
    assert torch.equal(model.kl, out.kl.detach())
    assert float(out.decoder_var) == pytest.approx((0.5 * 2.0) ** 2)
    task = get_task("reconstruct")
    mse = torch.nn.functional.mse_loss(out.reconstruction, x)
    expected = mse + 2 * out.decoder_var * out.kl.mean() / 5
    torch.testing.assert_close(task.loss(out, x), expected)
    metrics = task.metrics(out, x)
    variance = float(out.decoder_var)
    log_likelihood = -((out.reconstruction - x) ** 2).sum(dim=1) / (2 * variance) - 2.5 * math.log(
        2 * math.pi * variance
    )
    assert metrics["elbo"] == pytest.approx((log_likelihood - out.kl).mean().item(), rel=1e-5)
    assert metrics["kl"] == pytest.approx(out.kl.mean().item())


def test_vae_eval_is_deterministic_and_samples_have_input_shape():
    spec = SPECS["image"]
    model = create_model("vae", spec, kind="conv").eval()
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    first = model.sample(5, generator=torch.Generator().manual_seed(1))
    again = model.sample(5, generator=torch.Generator().manual_seed(1))
    assert first.shape == (5, 1, 8, 8) and torch.isfinite(first).all()
    torch.testing.assert_close(first, again)
    model.train()
    model.sample(2)
    assert model.training  # sample restores the mode it found


def test_denoising_noise_only_in_training():
    spec = SPECS["tabular"]
    torch.manual_seed(0)
    noisy = create_model("autoencoder", spec, noise=0.5)
    clean = create_model("autoencoder", spec)
    clean.load_state_dict(noisy.state_dict())
    x = torch.randn(6, 5)
    noisy.eval(), clean.eval()
    torch.testing.assert_close(noisy(x), clean(x), rtol=0, atol=0)
    noisy.train(), clean.train()
    assert not torch.allclose(noisy(x), noisy(x))
    torch.testing.assert_close(clean(x), clean(x), rtol=0, atol=0)


def subspace_bundle(n=300, anomalies=60, seed=0):
    """Normal rows lie near a 2-D plane in 12 dimensions (natural units far from 0/1); anomalies do not."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(2, 12))
    normal = rng.normal(size=(n, 2)) @ basis + 0.05 * rng.normal(size=(n, 12))
    odd = rng.normal(size=(anomalies, 12)) * normal.std(axis=0)
    x = (20 + 5 * np.concatenate([normal, odd])).astype(np.float32)
    y = np.array([0] * n + [1] * anomalies)
    return bundle_from_arrays(x, y, name="plane", modality="tabular", task="classify", class_names=("normal", "odd"))


def test_reconstruction_bundle_keeps_normal_classes_for_training_and_all_for_test():
    source = subspace_bundle()
    bundle = reconstruction_bundle(source, normal_classes=["normal"])
    assert bundle.spec.task == "reconstruct" and bundle.spec.class_names == () and bundle.spec.num_outputs == 12
    train_x, train_t = bundle.train.tensors
    assert torch.equal(train_x, train_t)
    source_x, source_y = source.train.tensors
    assert torch.equal(train_x, source_x[source_y == 0])
    assert len(bundle.val) == int((source.val.tensors[1] == 0).sum())
    assert torch.equal(bundle.test.tensors[0], source.test.tensors[0])
    assert bundle.info["test_labels"] == source.test.tensors[1].tolist()
    assert bundle.info["class_names"] == ["normal", "odd"] and bundle.info["normal_classes"] == [0]
    torch.testing.assert_close(torch.tensor(bundle.spec.input_mean), train_x.mean(dim=0))
    assert len(reconstruction_bundle(source).train) == len(source.train)


def test_autoencoder_learns_and_its_anomaly_scores_separate_anomalies():
    from sklearn.metrics import roc_auc_score

    bundle = reconstruction_bundle(subspace_bundle(), normal_classes=[0])
    torch.manual_seed(0)
    model = create_model("autoencoder", bundle.spec, widths=(32,), latent=2)
    trainer = Trainer(task="reconstruct", max_epochs=40, batch_size=32, lr=1e-2, device="cpu")
    trainer.fit(model, bundle)
    val_x = bundle.val.tensors[0]
    assert trainer.evaluate(model, bundle.val)["loss"] < 0.05 * val_x.var(dim=0).mean().item()
    scores = anomaly_scores(model, bundle.test.tensors[0])
    assert scores.shape == (len(bundle.test),)
    assert roc_auc_score(bundle.info["test_labels"], scores.numpy()) > 0.9


def test_vae_trains_through_the_trainer_and_reports_elbo():
    bundle = reconstruction_bundle(subspace_bundle(n=120, anomalies=10), normal_classes=[0])
    torch.manual_seed(0)
    model = create_model("vae", bundle.spec, widths=(32,), latent=2)
    before = evaluate_reconstruction(model, bundle.val)
    Trainer(task="reconstruct", max_epochs=15, batch_size=32, lr=1e-2, device="cpu").fit(model, bundle)
    after = evaluate_reconstruction(model, bundle.val, batch_size=7)
    assert set(after) == {"loss", "mae", "kl", "elbo"}
    assert after["elbo"] > before["elbo"] and after["kl"] > 0


def test_anomaly_scores_restore_the_mode():
    model = create_model("autoencoder", SPECS["tabular"]).train()
    scores = anomaly_scores(model, torch.randn(5, 5), batch_size=2)
    assert scores.shape == (5,) and (scores >= 0).all() and model.training


@pytest.mark.parametrize(
    "name,spec,hparams,match",
    [
        ("autoencoder", DataSpec(modality="tabular", input_shape=(5,), task="classify", num_outputs=2), {},
         "Models that fit it: .*mlp"),
        ("conv_autoencoder", SPECS["tabular"], {}, "Models that fit it: autoencoder, vae"),
        ("vae", SPECS["tabular"], {"kind": "conv"}, "input_shape=\\(5,\\).*'autoencoder'"),
        ("conv_autoencoder", SPECS["image"], {"channels": (8, 8, 8, 8)}, "input_shape=\\(1, 8, 8\\) is too small"),
        ("autoencoder", SPECS["image"], {"latent": 0}, "latent=0"),
        ("autoencoder", SPECS["image"], {"noise": -1.0}, "noise=-1.0"),
        ("vae", SPECS["image"], {"kind": "lstm"}, "kind='lstm'"),
        ("vae", SPECS["image"], {"decoder_std": 0}, "decoder_std=0"),
        ("conv_autoencoder", SPECS["image"], {"channels": ()}, "channels=\\[\\]"),
    ],
)  # fmt: skip
def test_wrong_combinations_raise_config_error(name, spec, hparams, match):
    with pytest.raises(ConfigError, match=match):
        create_model(name, spec, **hparams)


def test_reconstruction_bundle_rejects_bad_inputs():
    source = subspace_bundle(n=40, anomalies=10)
    with pytest.raises(ConfigError, match="'weird'"):
        reconstruction_bundle(source, normal_classes=["weird"])
    regression = bundle_from_arrays(np.ones((60, 2), np.float32), np.arange(60.0), name="r", modality="tabular",
                                    task="regress")  # fmt: skip
    with pytest.raises(DataError, match="task='regress'"):
        reconstruction_bundle(regression)
