"""Compress the sentiment LSTM and measure every variant against the fp32 original (issue 8).

    GLASSNET_DATA=/work/shared/data nice -n 10 .venv/bin/python benchmarks/compress_sentiment_lstm.py \
        [--run RUN] [--epochs 4] [--fine-tune 2] [--threads 1]

Trains the default ``lstm`` on the 3-class sentiment tweets, then: ONNX export (through the
unpacked twin of the model) verified against PyTorch; int8 by PyTorch dynamic (LSTM and Linear
weights int8, embedding rows 8-bit) and ONNX Runtime static and dynamic; 50% global magnitude
pruning with fine-tuning (Torch-Pruning cannot trace packed sequences, so structured pruning does
not apply to text RNNs); a distilled LSTM student with 4x fewer parameters.
"""

from __future__ import annotations

from compress_common import arguments, compress_and_report, trained_run

from glassnet.config import RunConfig

if __name__ == "__main__":
    args = arguments("Compress the sentiment LSTM", epochs=4)
    if args.train_size:
        raise SystemExit("--train-size applies to compress_fashion_cnn.py only")
    config = RunConfig(data="sentiment", model="lstm", epochs=args.epochs)
    run = trained_run(args, config)
    compress_and_report(
        run,
        {
            "int8": ["int8-torch-dynamic", "int8-ort-static", "int8-ort-dynamic"],
            "pruned": "pruned-global",
            "student": "distilled-lstm",
        },
        prune=0.5,
        prune_method="global",
        fine_tune_epochs=args.fine_tune,
        quantize=["torch-dynamic", "ort-static", "ort-dynamic"],
        export_format="onnx",
        distill="lstm",
        student_hparams={"embedding_dim": 24, "hidden": 48},
        distill_epochs=args.distill_epochs,
        repeats=args.repeats,
        threads=args.threads,
    )
