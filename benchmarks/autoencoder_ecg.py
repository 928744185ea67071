"""Autoencoders on real data: ECG anomaly detection (AUROC) and a Fashion-MNIST VAE (ELBO, sample grid).

    GLASSNET_DATA=../shared/data .venv/bin/python benchmarks/autoencoder_ecg.py \\
        [--ecg-epochs 300] [--ecg-seeds 3] [--skip-vae] \\
        [--vae-epochs 10] [--train-size N] [--out samples.png] [--threads 1]

ECG: ``load_dataset("ecg")`` cuts one MIT-BIH recording (7,500 samples at 360 Hz) into beats
aligned on their R peaks; the recording holds one abnormal beat, an atrial premature beat whose
QRS shape is nearly normal: what marks it is its early arrival. Two windows are tried: ``beat``
(90 samples before the R peak, 110 from it: one beat's shape, 25 beats) and ``rhythm`` (220
before: 0.61 s, so a beat that comes early shows the previous R peak; 24 beats). A dense and a
1-D convolutional autoencoder are trained on the normal beats of the training split only; the
anomaly score of a beat is its reconstruction error. The script prints the AUROC on the test
split and on all abnormal beats against the normal beats held out from training (validation and
test), and the ratio of the lowest abnormal score to the highest normal one. With a single
abnormal beat each AUROC is the share of held-out normal beats it outranks: a ranking of one
example, not a statistically meaningful AUROC. The issue's bar is 0.90.

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
    parser.add_argument("--ecg-epochs", type=int, default=300, help="passes over the 16-17 normal training beats")
    parser.add_argument("--ecg-seeds", type=int, default=3, help="training seeds per ECG model (one abnormal beat)")
    parser.add_argument("--vae-epochs", type=int, default=10, help="passes over the Fashion-MNIST training images")
    parser.add_argument("--train-size", type=int, default=10000, help="Fashion-MNIST training images (max 60,000)")
    parser.add_argument("--latent", type=int, default=16, help="latent dimensions of the VAE")
    parser.add_argument("--skip-vae", action="store_true", help="run the ECG part only")
    parser.add_argument("--out", default="vae_samples.png", help="PNG file for the grid of VAE samples")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (small models prefer 1)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


ECG_MODELS = {  # small models: 16-17 normal training beats
    "autoencoder": {"widths": (64,), "latent": 4},
    "conv_autoencoder": {"channels": (16, 32), "latent": 8},
}


ECG_WINDOWS = {  # (before, after) R peak: one beat's shape; or 0.61 s before, so a premature beat shows its neighbour
    "beat": (90, 110),
    "rhythm": (220, 110),
}


def ecg_anomalies(args: argparse.Namespace) -> None:
    """Train each ECG model on normal beats only and print the AUROC of its reconstruction error."""
    for window, (before, after) in ECG_WINDOWS.items():
        source = gn.load_dataset("ecg", before=before, after=after)  # segment="beats": R-peak aligned
        info = source.info
        print(
            f"ecg {window} window ({before} + {after} samples): {info['r_peaks']} R peaks, {info['beats']} "
            f"complete beats, {info['abnormal_beats']} abnormal"
        )
        bundle = reconstruction_bundle(source, normal_classes=["normal"])
        for name, hparams in ECG_MODELS.items():
            for seed in range(args.seed, args.seed + args.ecg_seeds):
                ecg_model(args, name, hparams, seed, source, bundle)


def ecg_model(
    args: argparse.Namespace, name: str, hparams: dict, seed: int, source: gn.DataBundle, bundle: gn.DataBundle
) -> None:
    """Fit one autoencoder on the normal training beats and print its two AUROCs and its margin."""
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(seed)
    model = gn.create_model(name, bundle.spec, **hparams)
    trainer = gn.Trainer(task="reconstruct", max_epochs=args.ecg_epochs, batch_size=16, lr=3e-3, seed=seed,
                         device=args.device)  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, bundle)
    seconds = time.perf_counter() - start
    model.cpu()
    test_labels = torch.tensor(bundle.info["test_labels"])
    test_auroc = roc_auc_score(test_labels.numpy(), anomaly_scores(model, bundle.test.tensors[0]).numpy())
    # every abnormal beat (none is trained on) against the normal beats held out from training
    held_out = [source.val.tensors, source.test.tensors]
    abnormal = torch.cat([x[y == 1] for x, y in (source.train.tensors, *held_out)])
    normal = torch.cat([x[y == 0] for x, y in held_out])
    abnormal_scores, normal_scores = anomaly_scores(model, abnormal), anomaly_scores(model, normal)
    labels = [1] * len(abnormal) + [0] * len(normal)
    all_auroc = roc_auc_score(labels, torch.cat([abnormal_scores, normal_scores]).numpy())
    verdict = "meets" if all_auroc >= BAR else "misses"
    print(
        f"ecg {name} seed {seed}: {len(bundle.train)} normal training beats, {args.ecg_epochs} epochs in "
        f"{seconds:.1f} s; test AUROC {test_auroc:.3f} ({int(test_labels.sum())} abnormal of {len(test_labels)} "
        f"test beats); AUROC {all_auroc:.3f} on all {len(abnormal)} abnormal vs {len(normal)} held-out normal "
        f"beats ({verdict} the bar {BAR}); lowest abnormal / highest normal score "
        f"{abnormal_scores.min().item() / normal_scores.max().item():.2f}"
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
    if not args.skip_vae:
        vae_fashion(args)


if __name__ == "__main__":
    main()
