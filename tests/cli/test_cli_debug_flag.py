import pytest

from glassnet.cli import main
from glassnet.errors import UnknownNameError


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "train", "--data", "digit", "--model", "cnn"],  # was swallowed by the subcommand's default
        ["train", "--data", "digit", "--model", "cnn", "--debug"],
    ],
)
def test_debug_before_or_after_the_command_raises_the_original_error(argv):
    with pytest.raises(UnknownNameError):
        main(argv)


def test_without_debug_the_error_is_one_line_and_exit_2(capsys):
    assert main(["train", "--data", "digit", "--model", "cnn"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("glassnet: error: unknown dataset 'digit'. Did you mean 'digits'? Available: ")


def test_overrides_are_only_taken_by_train(capsys):
    with pytest.raises(SystemExit) as info:
        main(["datasets", "lr=0.1"])
    assert info.value.code == 2 and "unrecognized arguments: lr=0.1" in capsys.readouterr().err
