import pytest

from vidssl import cli
from vidssl.errors import UserError


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_no_command_is_usage_error(capsys):
    assert cli.main([]) == 2


def test_user_error_is_one_line_exit_2(monkeypatch, capsys):
    def boom(args):
        raise UserError(
            "dataset root /nope does not exist; expected UCF-101/ and ucfTrainTestlist/"
        )

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(_run=boom)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "vidssl: error: dataset root /nope does not exist; expected UCF-101/ and ucfTrainTestlist/"
    )
