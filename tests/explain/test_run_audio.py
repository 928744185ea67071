"""explain_run on a real audio run: spoken digits synthesised with espeak-ng, log-mel spectrograms, a CNN.

Ten espeak-ng voices at two speeds and two pitches (400 clips, synthesised into a temporary cache
in some 10 s); whole voices are held out for the test split, so the CNN is explained on speakers it
never heard. Marked slow (about a minute on two cores).
"""

from __future__ import annotations

import json
import shutil

import pytest

import glassnet
import glassnet.data.spoken_digits as sd
from glassnet.config import RunConfig
from glassnet.explain import explain_run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
    ),
]
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "de", "fr-fr", "es", "it", "nl", "sv")
N_MELS, FRAMES = 20, 101


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    """A CNN trained on 240 clips of six voices (test accuracy about 0.7 on two unseen voices)."""
    folder = tmp_path_factory.mktemp("audio")
    patch = pytest.MonkeyPatch()
    patch.setenv("GLASSNET_CACHE", str(folder / "cache"))
    voices = [sd.Voice(f"espeak-{a}", "espeak-ng", a) for a in ACCENTS]
    sd.synthesise_spoken_digits(folder / "cache" / sd.FOLDER, voices=voices, speeds=(140, 200), pitches=(35, 65))
    config = RunConfig(
        data="spoken-digits",
        data_args={"val_fraction": 0.2, "test_fraction": 0.2, "n_mels": N_MELS},
        model="cnn",
        epochs=6,
        batch_size=32,
        seed=0,
        model_args={"channels": [8, 16], "hidden": 32},
    )
    run = glassnet.train(config, out=folder / "run")
    yield run.path
    patch.undo()


def test_spoken_digits_cnn_is_explained_per_band_and_frame(audio_run):
    train = json.loads((audio_run / "results" / "train.json").read_text())
    assert train["test"]["accuracy"] > 0.4  # chance is 0.1; the test voices are unseen
    result = explain_run(audio_run, "integrated_gradients", n=16, n_steps=16, auto_steps=False)
    assert result["modality"] == "audio"
    views = result["views"]
    assert len(views["per_frequency_band"]) == N_MELS and len(views["per_time_step"]) == FRAMES
    assert all(v >= 0 for v in views["per_frequency_band"]) and max(views["per_time_step"]) > 0
    faith = result["trust"]["faithfulness"]
    assert faith["deletion_auc"] < faith["random_deletion_auc"], faith
    assert result["trust"]["randomisation"]["passed"], result["trust"]["randomisation"]
    assert {"explain_examples", "explain_curves"} <= set(result["figures"])
    assert (audio_run / "figures" / "explain_examples.png").stat().st_size > 10_000

    cam = explain_run(audio_run, "grad_cam", n=16)
    assert len(cam["views"]["per_frequency_band"]) == N_MELS and len(cam["views"]["per_time_step"]) == FRAMES
    cam_faith = cam["trust"]["faithfulness"]
    assert cam_faith["deletion_auc"] < cam_faith["random_deletion_auc"], cam_faith
    print(  # the figures docs/explain.md quotes (pytest -s)
        f"\nspoken digits: test accuracy {train['test']['accuracy']:.3f}; "
        + "; ".join(
            f"{r['method']}: deletion {f['deletion_auc']:.3f} (random {f['random_deletion_auc']:.3f}), "
            f"insertion {f['insertion_auc']:.3f} (random {f['random_insertion_auc']:.3f}), "
            f"randomisation {r['trust']['randomisation']['rank_correlation']:.2f}"
            for r, f in ((result, faith), (cam, cam_faith))
        )
    )
