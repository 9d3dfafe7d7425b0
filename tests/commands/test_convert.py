"""``vidssl convert`` end to end: report, outputs, formats and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from tests.models.test_checkpoints_fixtures import (
    assert_state_equal,
    random_tensor,
    randomized_backbone,
    save,
    shifted,
    trunk_state,
)

from vidssl import cli
from vidssl.models import load_encoder
from vidssl.models.checkpoints.io import file_sha256


def moco_checkpoint(tmp_path, *, width_mult=0.0625):
    source = randomized_backbone("r2plus1d_18", width_mult=width_mult)
    trunk = trunk_state(source)
    state = {f"module.encoder_q.{k}": v for k, v in trunk.items()}
    state["module.encoder_q.fc.0.weight"] = random_tensor(8, source.feature_dim)
    state.update({f"module.encoder_k.{k}": v for k, v in shifted(trunk).items()})
    state["module.queue"] = random_tensor(128, 16)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    path = save(tmp_path, "checkpoint_0199.pth.tar", {"epoch": 199, "state_dict": state})
    return path, source, trunk


def test_convert_writes_an_encoder_and_prints_the_report(tmp_path, capsys):
    path, source, trunk = moco_checkpoint(tmp_path)
    out = tmp_path / "enc"
    report = tmp_path / "report.json"
    code = cli.main(
        ["convert", str(path), "--method", "VideoMoCo", "--out", str(out), "--report", str(report)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "method video_moco, arch r2plus1d_18, in_channels 3, width_mult 0.0625" in printed
    assert f"sha256 {file_sha256(path)}" in printed
    assert "loaded 222 tensors from keys under 'encoder_q.'" in printed
    assert "ignored 225 keys in 4 groups" in printed  # 222 encoder_k + fc.0.weight + queue + ptr
    for line in ("  encoder_k: 222", "  encoder_q.fc: 1", "  queue: 1", "  queue_ptr: 1"):
        assert line in printed.splitlines()

    model = load_encoder(out)
    assert_state_equal(model, trunk)
    clips = torch.randn(1, 3, 8, 32, 32)
    assert torch.equal(model(clips), source(clips))
    info = model.encoder_info
    assert info["source"] == {
        "method": "video_moco",
        "path": str(path),
        "sha256": file_sha256(path),
    }
    assert info["normalization"]["name"] == "imagenet" and info["modality"] == "rgb"
    saved_report = json.loads(report.read_text())
    assert saved_report["ignored"][-2:] == ["module.queue", "module.queue_ptr"]
    assert len(saved_report["loaded"]) == 222


def test_convert_tclr_records_bgr_and_no_normalisation(tmp_path, capsys):
    trunk = trunk_state(randomized_backbone("r2plus1d_18_tclr", width_mult=0.0625))
    path = save(
        tmp_path, "rpd18kin400.pth", {"state_dict": {f"module.0.{k}": v for k, v in trunk.items()}}
    )
    assert (
        cli.main(
            [
                "convert",
                str(path),
                "--method",
                "TCLR",
                "--out",
                str(tmp_path / "o"),
                "--modality",
                "rgb",
            ]
        )
        == 0
    )
    info = load_encoder(tmp_path / "o").encoder_info
    assert (info["arch"], info["variant"], info["channel_order"]) == (
        "r2plus1d_18_tclr",
        "tclr_layer4",
        "bgr",
    )
    assert info["normalization"] == {"name": "none", "mean": [0.0] * 3, "std": [1.0] * 3}


def test_convert_to_torchvision_layout(tmp_path, capsys):
    path, _, _ = moco_checkpoint(tmp_path)
    args = [
        "convert",
        str(path),
        "--method",
        "moco",
        "--out",
        str(tmp_path / "tv"),
        "--format",
        "torchvision",
    ]
    assert cli.main(args) == 2
    assert "export with --format vidssl" in capsys.readouterr().err
    full_trunk = trunk_state(randomized_backbone("r3d_18", width_mult=1.0))
    full = save(tmp_path, "r3d.pth", full_trunk)
    args = [
        "convert",
        str(full),
        "--method",
        "supervised",
        "--out",
        str(tmp_path / "tv"),
        "--format",
        "torchvision",
    ]
    assert cli.main(args) == 0
    state = torch.load(tmp_path / "tv" / "r3d_18.pth", weights_only=True)
    assert list(state) == list(full_trunk)
    assert all(torch.equal(state[k], v) for k, v in full_trunk.items())


def test_convert_scratch_needs_no_file(tmp_path):
    out = tmp_path / "scratch"
    assert cli.main(["convert", "--method", "scratch", "--arch", "r3d_10", "--out", str(out)]) == 0
    info = load_encoder(out).encoder_info
    assert info["arch"] == "r3d_10" and info["source"] == {
        "method": "scratch",
        "path": None,
        "sha256": None,
    }


def test_convert_errors_exit_2_with_one_line(tmp_path, capsys):
    noise = tmp_path / "noise.pth"
    noise.write_bytes(os.urandom(2048))
    cases = [
        ["convert", str(noise), "--method", "moco", "--out", str(tmp_path / "a")],
        ["convert", str(tmp_path / "missing.pth"), "--method", "ctp", "--out", str(tmp_path / "b")],
        ["convert", str(noise), "--method", "simclr", "--out", str(tmp_path / "c")],
    ]
    for argv in cases:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("vidssl: error: ") and err.count("\n") == 1
    assert not any((tmp_path / name).exists() for name in "abc")


def test_convert_refuses_code_payload(tmp_path, capsys):
    marker = tmp_path / "RAN"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = save(tmp_path, "evil.pth", {"state_dict": {}, "x": Payload()})
    assert cli.main(["convert", str(path), "--method", "moco", "--out", str(tmp_path / "o")]) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_help_constants_match_the_library():
    from vidssl.commands import convert
    from vidssl.models.checkpoints.adapters import _METHOD_ALIASES, METHOD_NAMES, NORMALIZATIONS
    from vidssl.models.checkpoints.arch import ARCH_NAMES

    assert tuple(NORMALIZATIONS) == convert.NORMALIZATION_CHOICES
    assert set(re.findall(r"\w+", convert.ARCH_HELP)) == set(ARCH_NAMES)
    assert set(re.findall(r"\w+", convert.METHOD_CHOICES_HELP)) - {"also"} == {
        *METHOD_NAMES,
        *_METHOD_ALIASES,
    } - {"avidcma", "videomoco", "pretextcontrast"}


def test_building_the_parser_does_not_import_torch():
    code = (
        "import argparse, sys; from vidssl.commands import convert; "
        "convert.add_arguments(argparse.ArgumentParser()); print('torch' in sys.modules)"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    assert result.stdout.strip() == "False"
