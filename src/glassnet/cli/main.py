"""The ``glassnet`` command: parse arguments, call the Python API, print the outcome.

Errors that the user can fix (``GlassnetError``) print one message and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glassnet.stages import list_stages, print_table

EXIT_USAGE = 2

# modules that add a command of their own: each exposes ``add_parser(commands, common)``, which adds
# its subcommand with ``parents=[common]`` and ``set_defaults(func=handler)``; a missing one is skipped
EXTENSIONS = ("glassnet.cli.compare", "glassnet.cli.tune", "glassnet.cli.generate", "glassnet.cli.synthesize")

# commands that take ``key=value`` words anywhere on their line (configuration or search-space overrides)
OVERRIDE_COMMANDS = ("train", "models", "tune")

# one example per command for ``glassnet --help`` (a command without one is listed with its help line)
EXAMPLES = {
    "demo": "glassnet demo --out runs/demo",
    "train": "glassnet train --data digits --model cnn --epochs 5 lr=0.01",
    "evaluate": "glassnet evaluate runs/demo --split val",
    "predict": "glassnet predict runs/demo digit.png",
    "explain": "glassnet explain runs/demo --method saliency",
    "robustness": "glassnet attack runs/demo --eps 0.05 0.1",
    "compress": "glassnet compress runs/demo --quantize int8 --export onnx",
    "report": "glassnet report runs/demo",
    "serve": "glassnet serve runs/demo --port 8000",
    "play": "glassnet play runs/cartpole --out episode.gif",
    "generate": "glassnet generate runs/cgan --n 64 --class 7 --out sevens.png",
    "synthesize": 'glassnet synthesize runs/fastspeech-one-voice "call 555 0123" --out call.wav',
    "compare": "glassnet compare runs/a runs/b",
    "tune": "glassnet tune --data digits --model mlp --trials 20 'lr=log(1e-4,1e-2)'",
    "datasets": "glassnet datasets",
    "models": "glassnet models --data breast-cancer",
    "envs": "glassnet envs --family classic_control",
    "completion": "glassnet completion bash > ~/.local/share/bash-completion/completions/glassnet",
}

HELP_WIDTH = 100


def build_parser() -> argparse.ArgumentParser:
    # --debug is accepted before and after the command; SUPPRESS keeps a subcommand's default
    # from overwriting `glassnet --debug COMMAND`
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback of errors"
    )
    common.add_argument("--quiet", action="store_true", default=False, help="no progress bars")
    parser = argparse.ArgumentParser(
        prog="glassnet",
        usage="%(prog)s [-h] [--debug] [--version] COMMAND ...",
        description="Train a neural network, then open the box: evaluate, predict, explain, attack, compress, report.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of errors")
    parser.add_argument("--version", action="version", version=_version())
    # the commands are listed by the epilog, with an example each, instead of argparse's narrow column
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, help=argparse.SUPPRESS, prog="glassnet"
    )

    demo = commands.add_parser(
        "demo", parents=[common], help="train a CNN on digits, evaluate it and write the report card"
    )
    demo.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo, replaced if present)")
    demo.add_argument("--epochs", type=int, help="override the demo's number of epochs")
    demo.add_argument("--no-audit", action="store_true", help="train and report only (no explain, attack, compress)")

    train = commands.add_parser("train", parents=[common], help="train a model on a dataset into a run directory")
    train.add_argument("--data", help="built-in dataset name (see `glassnet datasets`)")
    train.add_argument("--env", help="a gymnasium environment to learn from (see `glassnet envs`), e.g. CartPole-v1")
    train.add_argument("--algo", help="the reinforcement-learning algorithm of --env: ppo, dqn or sac")
    train.add_argument("--steps", type=int, help="the budget of an --env run in environment steps")
    train.add_argument("--model", help="model name (see `glassnet models`)")
    train.add_argument("--config", help="YAML file with configuration keys (command-line values win)")
    train.add_argument("--epochs", type=int, help="maximum number of epochs")
    train.add_argument("--out", help="run directory (default: runs/<model>-<data>, never an existing one)")
    train.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the interrupted training in RUN from its checkpoints/last.pt, with its saved configuration",
    )
    train.add_argument(
        "--fast",
        action="store_true",
        help="the fast recipe: batch size, label smoothing, memory layout, precision and the kept epoch chosen for "
        "the data and this machine, wherever you leave a setting at its default (recipe=fast)",
    )
    train.add_argument("--report", action="store_true", help="write report.html after training")
    train.add_argument(
        "--adversarial",
        metavar="METHOD",
        help="adversarial training: pgd, trades or fgsm (options as adversarial.eps=0.1 etc.)",
    )
    train.add_argument(
        "--find-lr",
        action="store_true",
        help="run the learning-rate range test instead of training: plot loss against LR and suggest an lr",
    )
    train.add_argument("overrides", nargs="*", metavar="key=value", help="configuration overrides, e.g. lr=0.01")

    evaluate = commands.add_parser("evaluate", parents=[common], help="evaluate a trained run on a dataset split")
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--data", help="dataset to evaluate on (default: the one it was trained on)")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"])
    evaluate.add_argument(
        "--episodes", type=int, help="an agent's run: seeded episodes of the deterministic policy (default 100)"
    )
    evaluate.add_argument("--seed", type=int, help="an agent's run: the first episode's seed (default 20000)")
    evaluate.add_argument(
        "--report", action="store_true", help="write report.html afterwards (an existing one is always rewritten)"
    )

    predict = commands.add_parser("predict", parents=[common], help="predict with a trained run")
    predict.add_argument("run", help="run directory")
    predict.add_argument("inputs", nargs="*", metavar="INPUT", help=".npy, .csv or image files")
    predict.add_argument("--data", help="predict a split of this dataset instead of files")
    predict.add_argument("--split", default="test", choices=["train", "val", "test"])
    predict.add_argument("--limit", type=int, default=None, help="only the first N examples of --data's split")
    predict.add_argument("--output", help="write all predictions to this .json or .csv file")
    predict.add_argument(
        "--onnx",
        nargs="?",
        const=True,
        default=False,
        metavar="FILE",
        help="serve from the ONNX export with ONNX Runtime (default file: RUN/compressed/model.onnx)",
    )

    commands.add_parser("datasets", parents=[common], help="list the built-in datasets")
    envs = commands.add_parser(
        "envs", parents=[common], help="list the environment families (--env) installed here, and how to add others"
    )
    envs.add_argument("--family", help="list every environment id of this family (classic_control, box2d ...)")
    models = commands.add_parser(
        "models", parents=[common], help="list the registered models, or describe one built for a dataset"
    )
    models.add_argument("--data", help="only the models that fit this dataset (with their parameter counts)")
    models.add_argument(
        "--describe", metavar="NAME", help="print NAME's layer table, parameters, FLOPs and memory for --data"
    )
    models.add_argument(
        "--batch-size", type=int, help="batch whose forward-pass memory --describe measures (default: 64)"
    )
    models.add_argument(
        "overrides", nargs="*", metavar="model.key=value", help="hyper-parameters for --describe, e.g. model.width=64"
    )
    for stage in list_stages():
        sub = commands.add_parser(
            stage.name,
            aliases=list(stage.aliases),
            parents=[common],
            help=stage.help,
            description=stage.description or stage.help,
        )
        sub.add_argument("run", help="run directory")
        stage.arguments(sub)
        if stage.refreshes_report:
            sub.add_argument(
                "--report",
                action="store_true",
                help="write report.html afterwards (an existing one is always rewritten)",
            )
        sub.set_defaults(func=_stage_command, stage=stage)
    for name in EXTENSIONS:
        extension = _extension(name)
        if extension is not None:
            extension.add_parser(commands, common)
    completion = commands.add_parser(
        "completion", parents=[common], help="print a shell completion script (bash, zsh or fish)"
    )
    completion.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to complete in")
    parser.epilog = _command_examples(commands)
    return parser


def _extension(name: str) -> Any:
    """The extension module ``name``, or None while it does not exist (any other import failure is a bug)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def _command_examples(commands: Any) -> str:
    """The command list of ``glassnet --help``: each command, its help line and one example."""
    import textwrap

    aliases = {
        name: [a for a, p in commands.choices.items() if p is sub and a != name]
        for name, sub in commands.choices.items()
    }
    lines = ["commands (`glassnet COMMAND --help` lists a command's options):"]
    for action in commands._choices_actions:
        name, text = action.dest, action.help or ""
        if aliases.get(name):
            text += f" (also: {', '.join(aliases[name])})"
        wrapped = textwrap.wrap(text, HELP_WIDTH - 14) or [""]
        lines.append(f"  {name:<10}  {wrapped[0]}")
        lines += [f"{'':<14}{line}" for line in wrapped[1:]]
        if name in EXAMPLES:
            lines.append(f"{'':<14}$ {EXAMPLES[name]}")
    lines += [
        "",
        "Every command takes --quiet (no progress bars) and --debug (the traceback of an error).",
        "Shell completion: `glassnet completion bash|zsh|fish`. Documentation: docs/cli.md",
    ]
    return "\n".join(lines)


