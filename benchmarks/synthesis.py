"""Speech synthesis on one voice: ``fastspeech`` on ``one-voice``, judged by distortion and by recognisers.

    .venv/bin/python benchmarks/synthesis.py [--aligner-epochs 25] [--epochs 40] [--batch-size 16] \\
        [--aligner RUN] [--voice RUN] [--judge RUN] [--out runs/synthesis]

The voice's data (``one-voice``: 1,200 sentences, digit strings and commands, read by espeak-ng's
``en-us``; whole sentences held out) is synthesised on first use. A ``speech_ctc`` recogniser
trains on its training sentences (``--aligner`` reuses one), and its CTC forced alignments give the
durations ``fastspeech`` trains with (``--voice`` reuses a trained voice). The run then speaks the
test sentences with its own durations through Griffin-Lim, and records the mel cepstral distortion
to the recordings and the recogniser's error rates on the synthesised speech, beside the classical
baseline (recorded training words joined, through the same vocoder) and the recordings with and
without the vocoder. The issue's target is a CER of at most 10% on held-out digit strings.

The aligner has heard this voice, if not these sentences. ``--judge RUN`` adds a second judge for
the digit strings: a recogniser trained on other voices (``benchmarks/speech.py`` trains one on
``spoken-numbers``), which has never heard the sentences' recordings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aligner-epochs", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aligner", type=Path, help="a trained transcribe run of one-voice (skips its training)")
    parser.add_argument("--voice", type=Path, help="a trained fastspeech run (skips its training)")
    parser.add_argument("--judge", type=Path, help="another recogniser to judge the digit strings with")
    parser.add_argument("--out", type=Path, default=Path("runs/synthesis"))
    return parser.parse_args()


def train(config: object, out: Path) -> tuple[object, float]:
    import glassnet as gn

    start = time.perf_counter()
    run = gn.train(config, out=out, overwrite=True)
    return run, time.perf_counter() - start


def second_judge(voice: object, judge_path: Path) -> dict:
    """The digit strings of the test split, synthesised and joined from words, as another recogniser hears them."""
    from glassnet.data.bundle import split_tensors
    from glassnet.train import synthesis as sy
    from glassnet.train.run import Run

    judge = Run.open(judge_path)
    bundle = voice.data()
    spec = voice.spec
    inputs, targets = split_tensors(bundle.test)
    texts = [u["text"] for u in bundle.test.utterances]
    concatenation = sy.WordConcatenation(*split_tensors(bundle.train), spec.extra["symbols"])
    digits = [i for i, t in enumerate(texts) if sy.is_digit_string(t)][: sy.EVALUATED]
    model = voice.model.eval()
    mels = spec.extra["n_mels"]
    spoken, joined, recorded = [], [], []
    for i in digits:
        length = int((inputs[i, 0] != 0).sum())
        spoken.append(sy.vocode(sy.synthesize_ids(model, inputs[i, 0, :length].tolist()), spec))
        joined.append(sy.vocode(concatenation.speak(texts[i]), spec))
        frames = int(targets[i, mels, :length].sum())
        recorded.append(sy.vocode(targets[i, :mels, :frames], spec))
    rate = spec.extra["sample_rate"]
    refs = [texts[i] for i in digits]
    return {
        "judge": str(judge.path),
        "sentences": len(digits),
        "synthesised": sy.text_error_rates(sy.recognise(judge, spoken, rate), refs),
        "word_concatenation": sy.text_error_rates(sy.recognise(judge, joined, rate), refs),
        "recorded_vocoded": sy.text_error_rates(sy.recognise(judge, recorded, rate), refs),
    }


def main() -> None:
    import torch

    from glassnet.config import RunConfig
    from glassnet.train.run import Run

    args = parse_args()
    torch.manual_seed(args.seed)
    times = {}
    if args.aligner:
        aligner = Run.open(args.aligner)
    else:
        aligner, times["aligner"] = train(
            RunConfig(data="one-voice", model="speech_ctc", epochs=args.aligner_epochs, batch_size=args.batch_size,
                      seed=args.seed),
            args.out / "aligner",
        )  # fmt: skip
    if args.voice:
        voice = Run.open(args.voice)
    else:
        voice, times["voice"] = train(
            RunConfig(data="one-voice", model="fastspeech", epochs=args.epochs, batch_size=args.batch_size,
                      seed=args.seed, data_args={"aligner": str(aligner.path)}),
            args.out / "voice",
        )  # fmt: skip
    result = json.loads((voice.path / "results" / "train.json").read_text())
    free = result["test"]["free_running"]
    heard = json.loads((aligner.path / "results" / "train.json").read_text())["test"]
    print(f"aligner: {aligner.path} (test WER {heard['wer']:.4f}, CER {heard['cer']:.4f})")
    print(f"voice:   {voice.path}; test mel_l1 {result['test']['mel_l1']:.4f} (true durations), "
          f"duration_mae {result['test']['duration_mae']:.3f} frames")  # fmt: skip
    print(f"times:   {', '.join(f'{k} {v:.0f} s' for k, v in times.items()) or 'reused runs'}")
    print(f"\njudged by the aligner ({free['sentences']} test sentences, {free['vocoder']}):")
    print(f"{'speech':44s} {'MCD dB':>7s} {'CER':>7s} {'WER':>7s}")
    for key in ("all", "digits"):
        judged = free.get(key)
        if not judged:
            continue
        label = f"{key} ({judged['sentences']})"
        rows = [
            ("fastspeech + Griffin-Lim", judged["mcd_dtw"], judged["synthesised"]),
            (
                "word concatenation + Griffin-Lim",
                judged.get("word_concatenation_mcd_dtw"),
                judged.get("word_concatenation"),
            ),
            ("recordings + Griffin-Lim", None, judged["recorded_vocoded"]),
            ("recordings", 0.0, judged["recorded"]),
        ]
        for name, mcd, rates in rows:
            if rates is None:  # a run from before the baseline was recorded
                continue
            shown = "" if mcd is None else f"{mcd:.2f}"
            print(f"{name + ', ' + label:44s} {shown:>7s} {rates['cer']:7.4f} {rates['wer']:7.4f}")
    target = free.get("digits", {}).get("synthesised", {}).get("cer")
    if target is not None:
        print(
            f"\ntarget: CER <= 0.10 on held-out digit strings: {target:.4f} ({'met' if target <= 0.10 else 'not met'})"
        )
    if args.judge:
        other = second_judge(voice, args.judge)
        print(f"\njudged by {other['judge']} ({other['sentences']} digit strings):")
        for key in ("synthesised", "word_concatenation", "recorded_vocoded"):
            print(f"  {key:22s} CER {other[key]['cer']:.4f}  WER {other[key]['wer']:.4f}")


if __name__ == "__main__":
    main()
