"""Compress the sentiment LSTM and measure every variant against the fp32 original (issue 8).

    GLASSNET_DATA=/work/shared/data nice -n 10 .venv/bin/python benchmarks/compress_sentiment_lstm.py \
        [--run RUN] [--epochs 4] [--fine-tune 2] [--threads 1]

Trains the default ``lstm`` (bidirectional) on the 3-class sentiment tweets, then: ONNX export
(through the unpacked twin of the model) verified against PyTorch; int8 by PyTorch dynamic (LSTM
and Linear weights int8, embedding rows 8-bit) and ONNX Runtime static and dynamic; structured
pruning of 50% of the hidden units of every layer and direction and of the embedding dimensions
(glassnet's recurrent unit pruner) with fine-tuning, and that pruned model quantised by ONNX
Runtime's dynamic int8 (stacked); a distilled LSTM student with 4x fewer parameters.
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
            "pruned": "pruned-structured",
            "stacked": ["pruned-structured+int8-ort-dynamic"],
            "student": "distilled-lstm",
        },
        prune=0.5,
        prune_method="structured",
        fine_tune_epochs=args.fine_tune,
        lr=args.lr,
        quantize=["torch-dynamic", "ort-static", "ort-dynamic"],
        export_format="onnx",
        stack=True,
        distill="lstm",
        student_hparams={"embedding_dim": 24, "hidden": 48},
        distill_epochs=args.distill_epochs,
        repeats=args.repeats,
        threads=args.threads,
    )
