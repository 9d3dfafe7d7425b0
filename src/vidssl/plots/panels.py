"""Small multiples for comparing methods: R@k per stream, linear-probe bars, per-stage curves.

Each ``*_figure`` function builds a matplotlib figure from plain data (the demo's summary dict,
metrics rows) and returns it, so tests can inspect its axes; the matching ``plot_*`` function
writes it as one PNG atomically and returns the path. Colours and legend order come from
`vidssl.plots.palette`, so a method looks the same in every plot.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidssl.errors import UserError
from vidssl.plots.core import pyplot, save_figure
from vidssl.plots.palette import display_name, method_color, sort_methods

__all__ = [
    "PANEL_LABEL",
    "DiagnosticPanel",
    "StageCurve",
    "chance_recall",
    "diagnostics_figure",
    "linear_panels_figure",
    "plot_diagnostics",
    "plot_linear_panels",
    "plot_recall_panels",
    "plot_stage_curves",
    "read_stage_curve",
    "recall_panels_figure",
    "smooth",
    "stage_curves_figure",
]

#: ``Axes.get_label()`` of every data panel (twin learning-rate axes are labelled ``"lr"``).
PANEL_LABEL = "panel"


def chance_recall(chance: float, ks: Sequence[int]) -> np.ndarray:
    """R@k of a random ranking when a fraction ``chance`` of the gallery shares the query's class.

    ``1 − (1 − chance)^k``: the probability that at least one of ``k`` independent draws hits the
    class (draws with replacement; a good approximation for galleries much larger than ``k``).
    """
    return 1.0 - (1.0 - float(chance)) ** np.asarray(ks, dtype=np.float64)


def _k_values(keys: Sequence[str]) -> list[int]:
    try:
        return [int(key.split("@", 1)[1]) for key in keys]
    except (IndexError, ValueError):
        raise ValueError(f"recall keys must look like 'R@5', got {list(keys)}") from None


def _legend_outside(fig: Any, axes: Sequence[Any]) -> None:
    handles, labels = {}, {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                labels[label] = label
                handles[label] = handle
    if handles:
        fig.legend(
            list(handles.values()),
            list(labels),
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            fontsize=8,
            frameon=False,
        )


def recall_panels_figure(
    results: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    keys: Sequence[str] = ("R@1", "R@5", "R@10", "R@20", "R@50"),
    chance: float | None = None,
    title: str = "retrieval recall@k",
) -> Any:
    """One panel per stream: R@k against k (log scale), one line with markers per method.

    Args:
        results: ``{stream: {method: {"R@1": fraction, ...}}}`` (the demo summary's ``results``).
        keys: Recall keys in order (``"R@k"``).
        chance: Fraction of the gallery in the query's class; draws `chance_recall` dashed.
        title: Figure title.
    """
    plt = pyplot()
    ks = _k_values(keys)
    streams = list(results)
    fig, axes = plt.subplots(1, len(streams), figsize=(3.3 * len(streams), 3.2), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, stream in zip(axes, streams):
        ax.set_label(PANEL_LABEL)
        for method in sort_methods(results[stream]):
            values = [100.0 * float(results[stream][method].get(key, np.nan)) for key in keys]
            ax.plot(
                ks,
                values,
                marker="o",
                markersize=4,
                linewidth=1.6,
                color=method_color(method),
                label=display_name(method),
            )
        if chance is not None:
            ax.plot(ks, 100 * chance_recall(chance, ks), "--", color="black", lw=1, label="chance")
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_ylim(0, 100)
        ax.set_title(stream)
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("R@k (%)")
    _legend_outside(fig, axes)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_recall_panels(
    results: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | Path, **kwargs: Any
) -> Path:
    """Writes `recall_panels_figure` (same arguments) as a PNG."""
    return save_figure(recall_panels_figure(results, **kwargs), path)


def linear_panels_figure(
    results: Mapping[str, Mapping[str, float]],
    *,
    chance: float | None = None,
    title: str = "linear probe top-1",
) -> Any:
    """One small bar panel per stream: one bar per method, its value printed on top.

    Args:
        results: ``{stream: {method: top-1 fraction}}``.
        chance: Chance accuracy (1 / classes), drawn dashed.
        title: Figure title.
    """
    plt = pyplot()
    streams = list(results)
    fig, axes = plt.subplots(1, len(streams), figsize=(3.0 * len(streams), 2.8), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, stream in zip(axes, streams):
        ax.set_label(PANEL_LABEL)
        methods = sort_methods(results[stream])
        heights = [100.0 * float(results[stream][m]) for m in methods]
        x = np.arange(len(methods))
        bars = ax.bar(
            x,
            heights,
            color=[method_color(m) for m in methods],
            label=[display_name(m) for m in methods],
        )
        for bar, height in zip(bars, heights):
            ax.annotate(
                f"{height:.0f}",
                (bar.get_x() + bar.get_width() / 2, height),
                ha="center",
                va="bottom",
                fontsize=7,
            )
        if chance is not None:
            ax.axhline(100 * chance, ls="--", color="black", lw=1, label="chance")
        ax.set_xticks(x, [display_name(m) for m in methods], rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_title(stream)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("top-1 (%)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_linear_panels(
    results: Mapping[str, Mapping[str, float]], path: str | Path, **kwargs: Any
) -> Path:
    """Writes `linear_panels_figure` (same arguments) as a PNG."""
    return save_figure(linear_panels_figure(results, **kwargs), path)


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` points (fewer at the start); NaNs are ignored."""
    values = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    out = np.empty_like(values)
    for i in range(len(values)):
        part = values[max(0, i - window + 1) : i + 1]
        part = part[~np.isnan(part)]
        out[i] = part.mean() if len(part) else np.nan
    return out


@dataclass
class StageCurve:
    """One training stage's curves, read from its ``metrics.csv``.

    Attributes:
        label: Shown as the panel title, e.g. ``"CoCLR rgb"``; its first word names the method.
        steps: Steps of the loss points after the queue warm-up.
        loss: The loss at those steps.
        lr_steps: Steps of the learning-rate points.
        lr: The learning rate at those steps.
        warmup_until: First logged step with a full queue (None: no queue or never full);
            earlier loss points are left out and the span is shaded.
    """

    label: str
    steps: np.ndarray
    loss: np.ndarray
    lr_steps: np.ndarray
    lr: np.ndarray
    warmup_until: int | None = None

    @property
    def method(self) -> str:
        """The method named by the label's first word."""
        return self.label.split()[0]


def _column(rows: list[dict[str, str]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = sorted(
        (int(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "", "nan")
    )
    steps = np.array([s for s, _ in pairs], dtype=np.int64)
    return steps, np.array([v for _, v in pairs], dtype=np.float64)


def read_stage_curve(metrics_csv: str | Path, label: str) -> StageCurve:
    """Reads loss, learning rate and queue warm-up of one run's ``metrics.csv``.

    The warm-up ends at the first step whose ``train/queue_warmup`` is 0 (CoCLR: no optimiser
    step while the queue fills) or, without that column, whose ``train/queue_fill`` reaches 1.

    Raises:
        UserError: The file is missing or has no ``train/loss`` column.
    """
    path = Path(metrics_csv)
    if not path.is_file():
        raise UserError(f"metrics file not found: {path} (expected a run's metrics.csv)")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "train/loss" not in rows[0]:
        raise UserError(f"{path} has no column 'train/loss'")
    steps, loss = _column(rows, "train/loss")
    lr_steps, lr = _column(rows, "train/lr")
    warmup_until = None
    for key, done in (("train/queue_warmup", lambda v: v < 0.5), ("train/queue_fill", None)):
        if key not in rows[0]:
            continue
        marker_steps, marker = _column(rows, key)
        ready = marker < 0.5 if done is not None else marker >= 1.0 - 1e-9
        if ready.any():
            warmup_until = int(marker_steps[np.argmax(ready)])
        break
    if warmup_until is not None:
        keep = steps >= warmup_until
        steps, loss = steps[keep], loss[keep]
    return StageCurve(label, steps, loss, lr_steps, lr, warmup_until)


def stage_curves_figure(
    stages: Sequence[StageCurve], *, window: int = 10, title: str = "pre-training loss"
) -> Any:
    """One panel per stage: raw loss points, their trailing mean, warm-up shaded, lr on a twin axis.

    Args:
        stages: The stages in order (e.g. InfoNCE rgb, InfoNCE flow, CoCLR rgb, CoCLR flow).
        window: Points in the trailing mean.
        title: Figure title.
    """
    if not stages:
        raise ValueError("need at least one stage to plot")
    plt = pyplot()
    cols = min(len(stages), 2)
    rows = -(-len(stages) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 2.8 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(stages):
            ax.set_axis_off()
            continue
        stage = stages[i]
        ax.set_label(PANEL_LABEL)
        color = method_color(stage.method)
        if stage.warmup_until:
            ax.axvspan(0, stage.warmup_until, color="0.85", label="queue warm-up")
        ax.plot(stage.steps, stage.loss, ".", ms=3, color=color, alpha=0.45)
        ax.plot(stage.steps, smooth(stage.loss, window), color=color, lw=1.6, label="loss")
        ax.set_title(stage.label, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        if len(stage.lr_steps):
            twin = ax.twinx()
            twin.set_label("lr")
            twin.plot(stage.lr_steps, stage.lr, color="0.4", lw=0.9, ls=":")
            twin.set_ylabel("learning rate", fontsize=8, color="0.4")
            twin.tick_params(labelsize=7, colors="0.4")
            twin.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        if i == 0 and stage.warmup_until:
            ax.legend(fontsize=7, loc="upper right", frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_stage_curves(stages: Sequence[StageCurve], path: str | Path, **kwargs: Any) -> Path:
    """Writes `stage_curves_figure` (same arguments) as a PNG."""
    return save_figure(stage_curves_figure(stages, **kwargs), path)


@dataclass
class DiagnosticPanel:
    """One training diagnostic across runs.

    Attributes:
        ylabel: What is measured (the panel's y label).
        curves: Run label (e.g. ``"CoCLR rgb"``) → (steps, values); NaN values are skipped.
        chance: Chance level, drawn dashed (None: none).
        baselines: Run label → (steps, values) of a measured baseline (e.g. the agreement between
            different classes), drawn dotted in the run's colour.
    """

    ylabel: str
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]]
    chance: float | None = None
    baselines: Mapping[str, tuple[Sequence[float], Sequence[float]]] = field(default_factory=dict)


def _smoothed_line(ax: Any, label: str, steps: Any, values: Any, window: int, **style: Any) -> None:
    steps, values = np.asarray(steps), np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    color = method_color(label.split()[0])
    ax.plot(steps[keep], smooth(values[keep], window), color=color, label=label, **style)


def diagnostics_figure(
    panels: Sequence[DiagnosticPanel], *, window: int = 10, title: str = "training diagnostics"
) -> Any:
    """One panel per diagnostic: a smoothed line per run (coloured by the label's first word).

    Args:
        panels: The diagnostics (e.g. CoCLR's mining recall, ViCC's code agreement).
        window: Points in the trailing mean.
        title: Figure title.
    """
    if not panels:
        raise ValueError("need at least one diagnostic to plot")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.0), squeeze=False)
    styles = ("-", "--", "-.", (0, (5, 1)))
    for ax, panel in zip(axes[0], panels):
        ax.set_label(PANEL_LABEL)
        for i, (label, (steps, values)) in enumerate(panel.curves.items()):
            _smoothed_line(ax, label, steps, values, window, ls=styles[i % len(styles)], lw=1.5)
        for label, (steps, values) in panel.baselines.items():
            _smoothed_line(ax, f"{label} baseline", steps, values, window, ls=":", lw=1.0)
        if panel.chance is not None:
            ax.axhline(panel.chance, color="black", ls="--", lw=1, label="chance")
        ax.set_ylim(0, 1)
        ax.set_xlabel("step")
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_diagnostics(panels: Sequence[DiagnosticPanel], path: str | Path, **kwargs: Any) -> Path:
    """Writes `diagnostics_figure` (same arguments) as a PNG."""
    return save_figure(diagnostics_figure(panels, **kwargs), path)
