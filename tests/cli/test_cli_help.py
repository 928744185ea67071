"""The command line's help, typo suggestions, tables, shell completion, --quiet and extension commands."""

import argparse
import importlib
import shlex
import shutil
import subprocess
import sys
import textwrap

import pytest

from glassnet.cli import catalog, main
from glassnet.stages import print_table

cli = importlib.import_module("glassnet.cli.main")  # the module (``glassnet.cli.main`` is also the function's name)

WIDTH = 100  # conftest.py sets COLUMNS=100


def commands():
    """Every command word and its parser (aliases included)."""
    return cli._subcommands(cli.build_parser())


# ---------------------------------------------------------------- help and typos


def test_help_lists_every_command_with_an_example_within_100_columns(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= WIDTH
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in subparsers._choices_actions:
        assert f"\n  {action.dest:<10}  " in out, action.dest
        words = {action.dest, *[n for n, p in subparsers.choices.items() if p is subparsers.choices[action.dest]]}
        examples = [line for line in out.splitlines() if line.strip().startswith("$ glassnet ")]
        assert any(line.split()[2] in words for line in examples), f"no example of {action.dest}"


@pytest.mark.parametrize("name", sorted(cli.EXAMPLES))
def test_every_example_is_a_valid_command_line(name):
    words = shlex.split(cli.EXAMPLES[name].split(">")[0])
    assert words[0] == "glassnet"
    if words[1] not in commands():
        pytest.skip(f"{words[1]} is not installed in this checkout")
    args, extra = cli.build_parser().parse_known_args(words[1:])
    assert all("=" in word for word in extra) and (not extra or args.command in cli.OVERRIDE_COMMANDS)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("trian", "train"), ("evalute", "evaluate"), ("atack", "attack"), ("datasts", "datasets")],
)
def test_a_misspelled_command_suggests_the_closest(capsys, typed, meant):
    with pytest.raises(SystemExit) as exit:
        main([typed, "runs/x"])
    assert exit.value.code == 2
    assert capsys.readouterr().err == f"glassnet: error: unknown command {typed!r}; did you mean {meant!r}?\n"


