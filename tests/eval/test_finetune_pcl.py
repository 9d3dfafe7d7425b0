"""PCL fine-tuning protocol: held-out rows, the 3-split mean, and `--splits 1,2,3` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidssl import cli
from vidssl.errors import ConfigError
from vidssl.eval.finetune_pcl import hold_out, split_mean


def test_split_mean_by_hand() -> None:
    per_split = {
        1: {"rgb": {"top1": 0.799, "top5": 0.9, "videos": 3783, "best_epoch": 7}},
        2: {"rgb": {"top1": 0.82, "top5": 0.95, "videos": 3734, "best_epoch": 9}},
        3: {"rgb": {"top1": 0.814, "top5": 0.91, "videos": 3696, "best_epoch": 3}},
    }
    mean = split_mean(per_split)
    assert mean == {"rgb": pytest.approx({"top1": 0.811, "top5": 0.92})}
    with pytest.raises(ConfigError):
        split_mean({})


def test_hold_out_rows() -> None:
    train, val = hold_out(3, 10, seed=0)
    assert len(val) == 3 and len(train) == 7
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(10))
    assert np.array_equal(hold_out(3, 10, seed=0)[1], val)
    with pytest.raises(ConfigError, match="val_videos=10"):
        hold_out(10, 10, seed=0)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from vidssl.data.synthetic import make_synthetic_dataset
    from vidssl.models import build_backbone
    from vidssl.models.checkpoints.export import export_encoder

    root = tmp_path_factory.mktemp("pcl_ft")
    make_synthetic_dataset(root / "synth", classes=2, videos_per_class=4, frames=24, size=40,
                           workers=1)  # fmt: skip
    torch.manual_seed(0)
    backbone = build_backbone("r3d_10", width_mult=0.125)
    export_encoder(backbone, root / "enc", input_size=(8, 32, 32), residual="pcl")
    return root


def test_pcl_finetune_three_splits_and_their_mean(synth, tmp_path, capsys) -> None:
    args = ["eval", "finetune", "--encoder", str(synth / "enc"), "--preset", "pcl_tiny_finetune",
            "--root", str(synth / "synth"), "--out", str(tmp_path), "--splits", "1,2,3",
            "--set", "finetune.epochs=1"]  # fmt: skip
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "finetune rgb mean of splits 1,2,3: top1" in printed
    top1 = []
    for split in (1, 2, 3):
        record = json.loads((tmp_path / f"finetune_split{split}.json").read_text())
        assert record["dataset"]["split_id"] == split
        assert record["protocol"]["name"] == "pcl" and record["protocol"]["val_videos"] == 2
        rgb = record["results"]["rgb"]
        assert rgb["best_epoch"] == 0 and rgb["videos"] == 4  # 2 classes x 2 test videos
        assert rgb["top5"] == 1.0
        top1.append(rgb["top1"])
    summary = json.loads((tmp_path / "finetune_splits.json").read_text())
    assert summary["mean"]["rgb"]["top1"] == pytest.approx(sum(top1) / 3)
    assert set(summary["splits"]) == {"1", "2", "3"}


def test_bad_splits_exit_2(synth, tmp_path, capsys) -> None:
    args = ["eval", "finetune", "--encoder", str(synth / "enc"), "--preset", "pcl_tiny_finetune",
            "--root", str(synth / "synth"), "--splits", "1,x"]  # fmt: skip
    assert cli.main(args) == 2
    assert "--splits '1,x'" in capsys.readouterr().err
