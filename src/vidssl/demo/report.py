"""The demo's outputs: ``summary.json``, the printed table and the plots (`vidssl.plots`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from vidssl.plots import (
    frame_strip,
    plot_loss_curves,
    plot_recall_bars,
    plot_retrieval_grid,
    read_metric_curve,
)
from vidssl.utils.io import atomic_write_text

__all__ = ["format_table", "print_table", "write_plots", "write_summary"]

SUMMARY_STREAMS = ("rgb", "flow", "rgb+flow")
RECALL_KEYS = ("R@1", "R@5", "R@10", "R@20", "R@50")
PLOTS = {
    "loss": "loss_curves.png",
    "recall": "recall_at_k.png",
    "grid": "retrieval_grid.png",
}
GRID_QUERIES = 5
GRID_NEIGHBOURS = 5


def format_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: one row per stream × init with R@1, R@5 and linear top-1 (%)."""
    lines = [
        "| stream | init | R@1 | R@5 | linear top-1 |",
        "|---|---|---:|---:|---:|",
    ]
    for stream in SUMMARY_STREAMS:
        for init, values in results.get(stream, {}).items():
            lines.append(
                f"| {stream} | {init} | {100 * values['R@1']:.1f} | {100 * values['R@5']:.1f} | "
                f"{100 * values['linear_top1']:.1f} |"
            )
    return "\n".join(lines)


def print_table(summary: dict[str, Any]) -> None:
    """Prints the summary's results table."""
    print(format_table(summary["results"]), flush=True)


def write_summary(
    out: Path,
    results: dict[str, dict[str, dict[str, float]]],
    settings: Any,
    progress: Any,
    plots: dict[str, str],
) -> dict[str, Any]:
    """Writes ``out/summary.json`` and returns it.

    Layout: ``{"results": {stream: {init: {"R@1", "R@5", "R@10", "R@20", "R@50",
    "linear_top1"}}}, "timings": {stage: seconds, "total": s}, "settings": {...}, "plots":
    {name: file}, "chance": 1/classes}`` with every metric a fraction.
    """
    keys = (*RECALL_KEYS, "linear_top1")
    summary = {
        "results": {
            stream: {init: {k: float(v[k]) for k in keys} for init, v in results[stream].items()}
            for stream in SUMMARY_STREAMS
        },
        "timings": {**progress.timings, "total": round(progress.total(), 2)},
        "settings": dataclasses.asdict(settings),
        "plots": plots,
        "chance": 1.0 / settings.classes,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    return summary


def _strips(table: Any, rows: list[int]) -> list[np.ndarray]:
    strips = []
    for row in rows:
        source = table.source(row)
        n = len(source)
        clip = source.read(np.linspace(0, n - 1, 4).round().astype(np.int64)).numpy()
        strips.append(frame_strip(clip, 4))
    return strips


def _grid(out: Path, evaluation: dict[str, Any], init: str) -> Path:
    from vidssl.eval.retrieval import nearest_neighbours_from_similarity

    sims = evaluation["retrieval"][init]
    train, test = evaluation["tables"]
    q_labels, g_labels = sims["labels"]
    # the first query of GRID_QUERIES classes spread over the label range
    classes = np.unique(q_labels)
    picked = classes[np.linspace(0, len(classes) - 1, min(GRID_QUERIES, len(classes))).astype(int)]
    queries = [int(np.flatnonzero(q_labels == c)[0]) for c in picked]
    neighbours = nearest_neighbours_from_similarity(sims["similarity"][queries], GRID_NEIGHBOURS)
    test_row = {k: i for i, k in enumerate(test.video_keys().tolist())}
    train_row = {k: i for i, k in enumerate(train.video_keys().tolist())}
    names = train.class_names
    q_strips = _strips(test, [test_row[sims["query_ids"][q]] for q in queries])
    n_strips, hits, titles = [], [], []
    for q, row in zip(queries, neighbours.tolist()):
        gallery = [train_row[sims["gallery_ids"][g]] for g in row]
        n_strips.append(_strips(train, gallery))
        hits.append([bool(g_labels[g] == q_labels[q]) for g in row])
        titles.append([names[int(g_labels[g])] for g in row])
    return plot_retrieval_grid(
        q_strips,
        n_strips,
        hits,
        out / PLOTS["grid"],
        query_titles=[f"query: {names[int(q_labels[q])]}" for q in queries],
        neighbour_titles=titles,
    )


def write_plots(out: Path, evaluation: dict[str, Any], runs: dict[str, Path]) -> dict[str, str]:
    """Writes the demo's plots into ``out`` and returns ``{name: file}``.

    Loss curves of the pre-training runs (``runs``: label → run directory), R@k bars of every
    stream × init, and the retrieval grid (query → top-5 neighbours, rgb+flow, last init).
    """
    curves = {
        name: read_metric_curve(run_dir / "metrics.csv", "train/loss")
        for name, run_dir in runs.items()
        if (run_dir / "metrics.csv").is_file()
    }
    plot_loss_curves(curves, out / PLOTS["loss"], title="pre-training loss")
    results = evaluation["results"]
    bars = {
        f"{stream} / {init}": values
        for stream in SUMMARY_STREAMS
        for init, values in results[stream].items()
    }
    plot_recall_bars(bars, out / PLOTS["recall"], keys=RECALL_KEYS, title="retrieval R@k")
    last_init = list(results["rgb+flow"])[-1]
    _grid(out, evaluation, last_init)
    return dict(PLOTS)
