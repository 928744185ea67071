"""Autoencoders on real data: ECG anomaly detection (AUROC) and a Fashion-MNIST VAE (ELBO, sample grid).

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/autoencoder_ecg.py \\
        [--ecg-epochs 200] [--vae-epochs 10] [--train-size N] [--out samples.png] [--threads 1]

ECG: ``load_dataset("ecg")`` cuts one MIT-BIH recording into 75 windows of 100 samples, of which
only 4 are abnormal. A 1-D convolutional autoencoder is trained on the normal windows of the
training split only; the anomaly score of a window is its reconstruction error. The test split
holds a single abnormal window, so its AUROC rests on one example; the script therefore also
prints the AUROC of all 4 abnormal windows (2 of them from the training split, never trained on)
against the normal windows held out from training (validation and test). The issue's bar is 0.90.

VAE: a dense VAE on Fashion-MNIST (``--train-size`` images, all classes), reporting the test ELBO
(nats per image under its Gaussian decoder) and saving an 8 x 8 grid of samples from the prior.
"""

from __future__ import annotations

import argparse
import time

import torch

import glassnet as gn
import glassnet.models.autoencoder  # noqa: F401  (registers the autoencoders until glassnet.models imports it)
from glassnet.models.autoencoder import anomaly_scores
from glassnet.train.reconstruction import evaluate_reconstruction, reconstruction_bundle

BAR = 0.90


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ecg-epochs", type=int, default=200, help="passes over the ~48 normal training windows")
    parser.add_argument("--vae-epochs", type=int, default=10, help="passes over the Fashion-MNIST training images")
    parser.add_argument("--train-size", type=int, default=10000, help="Fashion-MNIST training images (max 60,000)")
    parser.add_argument("--latent", type=int, default=16, help="latent dimensions of the VAE")
    parser.add_argument("--out", default="vae_samples.png", help="PNG file for the grid of VAE samples")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (small models prefer 1)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def ecg_anomalies(args: argparse.Namespace) -> None:
    """Train on normal ECG windows only and print the AUROC of the reconstruction error."""
    from sklearn.metrics import roc_auc_score

    source = gn.load_dataset("ecg")
    bundle = reconstruction_bundle(source, normal_classes=["normal"])
    torch.manual_seed(args.seed)
    model = gn.create_model("conv_autoencoder", bundle.spec, channels=(16, 32), latent=8)
    trainer = gn.Trainer(task="reconstruct", max_epochs=args.ecg_epochs, batch_size=16, lr=3e-3, seed=args.seed,
                         device=args.device)  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, bundle)
    seconds = time.perf_counter() - start
    model.cpu()
    test_labels = torch.tensor(bundle.info["test_labels"])
    test_scores = anomaly_scores(model, bundle.test.tensors[0])
    test_auroc = roc_auc_score(test_labels.numpy(), test_scores.numpy())

    held_out = [(x, y) for x, y in (source.val.tensors, source.test.tensors)]
    abnormal = [x[y == 1] for x, y in (source.train.tensors, *held_out)]
    normal = [x[y == 0] for x, y in held_out]
    scores = anomaly_scores(model, torch.cat([*abnormal, *normal]))
    labels = [1] * sum(len(a) for a in abnormal) + [0] * sum(len(n) for n in normal)
    all_auroc = roc_auc_score(labels, scores.numpy())
    print(
        f"ecg: {len(bundle.train)} normal training windows, {args.ecg_epochs} epochs in {seconds:.1f} s; "
        f"val MSE {trainer.evaluate(model, bundle.val)['loss']:.4f}"
    )
    print(f"ecg: test AUROC {test_auroc:.3f} ({int(test_labels.sum())} abnormal of {len(test_labels)} test windows)")
    verdict = "meets" if all_auroc >= BAR else "misses"
    print(
        f"ecg: AUROC {all_auroc:.3f} on all {labels.count(1)} abnormal windows vs {labels.count(0)} held-out "
        f"normal windows ({verdict} the bar {BAR})"
    )


def vae_fashion(args: argparse.Namespace) -> None:
    """Train a dense VAE on Fashion-MNIST, print its test ELBO and save a grid of samples."""
    bundle = reconstruction_bundle(gn.load_dataset("fashion-mnist", train_size=args.train_size))
    torch.manual_seed(args.seed)
    model = gn.create_model("vae", bundle.spec, widths=(512, 256), latent=args.latent, decoder_std=0.3)
    trainer = gn.Trainer(task="reconstruct", max_epochs=args.vae_epochs, batch_size=128, lr=2e-3, seed=args.seed,
                         device=args.device)  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, bundle)
    seconds = time.perf_counter() - start
    metrics = evaluate_reconstruction(model, bundle.test, device=trainer.device)
    print(
        f"vae: {len(bundle.train)} images, {args.vae_epochs} epochs in {seconds:.1f} s; test ELBO "
        f"{metrics['elbo']:.1f} nats/image (KL {metrics['kl']:.1f}), reconstruction MSE {metrics['loss']:.4f}"
    )
    samples = model.sample(64, generator=torch.Generator().manual_seed(args.seed)).cpu()
    save_grid(samples.clamp(0, 1), args.out)
    print(f"vae: 64 samples saved to {args.out}")


def save_grid(images: torch.Tensor, path: str) -> None:
    """Save ``N x 1 x H x W`` images in [0, 1] as a square grid PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    side = int(len(images) ** 0.5)
    rows = images[: side * side, 0].reshape(side, side, *images.shape[2:])
    grid = rows.permute(0, 2, 1, 3).reshape(side * images.shape[2], side * images.shape[3])
    plt.imsave(path, grid.numpy(), cmap="gray", vmin=0, vmax=1)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {gn.Trainer(device=args.device).device}")
    ecg_anomalies(args)
    vae_fashion(args)


if __name__ == "__main__":
    main()
