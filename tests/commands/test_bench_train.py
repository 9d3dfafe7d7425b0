from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch

from vidssl.cli import main


def test_quick_bench_times_both_loops_on_the_same_work(tmp_path: Path) -> None:
    out = tmp_path / "bench" / "train.json"
    code = main(["bench", "train", "--quick", "--steps", "2", "--warmup", "0", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "train" and report["quick"] is True
    settings = report["settings"]
    assert (settings["backbone"], settings["width_mult"], settings["batch_size"]) == (
        "s3d",
        0.0625,
        4,
    )
    assert (settings["frames"], settings["size"], settings["queue_size"]) == (8, 32, 16)
    for side in ("bare", "vidssl"):
        steps = report[side]["steps_ms"]
        assert len(steps) == 2 and all(ms > 0 for ms in steps)
        assert report[side]["ms_per_step_median"] == pytest.approx(statistics.median(steps))
    ratio = report["vidssl"]["ms_per_step_median"] / report["bare"]["ms_per_step_median"]
    assert report["ratio"] == pytest.approx(ratio)
    assert report["meets_target"] == (report["ratio"] <= report["target_ratio"] == 1.10)
    # same seed and the same step on CPU: the two loops end at bit-identical query encoders
    assert report["max_weight_difference"] == 0.0


@pytest.mark.parametrize(
    "arguments",
    [
        ["--queue-size", "10", "--batch-size", "4"],
        ["--steps", "1"],
        ["--width-mult", "0"],
    ],
)
def test_bad_options_are_user_errors(arguments: list[str], capsys) -> None:
    assert main(["bench", "train", "--quick", *arguments]) == 2
    assert "vidssl: error: --" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_a_device_is_a_user_error(capsys) -> None:
    assert main(["bench", "train", "--quick", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.gpu
def test_quick_bench_on_cuda_in_bf16(tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    arguments = ["--quick", "--device", "cuda", "--precision", "bf16-mixed", "--out", str(out)]
    assert main(["bench", "train", *arguments]) == 0
    report = json.loads(out.read_text())
    assert report["settings"]["device"] == "cuda" and report["ratio"] > 0
