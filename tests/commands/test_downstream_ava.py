"""``vidssl data synth --task ava`` then ``vidssl downstream ava``: train, interrupt, resume
exactly, evaluate, re-evaluate from the saved run; preset selection and one-line errors.

The end-to-end test takes about 10 s on 2 busy CPU cores (three 10-step tiny runs).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from vidssl.cli import main
from vidssl.data.catalogs.ava import read_box_csv
from vidssl.downstream.ava import evaluate_files


def _dry_run(capsys, *args: str) -> dict:
    assert main(["downstream", "ava", *args, "--dry-run"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_preset_flags_pick_the_reference_config_and_checkpoint(capsys):
    cfg = _dry_run(capsys, "--init", "gdt")
    assert (cfg["method"]["name"], cfg["method"]["init"], cfg["trainer"]["epochs"]) == (
        "ava",
        "gdt",
        20,
    )
    assert cfg["method"]["checkpoint"] == "checkpoints_pretraining/gdt/gdt_K400.pth"
    cfg = _dry_run(capsys, "--init", "tclr", "--checkpoint", "x.pth", "optim.lr=0.01")
    assert (cfg["model"]["backbone"], cfg["method"]["checkpoint"]) == ("r2plus1d_18_tclr", "x.pth")
    assert cfg["optim"]["lr"] == 0.01
    cfg = _dry_run(capsys, "--init", "tclr", "--checkpoint", "x.pth", "--preset", "tiny")
    assert (cfg["model"]["backbone"], cfg["model"]["width_mult"]) == ("r2plus1d_18_tclr", 0.0625)
    cfg = _dry_run(capsys, "--init", "vidssl", "--checkpoint", "enc")
    assert (cfg["method"]["init"], cfg["method"]["checkpoint"], cfg["data"]["img_size"]) == (
        "vidssl",
        "enc",
        112,
    )


def test_bad_requests_are_one_line_errors(capsys):
    assert main(["downstream", "ava", "--init", "moco", "--preset", "tiny", "--dry-run"]) == 2
    assert "needs a checkpoint" in capsys.readouterr().err
    assert main(["downstream", "ava", "--init", "scratch", "method.nope=1", "--dry-run"]) == 2
    assert "method.nope" in capsys.readouterr().err


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def _no_nan(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in results.json")

    return json.loads(text, parse_constant=refuse)


def test_synth_train_interrupt_resume_evaluate(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["data", "synth", "--task", "ava", "--out", str(data)]) == 0
    assert "4 train / 2 val videos" in capsys.readouterr().out
    notes = data / "annotations"

    base = ["downstream", "ava", "--init", "scratch", "--preset", "tiny", f"data.root={data}"]
    interrupted, whole = tmp_path / "interrupted", tmp_path / "whole"
    assert main([*base, f"trainer.run_dir={interrupted}", "trainer.max_steps=3"]) == 0
    assert not (interrupted / "results.json").exists()
    assert main([*base, f"trainer.run_dir={interrupted}"]) == 0  # resumes at step 3
    assert main([*base, f"trainer.run_dir={whole}"]) == 0

    resumed, fresh = _weights(interrupted), _weights(whole)
    assert list(resumed) == list(fresh) and any(k.startswith("head.") for k in fresh)
    assert [k for k in fresh if not torch.equal(resumed[k], fresh[k])] == []
    record = _no_nan((interrupted / "results.json").read_text())
    assert record == {**record, "mAP": _no_nan((whole / "results.json").read_text())["mAP"]}
    # 4 train videos x 5 keyframes = 20 keyframes, batch 4, 2 epochs
    assert record["global_step"] == 10 and record["task"] == "ava"
    results = record["results"]
    assert set(results["per_class"]) == {"1", "7", "12", "14"}  # the synthetic label map
    present = [ap for ap in results["per_class"].values() if ap is not None]
    assert results["classes_evaluated"] == len(present)
    assert record["mAP"] == pytest.approx(sum(present) / len(present))
    assert record["dataset"]["test_videos"] == 2 and results["keyframes"] == 10  # every second
    assert results["detections"] == 4 * results["boxes"]  # one row per box and evaluated class
    assert record["protocol"]["test_frame"] == "full" and record["protocol"]["clip"] == "8x2"

    # the detections file, scored by the file-level evaluator, gives the recorded numbers
    detections = interrupted / "detections.csv"
    assert len(read_box_csv(detections)) == results["detections"]
    scored = evaluate_files(
        notes / "ava_action_list_v2.2_for_activitynet_2019.pbtxt", notes / "ava_val_v2.2.csv",
        detections, notes / "ava_val_excluded_timestamps_v2.2.csv",
    )  # fmt: skip
    assert scored["mAP"] == pytest.approx(record["mAP"], abs=1e-5)
    for class_id, ap in scored["per_class"].items():
        recorded = results["per_class"][str(class_id)]
        assert (recorded is None) if math.isnan(ap) else recorded == pytest.approx(ap, abs=1e-5)
    lines = (interrupted / "per_class_ap.csv").read_text().splitlines()
    assert lines[0] == "class,name,ap" and [line.split(",")[0] for line in lines[1:]] == [
        "1",
        "7",
        "12",
        "14",
    ]

    before = (whole / "results.json").read_text()
    assert main([*base, f"trainer.run_dir={whole}", "--evaluate-only"]) == 0
    again = _no_nan((whole / "results.json").read_text())
    assert again["mAP"] == _no_nan(before)["mAP"] and again["global_step"] == 10
