"""``vidssl downstream charades``: preset selection and config errors (no training)."""

from __future__ import annotations

import yaml

from vidssl.cli import main


def _dry_run(capsys, *args: str) -> dict:
    assert main(["downstream", "charades", *args, "--dry-run"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_preset_flags_pick_the_reference_config_seed_and_checkpoint(capsys):
    cfg = _dry_run(capsys, "--init", "gdt", "--preset", "seed2")
    assert (cfg["method"]["init"], cfg["trainer"]["seed"], cfg["trainer"]["epochs"]) == (
        "gdt",
        2,
        57,
    )
    assert cfg["method"]["checkpoint"] == "checkpoints_pretraining/gdt/gdt_K400.pth"
    cfg = _dry_run(capsys, "--init", "tclr", "--checkpoint", "x.pth", "optim.lr=0.01")
    assert (cfg["model"]["backbone"], cfg["method"]["checkpoint"]) == ("r2plus1d_18_tclr", "x.pth")
    assert cfg["optim"]["lr"] == 0.01 and cfg["trainer"]["seed"] == 0
    cfg = _dry_run(capsys, "--init", "scratch", "--preset", "tiny")
    assert (cfg["method"]["checkpoint"], cfg["model"]["width_mult"], cfg["data"]["img_size"]) == (
        None, 0.125, 32,
    )  # fmt: skip


def test_bad_requests_are_one_line_errors(capsys):
    assert main(["downstream", "charades", "--init", "moco", "--preset", "tiny", "--dry-run"]) == 2
    assert "needs a checkpoint" in capsys.readouterr().err
    assert main(["downstream", "charades", "--init", "scratch", "method.nope=1", "--dry-run"]) == 2
    assert "method.nope" in capsys.readouterr().err
