"""``vidssl demo``: summary layout, plots, pre-trained > random, resume; evaluation by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidssl import cli
from vidssl.data.catalogs import VideoTable
from vidssl.demo.evaluate import StreamFeatures, evaluate_inits
from vidssl.demo.report import format_table
from vidssl.demo.run import DemoSettings, _check_settings
from vidssl.errors import UserError
from vidssl.eval.config import LinearSettings
from vidssl.eval.features import ClipOutputs

STREAMS = ("rgb", "flow", "rgb+flow")
KEYS = {"R@1", "R@5", "R@10", "R@20", "R@50", "linear_top1"}


def _table(split: str, labels: list[int]) -> VideoTable:
    paths = np.array([f"C{label}/v_{split}_{i}" for i, label in enumerate(labels)])
    n = len(labels)
    return VideoTable(
        name="ucf101",
        split=split,
        media="unused",
        storage="frames",
        paths=paths,
        labels=np.array(labels, dtype=np.int64),
        n_frames=np.full(n, 16, dtype=np.int64),
        groups=np.arange(n, dtype=np.int64),
        class_names=("A", "B"),
    )


def _outputs(table: VideoTable, feats: list[list[float]]) -> ClipOutputs:
    # one clip per video
    values = torch.tensor(feats, dtype=torch.float32)[:, None, :]
    rows = np.arange(len(feats), dtype=np.int64)
    return ClipOutputs(values, rows, np.zeros_like(rows), table.labels, table.paths)


def test_evaluate_inits_recall_and_fusion_by_hand():
    train, test = _table("train", [0, 0, 1, 1]), _table("test", [0, 1])
    # "good": class A along +x, class B along +y (after per-set centring the sign survives)
    good_train = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]
    good_test = [[1.0, 0.1], [0.1, 1.0]]
    # "bad": every test video lies next to the other class's train videos
    bad_test = [[0.1, 1.0], [1.0, 0.1]]
    feats = StreamFeatures(
        {"good": _outputs(train, good_train), "bad": _outputs(train, good_train)},
        {"good": _outputs(test, good_test), "bad": _outputs(test, bad_test)},
        train,
        test,
    )
    linear = LinearSettings(epochs=30, milestones=[20], batch_size=4)
    results, sims = evaluate_inits(feats, feats, linear)
    assert set(results) == set(STREAMS)
    for stream in STREAMS:
        assert set(results[stream]) == {"good", "bad"}
        assert set(results[stream]["good"]) == KEYS
        assert results[stream]["good"]["R@1"] == 1.0
        assert results[stream]["bad"]["R@1"] == 0.0
        assert results[stream]["bad"]["R@5"] == 1.0  # 4 gallery videos: all retrieved
        assert results[stream]["good"]["linear_top1"] == 1.0
    # fused similarity = rgb + flow cosine similarities (both streams identical here: 2x)
    fused = sims["good"]["similarity"]
    assert fused.shape == (2, 4)
    assert list(sims["good"]["query_ids"]) == list(test.video_keys())
    assert fused[0].argmax().item() in (0, 1) and fused[1].argmax().item() in (2, 3)
    assert torch.all(fused <= 2.0 + 1e-5)


def test_format_table_rows_in_percent():
    values = {"R@1": 0.5, "R@5": 0.25, "linear_top1": 0.125}
    results = {s: {"random": values} for s in STREAMS}
    lines = format_table(results).splitlines()
    assert lines[0] == "| stream | init | R@1 | R@5 | linear top-1 |"
    assert lines[2] == "| rgb | random | 50.0 | 25.0 | 12.5 |"
    assert lines[4] == "| rgb+flow | random | 50.0 | 25.0 | 12.5 |"


def test_other_settings_in_the_run_folder_are_refused(tmp_path):
    _check_settings(tmp_path, DemoSettings(seed=0))
    _check_settings(tmp_path, DemoSettings(seed=0, workers=1))  # workers may change
    with pytest.raises(UserError, match="other settings \\(seed\\)"):
        _check_settings(tmp_path, DemoSettings(seed=1))


@pytest.mark.slow
def test_quick_demo_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| stream | init | R@1 | R@5 | linear top-1 |" in printed
    summary = json.loads((out / "summary.json").read_text())
    results = summary["results"]
    assert set(results) == set(STREAMS)
    for stream in STREAMS:
        assert set(results[stream]) == {"random", "pretrained", "coclr"}
        for values in results[stream].values():
            assert set(values) == KEYS
            assert all(0.0 <= v <= 1.0 for v in values.values())
            recalls = [values[k] for k in ("R@1", "R@5", "R@10", "R@20", "R@50")]
            assert recalls == sorted(recalls)
    for name in summary["plots"].values():
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"loss", "recall", "linear", "diagnostics", "grid", "grid_random"} <= set(
        summary["plots"]
    )
    assert "train/mining_recall" in summary["diagnostics"]["CoCLR rgb"]
    assert "## What this run shows" in (out / "report.md").read_text()
    assert {"synth", "flow", "eval", "total"} <= set(summary["timings"])
    # InfoNCE beats random init on every stream (seed 0 measured R@1 36.7 vs 15.6 % on rgb,
    # 76.7 vs 48.9 % on flow, 72.2 vs 34.4 % fused, 90 test videos; 3 seeds in the README)
    for stream in STREAMS:
        assert results[stream]["pretrained"]["R@1"] > results[stream]["random"]["R@1"] + 0.1

    # a re-run skips every finished stage (no video, flow, checkpoint or encoder is rewritten:
    # counted as files touched, not seconds) and reproduces the numbers
    patterns = ("data/**/*.avi", "data/flow/**/*.jpg", "*/checkpoints/*.ckpt", "*/encoder/*")
    products = sorted(p for pattern in patterns for p in out.glob(pattern))
    assert len(products) > 300
    stamps = {p: p.stat().st_mtime_ns for p in products}
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    assert [p for p in products if p.stat().st_mtime_ns != stamps[p]] == []
    again = json.loads((out / "summary.json").read_text())
    assert again["results"] == results