def _stage_command(args: argparse.Namespace) -> int:
    """Run a registered stage on RUN, print its result, and keep an existing report.html current."""
    stage = args.stage
    result = stage.run(args.run, **stage.options(args))
    if stage.show is not None:
        stage.show(result, args)
    if stage.refreshes_report:
        _refresh_report(args.run, args.report)
    return 0


def _refresh_report(run: str, asked: bool) -> None:
    """Rewrite RUN's report.html when it exists or ``--report`` asks for it; else say in one line why not."""
    from glassnet.report import report
    from glassnet.runs import RunDir

    existed = RunDir(run).report.is_file()
    if existed or asked:
        path = report(run)
        print(f"report:   {path} ({'refreshed' if existed else 'written'})")
    else:
        print(f"report:   not written (no report.html yet; add --report or run glassnet report {run})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from glassnet.errors import GlassnetError

    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    _check_command(parser, argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `train ... epochs=3 --out X lr=0.1`: overrides may sit on both sides of an option
        if args.command not in OVERRIDE_COMMANDS or any(e.startswith("-") or "=" not in e for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*(getattr(args, "overrides", None) or []), *extra]
    from glassnet import progress, threads

    # --quiet also silences the bars of steps no option reaches (a built-in dataset's one-off
    # synthesis); the setting lasts for this command only (main may be called again in-process)
    was_quiet = progress.is_quiet()
    progress.set_quiet(getattr(args, "quiet", False))
    shown_as = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    undo_threads = _nothing
    try:
        # torch's CPU threads for the machine as it is now (busy, in a container), set before anything
        # imports torch; --debug says what was chosen
        undo_threads = threads.apply(choice := threads.choose())
        if args.debug:
            print(f"glassnet: {choice.describe()}", file=sys.stderr)
        handler = COMMANDS.get(args.command) or args.func
        status = handler(args)
        sys.stdout.flush()  # a reader that left (`| head`) is met here, not at the interpreter's exit
        return status
    except GlassnetError as exc:
        if args.debug:
            raise
        print(f"glassnet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("glassnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `glassnet datasets | head`: the reader left; no traceback, nothing more to print
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        warnings.formatwarning = shown_as
        progress.set_quiet(was_quiet)
        undo_threads()


def _nothing() -> None:
    pass


def _check_command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Exit with status 2 and the closest command's name when the command word is misspelled."""
    import difflib

    word = next((a for a in argv if not a.startswith("-")), None)
    names = list(_subcommands(parser))
    if word is None or word in names:
        return
    guesses = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    hint = f"did you mean {guesses[0]!r}?" if guesses else "see `glassnet --help` for the commands"
    parser.exit(EXIT_USAGE, f"glassnet: error: unknown command {word!r}; {hint}\n")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command word (aliases included) and its parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    """A warning on the command line is one ``glassnet: warning:`` line, like an error (Python's
    default adds the source line that raised it, which means nothing to a user)."""
    text = " ".join(str(message).split())
    kind = "" if category is UserWarning else f" ({category.__name__})"
    return f"glassnet: warning{kind}: {text}\n"


def cmd_demo(args: argparse.Namespace) -> int:
    from glassnet.pipeline import DEMO_CONFIG, demo

    config = DEMO_CONFIG.with_overrides({"epochs": args.epochs}) if args.epochs else DEMO_CONFIG
    start = time.perf_counter()
    print(f"glassnet demo: training a {config.model} on {config.data} into {args.out}", file=sys.stderr)
    run = demo(args.out, config=config, progress=None if args.quiet else sys.stderr, audit=not args.no_audit)
    _print_outcome(run.path, time.perf_counter() - start)
    _print_audit(run)
    print(f"report:   {run.report}")
    print(f"serve it: glassnet serve {run.path}   (then open http://127.0.0.1:8000/)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from glassnet.config import load_config, parse_overrides
    from glassnet.errors import ConfigError
    from glassnet.pipeline import train
    from glassnet.report import report

    if args.resume is not None:
        return _resume(args)
    overrides = list(args.overrides)
    flags = {
        "data": ("--data", args.data),
        "model": ("--model", args.model),
        "epochs": ("--epochs", args.epochs),
        "env": ("--env", args.env),
        "env_steps": ("--steps", args.steps),
        "step.name": ("--algo", args.algo),
        "adversarial.method": ("--adversarial", args.adversarial),
        "recipe": ("--fast", "fast" if args.fast else None),
    }
    given = parse_overrides(overrides)
    for key, (flag, value) in flags.items():
        if value is None:
            continue
        if key in given and given[key] != parse_overrides([f"{key}={value}"])[key]:
            # one rule: a setting is given once; a flag and a key=value that disagree are refused
            raise ConfigError(f"{flag} {value} and {key}={given[key]} disagree; give the setting once")
        overrides.append(f"{key}={value}")
    config = load_config(args.config, overrides)
    if args.env is not None and args.data is not None:
        raise ConfigError("give --data (a dataset) or --env (an environment), not both")
    if (args.algo is not None or args.steps is not None) and not config.env:
        raise ConfigError("--algo and --steps apply to reinforcement learning: add --env ID (see `glassnet envs`)")
    if args.config is None and args.env is None and (args.data is None or args.model is None):
        raise ConfigError("train needs --data and --model, or --env and --algo (or a --config file that names them)")
    if config.env and config.step.get("name") is None and not args.config:
        raise ConfigError("--env needs an algorithm: --algo ppo, dqn or sac")
    if args.find_lr:
        return _find_lr(config, args)
    start = time.perf_counter()
    run = train(config, out=args.out, overwrite=args.overwrite, progress=None if args.quiet else sys.stderr)
    _print_outcome(run.path, time.perf_counter() - start)
    if args.report and run.has_model():
        print(f"report:   {report(run.path)}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    """``glassnet train --resume RUN``: continue from RUN's checkpoint with RUN's own configuration."""
    from glassnet.errors import ConfigError
    from glassnet.pipeline import train
    from glassnet.report import report

    given = [f"--{k.replace('_', '-')}" for k in ("data", "model", "config", "epochs", "out", "adversarial")]
    given = [flag for flag in given if getattr(args, flag[2:].replace("-", "_")) is not None]
    given += (
        ["--overwrite"] * args.overwrite + ["--fast"] * args.fast + ["--find-lr"] * args.find_lr + list(args.overrides)
    )
    if given:
        raise ConfigError(
            f"--resume continues with the run's saved configuration and takes no other settings. "
            f"Received: {' '.join(given)}"
        )
    start = time.perf_counter()
    print(f"glassnet train: resuming {args.resume}", file=sys.stderr)
    run = train(out=args.resume, resume=True, progress=None if args.quiet else sys.stderr)
    _print_outcome(run.path, time.perf_counter() - start)
    if args.report and run.has_model():
        print(f"report:   {report(run.path)}")
    return 0


def _find_lr(config: Any, args: argparse.Namespace) -> int:
    """``glassnet train --find-lr``: the LR range test, its figure and the suggestion; no training."""
    from glassnet.pipeline.lr_finding import find_learning_rate

    run, result = find_learning_rate(config, out=args.out)
    print(
        f"LR range test: {len(result.lrs)} batches, lr {result.lrs[0]:.1e} to {result.lrs[-1]:.1e} ({result.stopped})"
    )
    if result.suggestion is None:
        print("suggested lr: none (the loss did not fall: try more steps, another max_lr or check the data)")
    else:
        print(f"suggested lr: {result.suggestion:.3g}  (loss lowest at lr {result.min_loss_lr:.3g})")
        print(f"train with:   glassnet train --data {config.data} --model {config.model} lr={result.suggestion:.3g}")
    print(f"figure:       {run.figure('lr_finder')}")
    print(f"written:      {run.result_file('lr_finder')}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from glassnet.pipeline import evaluate
    from glassnet.progress import cli_progress

    result = evaluate(
        args.run, data=args.data, split=args.split, episodes=args.episodes, seed=args.seed, progress=cli_progress(args)
    )
    if result["task"] == "control":
        scores = result["test"]
        first, last = scores["seeds"]
        print(f"{result['data']}: {scores['episodes']} episodes (seeds {first}-{last}), deterministic policy")
        print(f"  return     {scores['return_mean']:.2f} +- {scores['return_std']:.2f}", end="")
        print(f"  (min {scores['return_min']:.2f}, max {scores['return_max']:.2f})")
        print(f"  length     {scores['length_mean']:.1f}")
    else:
        print(f"{result['data']} {result['split']} split ({result['size']:,} examples):")
        for key, value in result[args.split].items():
            print(f"  {key:<10} {value:.4f}" if value == 0 or abs(value) >= 0.01 else f"  {key:<10} {value:.3g}")
        generation = result.get("generation") or {}
        if "skipped" in generation:
            print(f"  no FID: {generation['skipped']}")
        elif generation:
            whose = "the run's own classifier" if "weights" in generation["features"] else "a classifier trained now"
            print(f"  FID and KID of {generation['samples']:,} samples against {generation['compared_with']}, in the "
                  f"features of {whose} (not Inception's)")  # fmt: skip
            if generation.get("missing"):
                print(f"  missing classes: {', '.join(generation['missing'])}")
    _print_baseline(result.get("baseline"))
    print(f"written:  {Path(args.run) / 'results' / 'evaluate.json'}")
    _refresh_report(args.run, args.report)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from glassnet.errors import ConfigError
    from glassnet.pipeline import predict

    if not args.inputs and not args.data:
        if isinstance(args.onnx, str) and not args.onnx.endswith(".onnx"):
            raise ConfigError(
                f"--onnx took {args.onnx!r} as its ONNX file; put input files before --onnx, "
                "e.g. `glassnet predict RUN digit.png --onnx`"
            )
        raise ConfigError("predict needs INPUT files (.npy, .csv, images) or --data DATASET")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1. Received: --limit {args.limit}")
    if args.output:
        from glassnet.runs import RunDir

        if Path(args.output).suffix not in (".json", ".csv"):
            raise ConfigError(f"--output must end in .json or .csv. Received: --output {args.output}")
        if RunDir(args.run).owns(args.output):
            raise ConfigError(
                f"--output {args.output} is one of the run's own files; write predictions elsewhere, "
                f"e.g. --output {Path(args.run) / 'predictions.csv'}"
            )
    records = predict(args.run, inputs=args.inputs, data=args.data, split=args.split, limit=args.limit, onnx=args.onnx)
    columns = list(records[0])
    print_table(columns, [[r[c] for c in columns] for r in records])
    if args.output:
        _write_predictions(Path(args.output), records)
        print(f"written:  {args.output}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from glassnet.cli.catalog import datasets

    rows = [[d.name, d.task, d.modality, d.size, d.source] for d in datasets()]
    print_table(["name", "task", "modality", "size", "source"], rows, width=_table_width())
    print("details: docs/data.md; train with: glassnet train --data NAME --model M (see `glassnet models`)")
    return 0


def _table_width() -> int:
    """Tables fit the terminal, at most ``HELP_WIDTH`` columns (and at least 60)."""
    return max(60, min(shutil.get_terminal_size((HELP_WIDTH, 24)).columns, HELP_WIDTH))


def cmd_envs(args: argparse.Namespace) -> int:
    from glassnet.data.environments import environment_ids, list_environments

    if args.family:
        for env_id in environment_ids(args.family):
            print(env_id)
        return 0
    rows = [
        [
            f["family"],
            "yes" if f["installed"] else "no",
            ", ".join(f["examples"]),
            "" if f["installed"] else f["install"],
        ]
        for f in list_environments()
    ]
    print_table(["family", "installed", "examples", "install with"], rows, width=_table_width())
    print("train with: glassnet train --env ID --algo ppo|dqn|sac --steps N (`--family NAME` lists every id)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from glassnet.errors import ConfigError

    if args.describe is not None:
        return _describe_model(args)
    if args.overrides or args.batch_size is not None:
        shown = " ".join(args.overrides) or f"--batch-size {args.batch_size}"
        raise ConfigError(f"hyper-parameters and --batch-size apply to --describe NAME only. Received: {shown}")
    if args.data is None:
        from glassnet.cli.catalog import models

        rows = [[m.name, "/".join(m.modalities), "/".join(m.tasks), m.description] for m in models()]
        print_table(["name", "modalities", "tasks", "description"], rows, width=_table_width())
        return 0
    from glassnet.data import load_dataset
    from glassnet.models import list_models, model_info

    spec = load_dataset(args.data).spec
    rows = []
    for name in list_models(spec=spec):
        info = model_info(name)
        rows.append([name, _parameter_count(name, spec), "/".join(info.modalities), "/".join(info.tasks)])
        rows[-1].append(info.description)
    print_table(["name", "parameters", "modalities", "tasks", "description"], rows, width=_table_width())
    return 0


def _describe_model(args: argparse.Namespace) -> int:
    from glassnet.data import load_dataset
    from glassnet.errors import ConfigError
    from glassnet.models import model_info
    from glassnet.models.describe import describe

    model_info(args.describe)  # an unknown name fails before the dataset is loaded
    if args.data is None:
        raise ConfigError(f"--describe {args.describe} needs --data D: the model is built for a dataset's shape")
    batch_size = 64 if args.batch_size is None else args.batch_size
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1. Received: --batch-size {batch_size}")
    hparams = _model_overrides(args.overrides)
    spec = load_dataset(args.data).spec
    info = describe(args.describe, spec, batch_size=batch_size, **hparams)
    shape = " x ".join(map(str, info["input_shape"]))
    print(f"{info['name']} for {args.data} ({spec.modality} {shape}, {spec.task}, {spec.num_outputs} outputs)")
    # values as they are typed back on the command line (model.key=value is read as YAML)
    shown = {k: v if isinstance(v, str) else json.dumps(v) for k, v in info["hparams"].items()}
    print("hyper-parameters: " + ", ".join(f"{k}={v}" for k, v in shown.items()) + "\n")
    shapes = [" x ".join(map(str, r["output_shape"] or [])) or "-" for r in info["layers"]]
    rows = [
        [r["name"], r["type"], shape, f"{r['parameters']:,}", f"{r['flops']:,}"]
        for r, shape in zip(info["layers"], shapes)
    ]
    print_table(["layer", "type", "output shape", "parameters", "FLOPs"], rows)
    _print_totals(info)
    return 0


def _model_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["model.width=64"]`` -> ``{"width": 64}``; only model hyper-parameters apply to --describe."""
    from glassnet.config import parse_overrides
    from glassnet.errors import ConfigError

    hparams = {}
    for key, value in parse_overrides(overrides).items():
        if not key.startswith("model."):
            raise ConfigError(f"--describe takes model.<hyper-parameter>=value (e.g. model.width=64). Received: {key}")
        hparams[key.removeprefix("model.")] = value
    return hparams


def _print_totals(info: dict[str, Any]) -> None:
    # a layer called twice is listed twice with its total, so count each layer name once
    in_layers = sum({r["name"]: r["flops"] for r in info["layers"]}.values())
    elsewhere = f"; {info['flops'] - in_layers:,} outside the listed layers" if info["flops"] > in_layers else ""
    print(f"\nparameters:  {info['parameters']:,} ({info['trainable_parameters']:,} trainable)")
    print(f"FLOPs:       {info['flops']:,} per example, one forward pass (a multiply-add counts 2){elsewhere}")
    print(f"weights:     {_bytes(info['parameter_bytes'])} parameters, {_bytes(info['buffer_bytes'])} buffers")
    print(
        f"activations: {_bytes(info['activation_bytes'])} of layer outputs for a batch of {info['batch_size']}; "
        f"{_bytes(info['saved_for_backward_bytes'])} kept for the backward pass"
    )


def _parameter_count(name: str, spec: Any) -> str:
    from glassnet.errors import ConfigError
    from glassnet.models import count_parameters, create_model

    try:
        return f"{count_parameters(create_model(name, spec)):,}"
    except ConfigError:  # fits the modality and task, but not this spec's finer shape with its defaults
        return "-"


def _bytes(count: int) -> str:
    if count < 1024:
        return f"{count:,} B"
    size = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:,.1f} {unit}"


def cmd_completion(args: argparse.Namespace) -> int:
    from glassnet.cli.completion import script

    print(script(args.shell, build_parser()), end="")
    return 0


COMMANDS = {
    "completion": cmd_completion,
    "demo": cmd_demo,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "datasets": cmd_datasets,
    "envs": cmd_envs,
    "models": cmd_models,
}


def _print_audit(run: Any) -> None:
    """One line per stage that has a result in the run: its headline."""
    for stage in list_stages():
        result = run.read_result(stage.name) if stage.headline is not None else None
        line = stage.headline(result) if result else None
        if line:
            print(f"{stage.name + ':':<9} {line}")


def _print_outcome(run_dir: Path, seconds: float) -> None:
    from glassnet.train.distributed import is_global_zero
    from glassnet.train.tasks import get_task

    if not is_global_zero():  # under torchrun, rank 0 writes the run and speaks for all
        return
    result = json.loads((run_dir / "results" / "train.json").read_text())
    print(f"run:      {run_dir}")
    print(f"test:     {get_task(result['task']).headline(result['test'])}")
    _print_baseline(result.get("baseline"))
    print(f"time:     {seconds:.1f} s")


def _print_baseline(block: dict[str, Any] | None) -> None:
    """The verdict against the classical baseline, and a warning when the network trails it."""
    from glassnet.train.baselines import sentence

    if not block:
        return
    if "skipped" in block:
        print(f"baseline: none ({block['skipped']})")
        return
    line = sentence(block)
    if line is None:
        return
    print(f"baseline: {line}")
    if block["comparison"]["verdict"] == "trails" and block.get("name") == "random":
        print("warning:  a random policy does better: train for more steps, or tune the algorithm's step options")
    elif block["comparison"]["verdict"] == "trails":
        print(
            "warning:  a classical model does better on this data: try more epochs, another model or its "
            "hyper-parameters, or use the simple model (see results/train.json: baseline)"
        )


def _write_predictions(path: Path, records: list[dict[str, Any]]) -> None:
    import csv
    import io

    from glassnet.errors import ConfigError
    from glassnet.runs import write_json, write_text

    if path.suffix == ".json":
        write_json(path, records)
    elif path.suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
        write_text(path, buffer.getvalue())
    else:
        raise ConfigError(f"--output must end in .json or .csv. Received: --output {path}")


def _version() -> str:
    from glassnet.version import __version__

    return f"glassnet {__version__}"


if __name__ == "__main__":
    sys.exit(main())
