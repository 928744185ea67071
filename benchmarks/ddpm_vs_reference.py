"""glassnet's ``ddpm`` against a plain DDPM training loop, same U-Net, same wall time.

Issue 14: "Peer: PyTorch's official DCGAN example loop (and a plain DDPM reference loop) on
Fashion-MNIST with the same architecture and time budget on the 2-core CPU. Goal: glassnet's FID
(same feature space) <= the peer's at equal wall time, and >= 1.5x the peer's training images/s."

    GLASSNET_DATA=../shared/data nice -n 10 .venv/bin/python benchmarks/ddpm_vs_reference.py \
        [--data fashion-mnist|digits] [--seconds 300] [--batch-size 64] [--samples 1000] [--steps 50] \
        [--seed 0] [--extra "precision=bf16 channels_last=true"] [--json out.json]

The reference is the recipe of Ho et al. (2020) as a minimal loop writes it (written here): the
paper's linear noise schedule (beta from 1e-4 to 0.02 over T = 1,000 steps), a timestep drawn
uniformly per image, the mean squared error between the added noise and the network's estimate,
Adam at 2e-4, fp32, a shuffled ``DataLoader``, no weight average, no gradient clipping. It trains
glassnet's own unconditional ``ddpm`` U-Net (``conditional=false``, the default width), so the
networks are identical and only the training differs. glassnet trains with ``glassnet.train`` and
its defaults for ``ddpm`` (the ``diffusion`` step: cosine schedule, Adam at 1e-3 with gradients
clipped to norm 1, a moving average of the weights that sampling uses), ``time_limit`` = the same
seconds, its per-epoch validation counted inside the budget (the images/s ratio is printed with and
without the validations' time: the plain loop validates nothing); ``--extra`` adds settings to
glassnet's run only (the reference stays the plain fp32 loop).

Both draw ``--samples`` images with the same sampler (the model's DDIM, ``--steps`` steps, ``eta=1``,
the same starting noise) and are scored the same way: FID, KID and precision/recall against as many
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
from glassnet.generate.evaluation import FeatureExtractor, _distances, train_feature_classifier
from glassnet.models import create_model


def reference_loop(bundle: gn.DataBundle, seconds: float, batch_size: int, seed: int) -> tuple[torch.nn.Module, dict]:
    """Ho et al.'s simplified objective on glassnet's ddpm U-Net, until ``seconds`` have passed."""
    torch.manual_seed(seed)
    model = create_model("ddpm", bundle.spec, conditional=False, schedule="linear")
    net = model.net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4)
    images, _ = split_tensors(bundle.train)
    loader = DataLoader(TensorDataset(images.float()), batch_size=batch_size, shuffle=True, drop_last=True)
    alpha_bar = model.alpha_bar
    seen, steps, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for (real,) in loader:
            x = real * 2 - 1
            t = torch.randint(0, model.timesteps, (len(x),))
            noise = torch.randn_like(x)
            a = alpha_bar[t][:, None, None, None]
            loss = F.mse_loss(net(a.sqrt() * x + (1 - a).sqrt() * noise, t), noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen, steps = seen + len(x), steps + 1
            if time.perf_counter() - start >= seconds:
                break
    elapsed = time.perf_counter() - start
    model.net_ema.load_state_dict(net.state_dict())  # no average: sampling uses the trained weights
    return model.eval(), {"train_time_s": round(elapsed, 1), "steps": steps, "images_per_s": round(seen / elapsed, 1)}


class ValidationTimer(gn.Callback):
    """Seconds spent in glassnet's per-epoch validations (sampling images to score them)."""

    seconds = 0.0

    def on_validation_start(self, trainer: object, model: torch.nn.Module) -> None:
        self.started = time.perf_counter()

    def on_validation_end(self, trainer: object, model: torch.nn.Module) -> None:
        self.seconds += time.perf_counter() - self.started