def test_an_unrelated_word_points_to_the_help(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--debug", "xyzzy"])
    assert exit.value.code == 2
    assert "unknown command 'xyzzy'; see `glassnet --help`" in capsys.readouterr().err


def test_every_command_takes_quiet_once():
    for name, parser in commands().items():
        flags = [f for a in parser._actions for f in a.option_strings]
        assert flags.count("--quiet") == 1, name
        quiet = next(a for a in parser._actions if "--quiet" in a.option_strings)
        assert (quiet.dest, quiet.default, quiet.const) == ("quiet", False, True), name


def test_a_command_usage_names_the_program_and_the_command(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate"])
    assert capsys.readouterr().err.startswith("usage: glassnet evaluate [-h] [--debug] [--quiet]")


# ---------------------------------------------------------------- tables


def test_datasets_table_fits_100_columns_and_names_every_dataset(capsys):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= WIDTH
    assert lines[0].split() == ["name", "task", "modality", "size", "source"]
    names = [line.split()[0] for line in lines[2:] if line and not line.startswith((" ", "details:"))]
    assert names == catalog.dataset_names()
    # a wrapped source keeps all its words, in order
    text = " ".join(" ".join(lines).split())
    assert "GLASSNET_DATA/" in text and "BSD-3" in text


def test_models_table_fits_100_columns(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= WIDTH
    assert [line.split()[0] for line in lines[2:] if line and not line.startswith(" ")] == [
        m.name for m in catalog.models()
    ]


def test_print_table_wraps_long_cells_into_their_column(capsys):
    prose = "a long description of the thing that goes on and on, past any reasonable width of a column here"
    print_table(["name", "path", "about"], [["x", "/a/b/c/d/e/f/g/h/i/j/k/l/m", prose], ["y", "-", "short"]], width=50)
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 50
    about = lines[0].index("about")
    assert " ".join(line[about:].strip() for line in lines[2:] if line[about:].strip() and line[0] != "y") == prose
    assert "" in lines  # rows that wrap are set apart by a blank line


def test_print_table_without_width_is_unchanged(capsys):
    print_table(["a", "b"], [["1", "x" * 150]])
    assert capsys.readouterr().out.splitlines()[2] == "1  " + "x" * 150


# ---------------------------------------------------------------- completion


def completion(capsys, shell):
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def test_bash_completion_is_valid_and_completes_commands_options_and_names(capsys, tmp_path):
    script = completion(capsys, "bash")
    path = tmp_path / "glassnet.bash"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    for name in commands():
        assert f"\n        {name}) opts=" in script, name
    # ask the function itself, as bash would on `glassnet train --da<TAB>` and `glassnet train --data br<TAB>`
    probe = textwrap.dedent(
        f"""
        source {path}
        COMP_WORDS=(glassnet train --da); COMP_CWORD=2; _glassnet; echo "${{COMPREPLY[@]}}"
        COMP_WORDS=(glassnet train --data br); COMP_CWORD=3; _glassnet; echo "${{COMPREPLY[@]}}"
        COMP_WORDS=(glassnet --debug ev); COMP_CWORD=2; _glassnet; echo "${{COMPREPLY[@]}}"
        COMP_WORDS=(glassnet train --model ml); COMP_CWORD=3; _glassnet; echo "${{COMPREPLY[@]}}"
        """
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["--data", "breast-cancer", "evaluate", "mlp"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_name_every_command(capsys, shell, tmp_path):
    script = completion(capsys, shell)
    for name in commands():
        assert name in script
    assert "digits" in script and "--quiet" in script.replace("-l quiet", "--quiet")
    if shutil.which(shell):
        path = tmp_path / f"glassnet.{shell}"
        path.write_text(script)
        subprocess.run([shell, "-n" if shell == "zsh" else "--no-execute", str(path)], check=True)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_dispatches_past_global_options(capsys, tmp_path):
    path = tmp_path / "_glassnet"
    path.write_text(completion(capsys, "zsh"))
    # zsh's completion helpers replaced by stubs that print what they were given
    probe = textwrap.dedent(
        f"""
        compdef() {{ print "compdef $*" }}
        _arguments() {{ print -r -- "arguments $#" }}
        _describe() {{ print -r -- "describe $1" }}
        source {path}
        words=(glassnet --debug tr); CURRENT=3; _glassnet
        words=(glassnet --debug train --data ""); CURRENT=5; _glassnet
        """
    )
    out = subprocess.run(["zsh", "-f", "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    train = next(p for n, p in commands().items() if n == "train")
    flags = sum(len(a.option_strings) for a in train._actions if a.option_strings)
    assert out == ["compdef _glassnet glassnet", "describe command", f"arguments {flags + 2}"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completion_completes_commands_and_dataset_names(capsys, tmp_path):
    path = tmp_path / "glassnet.fish"
    path.write_text(completion(capsys, "fish"))
    probe = f"source {path}; complete -C 'glassnet --debug tr'; complete -C 'glassnet train --data br'"
    out = subprocess.run(["fish", "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split("\t")[0] for line in out] == ["train", "breast-cancer"]


def test_completion_of_another_shell_is_refused(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["completion", "tcsh"])
    assert exit.value.code == 2


# ---------------------------------------------------------------- extension commands


def test_extensions_add_commands_that_main_dispatches(capsys, tmp_path, monkeypatch):
    (tmp_path / "hello_extension.py").write_text(
        textwrap.dedent(
            """
            def add_parser(commands, common):
                parser = commands.add_parser("hello", parents=[common], help="say hello")
                parser.add_argument("overrides", nargs="*")
                parser.set_defaults(func=lambda args: print("hello", args.overrides, args.quiet) or 0)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "EXTENSIONS", ("hello_extension", "glassnet.cli.not_written_yet"))
    monkeypatch.setattr(cli, "OVERRIDE_COMMANDS", (*cli.OVERRIDE_COMMANDS, "hello"))
    assert main(["hello", "lr=log(1e-4,1e-2)", "--quiet", "model.hidden=[64,128]"]) == 0
    assert capsys.readouterr().out == "hello ['lr=log(1e-4,1e-2)', 'model.hidden=[64,128]'] True\n"


def test_an_extension_that_fails_to_import_something_else_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "broken_extension.py").write_text("import glassnet_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "EXTENSIONS", ("broken_extension",))
    with pytest.raises(ModuleNotFoundError, match="glassnet_no_such_dependency"):
        cli.build_parser()


def test_tune_takes_key_value_overrides():
    assert "tune" in cli.OVERRIDE_COMMANDS


def test_python_dash_m_glassnet_runs_the_command():
    out = subprocess.run([sys.executable, "-m", "glassnet", "trian"], capture_output=True, text=True)
    assert out.returncode == 2 and "did you mean 'train'?" in out.stderr


def test_docs_cli_md_shows_every_command_with_its_example():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    for name in commands():
        assert f"`glassnet {name}" in text, name
    for example in cli.EXAMPLES.values():
        assert example.split(" > ")[0] in text, example
