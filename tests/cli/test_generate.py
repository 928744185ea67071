"""``glassnet generate`` and ``gn.generate``: PNG grids and folders a user can open, and clear errors."""

import pytest
import torch
from PIL import Image

import glassnet as gn
from glassnet.cli import main
from glassnet.data import DataSpec
from glassnet.errors import ConfigError, RunError, UnknownNameError
from glassnet.models import create_model, save_model

NAMES = ("zero", "one", "two")


def saved(tmp_path_factory, name, spec):
    """A run directory holding a model (untrained: sampling needs no training)."""
    out = tmp_path_factory.mktemp("gen") / name
    torch.manual_seed(0)
    save_model(create_model(name, spec, **({"latent": 8, "width": 8} if spec.task == "generate" else {})), spec, out)
    return out


def image_spec(task="generate"):
    outputs = 1 if task == "generate" else 3
    return DataSpec(modality="image", input_shape=(1, 8, 8), task=task, num_outputs=outputs, class_names=NAMES,
                    name="tiny")  # fmt: skip


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    return saved(tmp_path_factory, "cgan", image_spec())


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    return saved(tmp_path_factory, "dcgan", image_spec())


def test_a_grid_png_opens_with_every_image_upscaled(cgan_run, tmp_path, capsys):
    assert main(["generate", str(cgan_run), "--n", "6", "--out", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out
    assert "generated: 6 images of 1 x 8 x 8 (seed 0)" in out and "grid.png" in out
    with Image.open(tmp_path / "grid.png") as image:
        # 3 x 2 images of 8 pixels with 1 pixel of padding, each pixel shown 6 times (48 pixels per image)
        assert image.size == ((3 * 9 + 1) * 6, (2 * 9 + 1) * 6) and image.mode == "L"


def test_a_folder_gets_one_png_per_image_named_by_class(cgan_run, tmp_path):
    assert main(["generate", str(cgan_run), "--n", "3", "--class", "two", "--out", str(tmp_path / "imgs")]) == 0
    files = sorted(p.name for p in (tmp_path / "imgs").iterdir())
    assert files == ["sample-0000-two.png", "sample-0001-two.png", "sample-0002-two.png"]
    with Image.open(tmp_path / "imgs" / files[0]) as image:
        assert image.size == (48, 48)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class", "seven"], "unknown class 'seven'. Available: one, two, zero"),
        (["--n", "0"], "--n must be at least 1"),
        (["--out", "grid.jpg"], "must be a .png file"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(cgan_run, tmp_path, capsys, args, message):
    assert main(["generate", str(cgan_run), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_a_missing_or_non_generative_run_exits_2(tmp_path_factory, tmp_path, capsys):
    assert main(["generate", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    classifier = saved(tmp_path_factory, "cnn", image_spec("classify"))
    assert main(["generate", str(classifier)]) == 2
    assert "is a classify run, not a generative one" in capsys.readouterr().err


def test_nothing_of_the_run_is_overwritten(cgan_run, capsys):
    weights = (cgan_run / "model.safetensors").read_bytes()
    assert main(["generate", str(cgan_run), "--out", str(cgan_run / "model.safetensors")]) == 2
    assert main(["generate", str(cgan_run), "--out", str(cgan_run / "results" / "grid.png")]) == 2
    assert (cgan_run / "model.safetensors").read_bytes() == weights
    assert not (cgan_run / "results").exists()


def test_python_generate_is_reproducible_and_in_the_data_range(cgan_run, dcgan_run):
    images = gn.generate(cgan_run, 5, classes="one", seed=3)
    assert images.shape == (5, 1, 8, 8) and float(images.min()) >= 0 and float(images.max()) <= 1
    assert torch.equal(images, gn.generate(str(cgan_run), 5, classes=["one"], seed=3))
    assert not torch.equal(images, gn.generate(cgan_run, 5, classes="one", seed=4))
    assert not torch.equal(images, gn.generate(cgan_run, 5, classes=[0, 2], seed=3))
    assert gn.generate(dcgan_run, 2).shape == (2, 1, 8, 8)
    with pytest.raises(ConfigError, match="unconditional"):
        gn.generate(dcgan_run, 2, classes="one")
    with pytest.raises(UnknownNameError, match="unknown class 'three'"):
        gn.generate(cgan_run, 2, classes="three")
    with pytest.raises(ConfigError, match="n must be an integer"):
        gn.generate(cgan_run, 0)
    with pytest.raises(RunError):
        gn.generate(cgan_run.parent / "missing", 2)


def test_the_command_is_listed_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "generate" in capsys.readouterr().out


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "ddpm"
    torch.manual_seed(0)
    save_model(create_model("ddpm", image_spec(), width=8, timesteps=40, sample_steps=8), image_spec(), out)
    return out


def test_a_diffusion_run_takes_steps_and_guidance(ddpm_run, tmp_path, capsys):
    args = ["generate", str(ddpm_run), "--n", "4", "--class", "one", "--steps", "3", "--guidance", "3", "--eta", "1"]
    assert main([*args, "--out", str(tmp_path / "a.png")]) == 0
    assert "generated: 4 images of 1 x 8 x 8 (seed 0, classes one)" in capsys.readouterr().out
    few = gn.generate(ddpm_run, 4, classes="one", steps=3, guidance=3.0)
    more = gn.generate(ddpm_run, 4, classes="one", steps=8, guidance=3.0)
    assert few.shape == (4, 1, 8, 8) and not torch.equal(few, more)
    assert torch.equal(gn.generate(ddpm_run, 4, classes="one", steps=8, guidance=3.0), more)  # seeded
    assert main(["generate", str(ddpm_run), "--steps", "41"]) == 2
    assert "steps must be a whole number in [1, 40]" in capsys.readouterr().err


def test_sampling_options_on_a_gan_say_they_are_for_diffusion_runs(cgan_run, capsys):
    assert main(["generate", str(cgan_run), "--steps", "10"]) == 2
    err = capsys.readouterr().err
    assert "steps applies to diffusion runs (ddpm); this run's model is cgan" in err and err.count("\n") == 1
    with pytest.raises(ConfigError, match="guidance applies to diffusion runs"):
        gn.generate(cgan_run, 2, guidance=2.0)


def test_compress_draws_a_ddpm_with_int8_and_onnx_copies_of_its_unet(tmp_path, capsys):
    """The sampler stays, the U-Net inside is swapped: ONNX draws the same images as PyTorch; int8 ones close."""
    import json

    run = tmp_path / "ddpm"
    args = ["train", "--data", "digits", "--model", "ddpm", "--epochs", "1", "--out", str(run), "--quiet"]
    assert main([*args, "model.width=8", "model.sample_steps=10"]) == 0
    assert main(["compress", str(run)]) == 0  # refused before: the sampler was not exported
    assert "270 images per variant" in capsys.readouterr().out
    result = json.loads((run / "results" / "compress.json").read_text())
    variants = {v["name"]: v for v in result["variants"]}
    assert list(variants) == ["fp32", "int8-torch-dynamic", "onnx-fp32", "int8-ort-static"], result["notes"]
    assert abs(variants["onnx-fp32"]["fid"] - variants["fp32"]["fid"]) < 1e-2 * variants["fp32"]["fid"]
    assert variants["onnx-fp32"]["pixel_mae"] < 1e-3 and variants["int8-ort-static"]["same_class"] > 0.5
    assert (run / "compressed" / "denoiser.onnx").is_file() and result["sample_steps"] == 10
    assert main(["compress", str(run), "--prune", "0.5"]) == 2  # options that do not apply: one line, exit 2


def test_explain_reads_a_gan_through_its_discriminator(tmp_path, ddpm_run, capsys):
    """A cgan is explained class by class (its discriminator's real logit as each class), a dcgan as generated
    against real; a diffusion run has no discriminator and is refused before its data is rebuilt."""
    import json

    for family, names in (("cgan", [str(d) for d in range(10)]), ("dcgan", ["generated", "real"])):
        out = tmp_path / family
        assert (
            main(["train", "--data", "digits", "--model", family, "--epochs", "2", "--out", str(out), "--quiet"]) == 0
        )
        assert main(["explain", str(out), "--n", "20", "--quiet"]) == 0
        result = json.loads((out / "results" / "explain.json").read_text())
        assert result["task"] == "generate" and "discriminator's real logit" in result["target"]
        assert result["examples"] == 20 and set(result["trust"])  # highest_loss: the images it doubts, if any
        assert {e["true"] for e in result["highest_loss"]} <= set(names)
    html = gn.report(tmp_path / "dcgan").read_text()
    assert "each for the discriminator&#x27;s real logit" in html
    capsys.readouterr()
    assert main(["explain", str(ddpm_run)]) == 2
    assert "has none (a diffusion model" in capsys.readouterr().err
