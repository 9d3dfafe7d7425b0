"""``vidssl bench backbone``: case planning, memory accounting and a tiny end-to-end run."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from vidssl import cli
from vidssl.bench import backbone as bench_backbone
from vidssl.commands import bench_backbone as backbone_command
from vidssl.models import BACKBONE_NAMES, build_backbone


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    backbone_command.add_arguments(parser)
    return parser.parse_args(argv)


def test_full_plan_covers_reference_and_demo_sizes():
    cases = bench_backbone.plan_cases(
        parse(["--device", "cpu", "--backbones", "s3d,r2plus1d_18", "--batch-size", "1"])
    )
    # s3d: demo + 32×128²; r2plus1d_18: demo + 16×112² + 32×112²; × 2 precisions × 2 formats
    assert len(cases) == (2 + 3) * 2 * 2
    reference = {
        (c.backbone, c.frames, c.height, c.batch_size, c.width_mult)
        for c in cases
        if c.size == "reference"
    }
    assert reference == {
        ("s3d", 32, 128, 1, 1.0),
        ("r2plus1d_18", 16, 112, 1, 1.0),
        ("r2plus1d_18", 32, 112, 1, 1.0),
    }
    demo = {(c.frames, c.height, c.width_mult) for c in cases if c.size == "demo"}
    assert demo == {(*bench_backbone.DEMO_CLIP[:2], bench_backbone.DEMO_WIDTH_MULT)}


def test_quick_plan_on_cpu_is_demo_only_contiguous():
    cases = bench_backbone.plan_cases(parse(["--device", "cpu", "--quick"]))
    assert len(cases) == 2 * len(BACKBONE_NAMES)  # fp32 + bf16
    assert {(c.size, c.memory_format, c.width_mult) for c in cases} == {
        ("demo", "contiguous", bench_backbone.DEMO_WIDTH_MULT)
    }
    assert {c.precision for c in cases} == {"fp32", "bf16"}


def test_saved_activation_bytes_counts_distinct_storages():
    x = torch.ones(10, requires_grad=True)
    w = torch.full((10,), 2.0, requires_grad=True)

    def step() -> None:
        y = x * w  # saves x and w: 2 × 10 float32
        (y * y).sum().backward()  # saves y twice, one storage: 10 float32

    assert bench_backbone._saved_activation_bytes(step) == 3 * 10 * 4


def test_best_memory_format_summary():
    base = {"device": "cpu", "backbone": "c3d", "size": "demo", "frames": 8, "height": 64}
    base |= {"width": 64, "precision": "fp32"}
    results = [
        {**base, "memory_format": "contiguous", "clips_per_s": 10.0},
        {**base, "memory_format": "channels_last_3d", "clips_per_s": 15.0},
        {**base, "precision": "bf16", "memory_format": "contiguous", "clips_per_s": 4.0},
        {**base, "precision": "bf16", "memory_format": "channels_last_3d", "error": "oom"},
    ]
    summary = bench_backbone.best_memory_formats(results)
    assert summary == [
        {**base, "best_memory_format": "channels_last_3d", "channels_last_speedup": 1.5}
    ]


def test_tiny_run_writes_json(tmp_path, capsys):
    out = tmp_path / "bench" / "backbone.json"
    argv = [
        "bench",
        "backbone",
        "--quick",
        "--device",
        "cpu",
        "--backbones",
        "r21d_10",
        "--threads",
        "2",
    ]
    argv += ["--precision", "bf16", "--iters", "1", "--out", str(out)]
    threads_before = torch.get_num_threads()
    assert cli.main(argv) == 0
    assert torch.get_num_threads() == threads_before  # restored after the run
    report = json.loads(out.read_text())
    assert report["benchmark"] == "backbone" and report["quick"] is True
    (entry,) = report["results"]
    expected_params = sum(
        p.numel() for p in build_backbone("r21d_10", width_mult=0.125).parameters()
    )
    assert entry["params"] == expected_params
    assert (entry["backbone"], entry["precision"], entry["batch_size"]) == ("r21d_10", "bf16", 2)
    assert entry["clips_per_s"] > 0 and entry["saved_activation_mib"] > 0
    assert entry["clips_per_s"] == pytest.approx(2 * 1000 / entry["ms_per_step"])
    assert entry["peak_memory_mib"] is None  # CPU
    assert report["environment"]["threads"] == 2
    assert "r21d_10" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backbones", "resnet50"], "backbone 'resnet50'"),
        (["--iters", "0"], "--iters"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_bad_options_are_user_errors(extra, message, capsys):
    assert cli.main(["bench", "backbone", "--quick", "--device", "cpu", *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_request_without_cuda(capsys):
    assert cli.main(["bench", "backbone", "--quick", "--device", "cuda"]) == 2
    assert "--device cuda" in capsys.readouterr().err
