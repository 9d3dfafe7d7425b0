"""Comparison plots: one axes per stream/stage, palette colours and labels, warm-up not drawn."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_hex

from vidssl.plots.palette import METHOD_ORDER, display_name, method_color, sort_methods
from vidssl.plots.panels import (
    PANEL_LABEL,
    DiagnosticPanel,
    chance_recall,
    diagnostics_figure,
    linear_panels_figure,
    plot_recall_panels,
    read_stage_curve,
    recall_panels_figure,
    smooth,
    stage_curves_figure,
)

STREAMS = ("rgb", "flow", "rgb+flow")
KEYS = ("R@1", "R@5", "R@10")


def _results() -> dict:
    values = {
        "coclr": {"R@1": 0.3, "R@5": 0.6, "R@10": 0.7},
        "random": {"R@1": 0.1, "R@5": 0.4, "R@10": 0.5},
        "pretrained": {"R@1": 0.2, "R@5": 0.5, "R@10": 0.9},
    }
    return {stream: values for stream in STREAMS}


def _panels(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == PANEL_LABEL]


def test_palette_is_fixed_distinct_and_grey_for_random():
    colors = [method_color(m) for m in METHOD_ORDER]
    assert len(set(colors)) == len(colors)
    assert method_color("random") == "#8c8c8c"
    assert method_color("pretrained") == method_color("InfoNCE") == method_color("infonce")
    assert method_color("some_new_method") == method_color("some_new_method")
    assert sort_methods(["vicc", "coclr", "x", "random", "pretrained"]) == [
        "random",
        "pretrained",
        "coclr",
        "vicc",
        "x",
    ]
    assert display_name("pretrained") == "InfoNCE"


def test_chance_recall_is_one_minus_miss_probability():
    assert chance_recall(0.1, [1, 5]) == pytest.approx([0.1, 1 - 0.9**5])


def test_recall_panels_one_axes_per_stream_lines_in_palette_colours():
    fig = recall_panels_figure(_results(), keys=KEYS, chance=0.1)
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == list(STREAMS)
    for ax in panels:
        assert ax.get_xscale() == "log"
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert list(lines) == ["random init", "InfoNCE", "CoCLR", "chance"]
        assert to_hex(lines["CoCLR"].get_color()) == method_color("coclr").lower()
        assert to_hex(lines["random init"].get_color()) == "#8c8c8c"
        np.testing.assert_allclose(lines["InfoNCE"].get_xydata(), [[1, 20], [5, 50], [10, 90]])
        expected_chance = 100 * chance_recall(0.1, [1, 5, 10])
        np.testing.assert_allclose(lines["chance"].get_ydata(), expected_chance)
        assert lines["chance"].get_linestyle() == "--"
    assert fig.legends and fig.legends[0].get_bbox_to_anchor().x0 >= fig.bbox.x1 - 1


def test_linear_panels_bars_per_method():
    linear = {s: {"random": 0.2, "coclr": 0.6} for s in STREAMS}
    fig = linear_panels_figure(linear, chance=0.1)
    panels = _panels(fig)
    assert len(panels) == 3
    bars = panels[0].patches
    assert [round(b.get_height(), 6) for b in bars] == [20.0, 60.0]
    assert [to_hex(b.get_facecolor()) for b in bars] == ["#8c8c8c", method_color("coclr").lower()]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["random init", "CoCLR"]


def test_smooth_is_a_trailing_mean():
    np.testing.assert_allclose(smooth([1, 3, 5, 7], 2), [1, 2, 4, 6])
    np.testing.assert_allclose(smooth([1, np.nan, 5], 3), [1, 1, 3])


def _metrics(path, rows, header):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_stage_curve_drops_queue_warmup_points_and_reads_lr(tmp_path):
    # queue fills at step 8: earlier losses (0 at step 0 by construction) are not drawn
    rows = [f"{s},{0.0 if s == 0 else 5 - s / 10},{min(1.0, s / 8)},1e-3" for s in range(0, 20, 2)]
    curve = read_stage_curve(
        _metrics(tmp_path / "m.csv", rows, "step,train/loss,train/queue_fill,train/lr"),
        "InfoNCE rgb",
    )
    assert curve.warmup_until == 8
    assert curve.steps.tolist() == [8, 10, 12, 14, 16, 18]
    assert curve.lr_steps.tolist() == list(range(0, 20, 2))
    fig = stage_curves_figure([curve, curve], window=2)
    panels = _panels(fig)
    assert len(panels) == 2 and [ax.get_title() for ax in panels] == ["InfoNCE rgb"] * 2
    assert len([ax for ax in fig.axes if ax.get_label() == "lr"]) == 2
    for ax in panels:
        for line in ax.get_lines():
            assert line.get_xdata().min() >= 8
            assert to_hex(line.get_color()) == method_color("infonce").lower()
        shaded = ax.patches[0]
        assert (shaded.get_x(), shaded.get_width()) == (0, 8)


def test_coclr_warmup_ends_when_queue_warmup_flag_drops(tmp_path):
    rows = ["0,0.0,1", "4,1.0,1", "8,2.0,0", "12,2.5,0"]
    curve = read_stage_curve(
        _metrics(tmp_path / "m.csv", rows, "step,train/loss,train/queue_warmup"), "CoCLR rgb"
    )
    assert curve.warmup_until == 8 and curve.loss.tolist() == [2.0, 2.5]
    assert curve.method == "CoCLR" and len(curve.lr_steps) == 0


def test_diagnostics_one_panel_each_with_chance_or_baseline():
    recall = DiagnosticPanel(
        "mining recall",
        {"CoCLR rgb": ([0, 1, 2], [np.nan, 0.2, 0.4]), "CoCLR flow": ([0, 1], [0.1, 0.3])},
        chance=0.1,
    )
    agreement = DiagnosticPanel(
        "code agreement",
        {"ViCC rgb": ([0, 1], [0.5, 0.7])},
        baselines={"ViCC rgb": ([0, 1], [0.1, 0.2])},
    )
    fig = diagnostics_figure([recall, agreement], window=1)
    first, second = _panels(fig)
    lines = {line.get_label(): line for line in first.get_lines()}
    assert lines["CoCLR rgb"].get_xdata().tolist() == [1, 2]
    assert to_hex(lines["CoCLR flow"].get_color()) == method_color("coclr").lower()
    assert list(lines["chance"].get_ydata()) == [0.1, 0.1]
    lines = {line.get_label(): line for line in second.get_lines()}
    assert set(lines) == {"ViCC rgb", "ViCC rgb baseline"}
    assert lines["ViCC rgb baseline"].get_ydata().tolist() == [0.1, 0.2]
    assert to_hex(lines["ViCC rgb baseline"].get_color()) == method_color("vicc").lower()


def test_png_is_written_atomically(tmp_path, monkeypatch):
    import vidssl.plots.core as core

    written = []
    real = core.atomic_write_bytes
    monkeypatch.setattr(core, "atomic_write_bytes", lambda p, b: written.append(p) or real(p, b))
    path = plot_recall_panels(_results(), tmp_path / "r.png", keys=KEYS)
    assert written == [path] and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.png"]
