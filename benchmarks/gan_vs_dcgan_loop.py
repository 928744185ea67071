"""glassnet's ``dcgan`` against the training loop of PyTorch's DCGAN example, same networks, same wall time.

Issue 14: "Peer: PyTorch's official DCGAN example loop ... with the same architecture and time budget on
the 2-core CPU. Goal: glassnet's FID (same feature space) <= the peer's at equal wall time, and >= 1.5x
the peer's training images/s."

    GLASSNET_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/gan_vs_dcgan_loop.py \
        [--data digits|fashion-mnist] [--seconds 120] [--batch-size 64] [--seed 0] [--fast] \
        [--extra "channels_last=true"] [--json out.json]

The peer is the recipe of PyTorch's ``examples/dcgan/main.py`` (written here, not copied): per batch one
discriminator step on real images labelled 1 and generated ones labelled 0 with binary cross-entropy,
then one generator step labelling its images 1; Adam at lr 2e-4, betas (0.5, 0.999) for both; no
averaging. It trains glassnet's own ``dcgan`` generator and discriminator (spectral norm included), so
the networks are identical and only the training differs. glassnet trains with ``glassnet.train``
(``time_limit`` = the same seconds, its ``gan`` step: hinge loss, betas (0, 0.9), a moving average of
the generator that sampling uses), its per-epoch validation counted inside the budget; ``--fast`` adds
``precision=bf16 channels_last=true`` to glassnet's run and ``--extra`` any other settings (the peer stays
the example's fp32 loop).

Both are scored the same way: FID, KID and precision/recall of up to 2,000 images against as many
test images, in the features of one classifier trained on the training split
(``glassnet.generate.evaluation``, not Inception features). Images/s counts the real images each loop
trained on per second of its training.
"""

from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import glassnet as gn
from glassnet.config import parse_overrides
from glassnet.data import split_tensors
from glassnet.generate.data import generation_bundle
from glassnet.generate.evaluation import MAX_SAMPLES, FeatureExtractor, _distances, train_feature_classifier
from glassnet.models import create_model


def example_loop(bundle: gn.DataBundle, seconds: float, batch_size: int, seed: int) -> tuple[torch.nn.Module, dict]:
    """The DCGAN example's recipe on glassnet's dcgan networks, until ``seconds`` have passed."""
    torch.manual_seed(seed)
    model = create_model("dcgan", bundle.spec)
    generator, discriminator = model.generator.train(), model.discriminator.train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images, _ = split_tensors(bundle.train)
    loader = DataLoader(TensorDataset(images.float()), batch_size=batch_size, shuffle=True, drop_last=True)
    seen, steps, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for (real,) in loader:
            noise = torch.randn(len(real), model.latent)
            fake = generator(noise)
            ones, zeros = torch.ones(len(real)), torch.zeros(len(real))
            d_loss = F.binary_cross_entropy_with_logits(discriminator(real).reshape(-1), ones)
            d_loss = d_loss + F.binary_cross_entropy_with_logits(discriminator(fake.detach()).reshape(-1), zeros)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = F.binary_cross_entropy_with_logits(discriminator(fake).reshape(-1), ones)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            seen, steps = seen + len(real), steps + 1
            if time.perf_counter() - start >= seconds:
                break
    elapsed = time.perf_counter() - start
    generator.eval()
    return generator, {"train_time_s": round(elapsed, 1), "steps": steps, "images_per_s": round(seen / elapsed, 1)}


def glassnet_run(
    data: str, seconds: float, batch_size: int, seed: int, out: Path, fast: bool, extra: str = ""
) -> tuple[torch.nn.Module, dict]:
    speed = {"precision": "bf16", "channels_last": True} if fast else {}
    speed.update(parse_overrides(shlex.split(extra)))
    config = gn.RunConfig(data=data, model="dcgan", epochs=10_000, time_limit=seconds, batch_size=batch_size,
                          seed=seed, baseline=False, **speed)  # fmt: skip
    run = gn.train(config, out=out)
    training = json.loads((Path(run.path) / "results" / "train.json").read_text())["training"]
    figures = {"train_time_s": training["train_time_s"], "steps": training["steps"],
               "images_per_s": training["samples_per_s"], "epochs": training["epochs_run"]}  # fmt: skip
    return run.model.cpu().eval(), figures


@torch.no_grad()
def draw(sample, n: int, latent: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([sample(torch.randn(min(500, n - i), latent, generator=generator)) for i in range(0, n, 500)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--seconds", type=float, default=120.0, help="training wall time of each contender")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="glassnet trains with precision=bf16 channels_last=true")
    parser.add_argument("--extra", default="", help='more glassnet settings, e.g. "channels_last=true"')
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    bundle = generation_bundle(gn.load_dataset(args.data))
    test_x, _ = split_tensors(bundle.test)
    real = test_x[torch.randperm(len(test_x), generator=torch.Generator().manual_seed(args.seed))[:MAX_SAMPLES]]
    n = len(real)
    results: dict[str, dict] = {}
    peer, results["DCGAN example loop"] = example_loop(bundle, args.seconds, args.batch_size, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ours, results["glassnet dcgan"] = glassnet_run(
            args.data, args.seconds, args.batch_size, args.seed, Path(tmp), args.fast, args.extra
        )
    classifier, features = train_feature_classifier(bundle, args.seed)
    extractor = FeatureExtractor(classifier)
    latent = ours.latent
    samples = {
        "DCGAN example loop": draw(lambda z: peer(z), n, latent, args.seed),
        "glassnet dcgan": draw(lambda z: ours.sample(len(z), noise=z), n, latent, args.seed),
    }
    for name, images in samples.items():
        results[name].update(_distances(extractor, real.float(), images.float().clamp(0, 1), args.seed))
    print(f"\n{args.data}, {args.seconds:.0f} s of training each, {n} images against {n} test images "
          f"(features: {features['layer']}, classifier test accuracy {features['test_accuracy']})")  # fmt: skip
    for name, row in results.items():
        print(f"{name:20s} FID {row['fid']:8.2f}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
              f"{row['images_per_s']:8.1f} images/s  {row['steps']} steps in {row['train_time_s']} s")  # fmt: skip
    ours_row, peer_row = results["glassnet dcgan"], results["DCGAN example loop"]
    print(f"FID ratio glassnet / example: {ours_row['fid'] / peer_row['fid']:.3f} (goal <= 1)")
    print(f"images/s ratio glassnet / example: {ours_row['images_per_s'] / peer_row['images_per_s']:.2f} (goal >= 1.5)")
    if args.json:
        args.json.write_text(json.dumps({"args": {**vars(args), "json": str(args.json)}, "results": results}, indent=2))


if __name__ == "__main__":
    main()
