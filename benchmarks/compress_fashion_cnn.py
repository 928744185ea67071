"""Compress a Fashion-MNIST CNN and measure every variant against the fp32 original (issue 8).

    GLASSNET_DATA=/work/shared/data nice -n 10 .venv/bin/python benchmarks/compress_fashion_cnn.py \
        [--run RUN] [--epochs 3] [--train-size 20000] [--fine-tune 2] [--threads 1]

Trains the default ``cnn`` (channels 32, 64, hidden 128, batch norm: about 420k parameters) on the
training images (all 60,000, or a stratified ``--train-size`` subset; 10% held out for validation),
then measures on the official 10,000 test images: ONNX export verified against PyTorch;
int8 by PyTorch dynamic, PyTorch static (FX) and ONNX Runtime static QDQ; 50% structured channel
pruning with fine-tuning, and that pruned model quantised by ONNX Runtime static QDQ (stacked); a
distilled student with 4x fewer parameters. All timings come from one process, rounds interleaved
between variants, and are printed as ratios against fp32 eager PyTorch.
"""

from __future__ import annotations

from compress_common import arguments, compress_and_report, trained_run

from glassnet.config import RunConfig

if __name__ == "__main__":
    args = arguments("Compress a Fashion-MNIST CNN", epochs=3)
    data_args = {"train_size": args.train_size} if args.train_size else {}
    config = RunConfig(data="fashion-mnist", model="cnn", epochs=args.epochs, data_args=data_args)
    run = trained_run(args, config)
    compress_and_report(
        run,
        {
            "int8": ["int8-ort-static", "int8-torch-static", "int8-torch-dynamic"],
            "pruned": "pruned-structured",
            "stacked": ["pruned-structured+int8-ort-static"],
            "student": "distilled-cnn",
        },
        prune=0.5,
        prune_method="structured",
        fine_tune_epochs=args.fine_tune,
        lr=args.lr,
        quantize="int8",
        export_format="onnx",
        stack=True,
        distill="cnn",
        student_hparams={"channels": [16, 32], "hidden": 60},
        distill_epochs=args.distill_epochs,
        repeats=args.repeats,
        threads=args.threads,
    )
