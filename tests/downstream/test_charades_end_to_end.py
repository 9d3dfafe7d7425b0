"""``vidssl data synth --task charades`` then ``vidssl downstream charades``: train, interrupt,
resume exactly, evaluate, and evaluate again from the saved run."""

from __future__ import annotations

import json

import pytest
import torch

from vidssl.cli import main
from vidssl.downstream.charades import read_frame_list, read_official_csv


def _weights(run_dir) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["state_dict"]


@pytest.mark.slow
def test_synth_train_interrupt_resume_evaluate(tmp_path):
    data = tmp_path / "data"
    assert main(["data", "synth", "--task", "charades", "--out", str(data), "--classes", "3",
                 "--train-videos", "8", "--test-videos", "3", "--frames", "40",
                 "--workers", "1"]) == 0  # fmt: skip
    train = read_frame_list(data / "frame_lists" / "train.csv")
    official = read_official_csv(data / "Charades_v1_train.csv")
    assert [v.video_id for v in train] == [f"S{i:04d}" for i in range(8)]
    assert [v.frame_labels for v in train] == [v.frame_labels for v in official]
    assert len(read_frame_list(data / "frame_lists" / "val.csv")) == 3

    base = ["downstream", "charades", "--init", "scratch", "--preset", "tiny",
            f"data.root={data}", "trainer.epochs=2"]  # fmt: skip
    interrupted, whole = tmp_path / "interrupted", tmp_path / "whole"
    assert main([*base, f"trainer.run_dir={interrupted}", "trainer.max_steps=3"]) == 0
    assert not (interrupted / "results.json").exists()
    assert _weights(interrupted) is not None
    assert main([*base, f"trainer.run_dir={interrupted}"]) == 0  # resumes at step 3
    assert main([*base, f"trainer.run_dir={whole}"]) == 0

    resumed, fresh = _weights(interrupted), _weights(whole)
    assert list(resumed) == list(fresh)
    assert [k for k in fresh if not torch.equal(resumed[k], fresh[k])] == []
    record = json.loads((interrupted / "results.json").read_text())
    again = json.loads((whole / "results.json").read_text())
    assert 0.0 < record["mAP"] <= 1.0 and record["mAP"] == again["mAP"]
    assert record["global_step"] == 4  # 8 videos / batch 4 × 2 epochs
    assert record["results"]["classes_evaluated"] <= 3
    assert record["protocol"]["views"] == "2x3" and record["protocol"]["ensemble"] == "max"
    assert record["encoders"]["rgb"]["method"] == "scratch"
    assert json.loads((interrupted / "init_report.json").read_text())["method"] == "scratch"
    assert (interrupted / "per_class_ap.csv").read_text().startswith("class,ap\n0,")

    assert main([*base, f"trainer.run_dir={whole}", "--evaluate-only"]) == 0
    assert json.loads((whole / "results.json").read_text())["mAP"] == record["mAP"]