def glassnet_run(
    data: str, seconds: float, batch_size: int, seed: int, out: Path, extra: str
) -> tuple[torch.nn.Module, dict]:
    config = gn.RunConfig(data=data, model="ddpm", model_args={"conditional": False}, epochs=10_000,
                          time_limit=seconds, batch_size=batch_size, seed=seed, baseline=False,
                          **parse_overrides(shlex.split(extra)))  # fmt: skip
    timer = ValidationTimer()
    run = gn.train(config, out=out, callbacks=[timer])
    training = json.loads((Path(run.path) / "results" / "train.json").read_text())["training"]
    figures = {"train_time_s": training["train_time_s"], "steps": training["steps"],
               "images_per_s": training["samples_per_s"], "epochs": training["epochs_run"],
               "validation_s": round(timer.seconds, 1)}  # fmt: skip
    # the peer validates nothing: its images/s compares with glassnet's outside the per-epoch validations
    figures["training_images_per_s"] = round(
        training["samples_per_s"] * training["train_time_s"] / (training["train_time_s"] - timer.seconds), 1
    )
    return run.model.cpu().eval(), figures


def draw(model: torch.nn.Module, n: int, steps: int, seed: int) -> tuple[torch.Tensor, float]:
    """``n`` images by DDIM (``eta=1``) from the same seeded noise for every model, and the seconds it took."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    images = [model.sample(min(250, n - i), generator=generator, steps=steps, eta=1.0) for i in range(0, n, 250)]
    return torch.cat(images), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--seconds", type=float, default=300.0, help="training wall time of each contender")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=1000, help="images drawn from each model and test images")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps of both samplers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", default="", help='glassnet settings, e.g. "precision=bf16 channels_last=true"')
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    bundle = generation_bundle(gn.load_dataset(args.data))
    test_x, _ = split_tensors(bundle.test)
    real = test_x[torch.randperm(len(test_x), generator=torch.Generator().manual_seed(args.seed))[: args.samples]]
    results: dict[str, dict] = {}
    models: dict[str, torch.nn.Module] = {}
    models["plain DDPM loop"], results["plain DDPM loop"] = reference_loop(
        bundle, args.seconds, args.batch_size, args.seed
    )
    with tempfile.TemporaryDirectory() as tmp:
        models["glassnet ddpm"], results["glassnet ddpm"] = glassnet_run(
            args.data, args.seconds, args.batch_size, args.seed, Path(tmp), args.extra
        )
    classifier, features = train_feature_classifier(bundle, args.seed)
    extractor = FeatureExtractor(classifier)
    for name, model in models.items():
        images, seconds = draw(model, len(real), args.steps, args.seed)
        results[name]["sampling_s"] = round(seconds, 1)
        results[name].update(_distances(extractor, real.float(), images.float(), args.seed))
    print(f"\n{args.data}, {args.seconds:.0f} s of training each, {len(real)} images ({args.steps} DDIM steps, eta 1) "
          f"against as many test images (features: {features['layer']}, classifier test accuracy "
          f"{features['test_accuracy']}); glassnet settings: {args.extra or 'defaults'}")  # fmt: skip
    for name, row in results.items():
        validation = f", {row['validation_s']} s of it validating" if "validation_s" in row else ""
        print(f"{name:16s} FID {row['fid']:8.2f}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
              f"{row['images_per_s']:8.1f} images/s  {row['steps']} steps in {row['train_time_s']} s{validation}  "
              f"(sampling {row['sampling_s']} s)")  # fmt: skip
    ours, peer = results["glassnet ddpm"], results["plain DDPM loop"]
    print(f"FID ratio glassnet / plain loop: {ours['fid'] / peer['fid']:.3f} (goal <= 1)")
    print(f"images/s ratio glassnet / plain loop: {ours['images_per_s'] / peer['images_per_s']:.2f} (goal >= 1.5); "
          f"outside glassnet's validations: {ours['training_images_per_s'] / peer['images_per_s']:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"args": {**vars(args), "json": str(args.json)}, "results": results}, indent=2))


if __name__ == "__main__":
    main()
