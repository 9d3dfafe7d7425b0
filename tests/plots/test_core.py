from __future__ import annotations

import numpy as np
import pytest

from vidssl.errors import UserError
from vidssl.plots import (
    frame_strip,
    plot_loss_curves,
    plot_recall_bars,
    plot_retrieval_grid,
    read_metric_curve,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_read_metric_curve_sorts_and_skips_rows_without_the_metric(tmp_path):
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("step,train/loss,val/acc\n2,1.5,\n0,3.0,\n1,,0.5\n")
    steps, values = read_metric_curve(csv_path)
    assert steps.tolist() == [0, 2]
    assert values.tolist() == [3.0, 1.5]


def test_read_metric_curve_names_missing_file_and_column(tmp_path):
    with pytest.raises(UserError, match="metrics file not found"):
        read_metric_curve(tmp_path / "nope.csv")
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("step,train/lr\n0,0.1\n")
    with pytest.raises(UserError, match=r"no column .train/loss..*train/lr"):
        read_metric_curve(csv_path)


def test_frame_strip_picks_evenly_spaced_frames():
    clip = np.zeros((7, 2, 3, 3), np.uint8)
    for t in range(7):
        clip[t] = t * 10
    strip = frame_strip(clip, n_frames=4)
    assert strip.shape == (2, 12, 3)
    # linspace(0, 6, 4) = 0, 2, 4, 6 → values 0, 20, 40, 60 in consecutive 3-pixel blocks
    assert strip[0, ::3, 0].tolist() == [0, 20, 40, 60]


def test_frame_strip_shows_two_channel_flow_in_grey():
    clip = np.zeros((2, 2, 2, 2), np.uint8)
    clip[..., 0] = 7
    clip[..., 1] = 99
    strip = frame_strip(clip, n_frames=2)
    assert strip.shape == (2, 4, 3)
    assert (strip == 7).all()


def test_plots_write_png_files(tmp_path):
    loss = plot_loss_curves(
        {"rgb": ([0, 1, 2], [3.0, 2.0, 1.0]), "empty": ([], [])}, tmp_path / "loss.png"
    )
    bars = plot_recall_bars(
        {"rgb / random": {"R@1": 0.1}, "rgb / pretrained": {"R@1": 0.4}},
        tmp_path / "sub" / "bars.png",
    )
    strip = frame_strip(np.full((4, 8, 8, 3), 200, np.uint8))
    grid = plot_retrieval_grid(
        [strip, strip],
        [[strip] * 3, [strip] * 2],
        [[True, False, True], [False, False]],
        tmp_path / "grid.png",
        query_titles=["A", "B"],
    )
    for path in (loss, bars, grid):
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert not list(tmp_path.rglob("*.tmp*"))


def test_retrieval_grid_rejects_mismatched_rows(tmp_path):
    strip = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="one list of neighbours"):
        plot_retrieval_grid([strip], [[strip], [strip]], [[True]], tmp_path / "g.png")
