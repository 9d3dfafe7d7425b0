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


def _commands(parser) -> set[str]:
    """Every 'group sub' / 'command' the parser accepts."""
    import argparse

    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = _commands(sub)
                found |= {f"{name} {s}" for s in inner} if inner else {name}
    return found


def test_every_implemented_command_is_registered():
    # A command whose module is missing drops out of the table silently (cli._available); this
    # list is what is implemented, so a lost or a new command fails here until it is updated.
    assert _commands(cli.build_parser()) == {
        "data synth", "data frames", "data flow", "data lmdb", "data check", "data charades",
        "pretrain", "eval retrieval", "eval linear", "eval finetune", "downstream charades",
        "downstream ava", "bench decode", "bench reliability",
        "convert", "demo", "bench loader", "bench backbone", "bench train", "bench flow",
    }  # fmt: skip


def test_every_registered_module_imports_and_has_the_command_interface():
    import importlib

    for entry in cli.COMMANDS.values():
        specs = [entry] if isinstance(entry, tuple) else list(entry.values())
        for module, _ in specs:
            if cli._available(module):
                command = importlib.import_module(f"vidssl.commands.{module}")
                assert callable(command.add_arguments) and callable(command.run), module
