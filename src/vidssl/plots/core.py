"""Plots of runs and results: loss curves, recall@k bars and retrieval grids.

Every function writes one PNG atomically and returns its path. Matplotlib runs on the
non-interactive ``Agg`` backend (no display needed); it is imported inside the functions so
that importing this module stays cheap.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidssl.errors import UserError
from vidssl.utils.io import atomic_write_bytes

__all__ = [
    "frame_strip",
    "plot_loss_curves",
    "plot_recall_bars",
    "plot_retrieval_grid",
    "read_metric_curve",
]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """Writes ``fig`` as a PNG atomically, closes it and returns ``path``."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_metric_curve(
    metrics_csv: str | Path, key: str = "train/loss"
) -> tuple[np.ndarray, np.ndarray]:
    """Reads one metric of a run's ``metrics.csv`` as ``(steps, values)``.

    Rows without the metric are skipped; steps come back sorted.

    Args:
        metrics_csv: The ``metrics.csv`` a vidssl run writes.
        key: Column to read, e.g. ``"train/loss"``.

    Raises:
        UserError: The file is missing or has no such column.
    """
    path = Path(metrics_csv)
    if not path.is_file():
        raise UserError(f"metrics file not found: {path} (expected a run's metrics.csv)")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and key not in rows[0]:
        columns = ", ".join(k for k in rows[0] if k != "step")
        raise UserError(f"{path} has no column {key!r} (columns: {columns})")
    pairs = sorted((int(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, ""))
    steps = np.array([s for s, _ in pairs], dtype=np.int64)
    values = np.array([v for _, v in pairs], dtype=np.float64)
    return steps, values


def plot_loss_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    *,
    title: str = "training loss",
    ylabel: str = "loss",
) -> Path:
    """One line per run: ``curves[name] = (steps, values)``.

    Args:
        curves: Run name → (steps, values); runs without points are left out of the plot.
        path: Output PNG.
        title: Figure title.
        ylabel: Y-axis label.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, (steps, values) in curves.items():
        if len(steps):
            ax.plot(steps, values, label=name, linewidth=1.4)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_recall_bars(
    results: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    keys: Sequence[str] = ("R@1", "R@5", "R@10", "R@20", "R@50"),
    title: str = "retrieval recall@k",
) -> Path:
    """Grouped bars: one group per key, one bar per named result (fractions shown as %).

    Args:
        results: Result name (e.g. ``"rgb / pretrained"``) → {key: fraction}.
        path: Output PNG.
        keys: The metrics to show, in order; missing ones are drawn as 0.
        title: Figure title.
    """
    plt = pyplot()
    names = list(results)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(keys) + 0.4 * len(names)), 3.8))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(keys))
    for i, name in enumerate(names):
        heights = [100.0 * float(results[name].get(k, 0.0)) for k in keys]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, heights, width, label=name)
    ax.set_xticks(x, list(keys))
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if names:
        ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def frame_strip(clip: np.ndarray, n_frames: int = 4) -> np.ndarray:
    """``n_frames`` evenly spaced frames of a ``T×H×W×C`` uint8 clip, side by side.

    Returns:
        ``H × (n·W) × C`` uint8 (a 2-channel clip is shown as its first channel in grey).
    """
    clip = np.asarray(clip)
    if clip.ndim != 4 or clip.shape[0] == 0:
        raise ValueError(f"expected a T×H×W×C clip with T > 0, got shape {clip.shape}")
    picks = np.linspace(0, clip.shape[0] - 1, min(n_frames, clip.shape[0])).round().astype(int)
    frames = clip[picks]
    if frames.shape[-1] != 3:
        frames = np.repeat(frames[..., :1], 3, axis=-1)
    return np.concatenate(list(frames), axis=1).astype(np.uint8)


def plot_retrieval_grid(
    query_strips: Sequence[np.ndarray],
    neighbour_strips: Sequence[Sequence[np.ndarray]],
    hits: Sequence[Sequence[bool]],
    path: str | Path,
    *,
    query_titles: Sequence[str] | None = None,
    neighbour_titles: Sequence[Sequence[str]] | None = None,
    title: str = "query → nearest neighbours (green: same class)",
) -> Path:
    """Rows of query → its nearest neighbours as frame strips; green frame = same class.

    Args:
        query_strips: One image per query (see `frame_strip`).
        neighbour_strips: Per query, the images of its neighbours, nearest first.
        hits: Per query and neighbour, whether the neighbour has the query's class.
        path: Output PNG.
        query_titles: Optional caption per query (e.g. its class).
        neighbour_titles: Optional caption per neighbour.
        title: Figure title.
    """
    n_rows = len(query_strips)
    if n_rows == 0 or len(neighbour_strips) != n_rows or len(hits) != n_rows:
        raise ValueError("need one list of neighbours and hits per query, and at least one query")
    n_cols = 1 + max(len(row) for row in neighbour_strips)
    plt = pyplot()
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(2.6 * n_cols, 1.0 * n_rows + 0.4), squeeze=False
    )
    for r in range(n_rows):
        cells = [query_strips[r], *neighbour_strips[r]]
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.axis("off")
                continue
            ax.imshow(cells[c])
            if c == 0:
                color, caption = "black", query_titles[r] if query_titles else "query"
            else:
                color = "tab:green" if hits[r][c - 1] else "tab:red"
                caption = neighbour_titles[r][c - 1] if neighbour_titles else f"#{c}"
                caption = f"{caption} {'✓' if hits[r][c - 1] else '✗'}"
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(3 if c else 1)
            ax.set_title(caption, fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
