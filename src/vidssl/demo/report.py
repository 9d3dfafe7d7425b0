"""The demo's outputs: ``summary.json``, ``report.md``, the printed table and the plots.

Every plot colours a method the same way (`vidssl.plots.palette`) and the table lists the inits in
the palette's order (random first, then InfoNCE, CoCLR, ...).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from vidssl.plots import frame_strip, plot_retrieval_grid, read_metric_curve
from vidssl.plots.palette import display_name, sort_methods
from vidssl.plots.panels import (
    DiagnosticPanel,
    plot_diagnostics,
    plot_linear_panels,
    plot_recall_panels,
    plot_stage_curves,
    read_stage_curve,
)
from vidssl.utils.io import atomic_write_text

__all__ = [
    "best_init",
    "diagnostic_means",
    "findings",
    "format_report",
    "format_table",
    "print_table",
    "write_plots",
    "write_report",
    "write_summary",
]

SUMMARY_STREAMS = ("rgb", "flow", "rgb+flow")
RECALL_KEYS = ("R@1", "R@5", "R@10", "R@20", "R@50")
PLOTS = {
    "loss": "loss_curves.png",
    "recall": "recall_at_k.png",
    "linear": "linear_probe.png",
    "diagnostics": "diagnostics.png",
    "grid": "retrieval_grid.png",
    "grid_random": "retrieval_grid_random.png",
}
#: Per-step diagnostics of the co-training methods → (y label, baseline column): CoCLR's class
#: recall of its mined positives (chance 1/classes), ViCC's agreement of argmax codes between
#: same-class batch neighbours (baseline: the agreement between different classes).
DIAGNOSTICS = {
    "train/mining_recall": ("class recall of mined positives", None),
    "train/code_agreement": ("same-class code agreement", "train/code_agreement_other_class"),
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
        inits = results.get(stream, {})
        for init in sort_methods(inits):
            values = inits[init]
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
    diagnostics: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Writes ``out/summary.json`` and returns it.

    Layout: ``{"results": {stream: {init: {"R@1", "R@5", "R@10", "R@20", "R@50",
    "linear_top1"}}}, "timings": {stage: seconds, "total": s}, "settings": {...}, "plots":
    {name: file}, "chance": 1/classes, "diagnostics": {stage: {metric: mean after warm-up}}}``
    with every metric a fraction.
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
        "diagnostics": diagnostics or {},
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


def _grid(path: Path, evaluation: dict[str, Any], init: str) -> Path:
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
        path,
        query_titles=[f"query: {names[int(q_labels[q])]}" for q in queries],
        neighbour_titles=titles,
        title=f"{display_name(init)}, rgb+flow: query → nearest neighbours (green: same class)",
    )


def best_init(results: dict[str, dict[str, dict[str, float]]], stream: str = "rgb+flow") -> str:
    """The non-random init with the highest R@1 on ``stream`` (ties: palette order)."""
    candidates = [init for init in sort_methods(results[stream]) if init != "random"]
    if not candidates:
        return "random"
    return max(candidates, key=lambda init: (results[stream][init]["R@1"], -candidates.index(init)))


def write_plots(
    out: Path, evaluation: dict[str, Any], runs: dict[str, Path], *, chance: float | None = None
) -> dict[str, str]:
    """Writes the demo's plots into ``out`` and returns ``{name: file}`` of those written.

    Loss curves of the pre-training runs (``runs``: stage label such as ``"CoCLR rgb"`` → run
    directory; one panel each, queue warm-up shaded, learning rate on a twin axis), R@k per
    stream and linear-probe top-1 per stream (one colour per init), the co-training diagnostics
    (when a run logged one) and two retrieval grids on the same queries: random init and the best
    init (`best_init`).
    """
    written = {}
    stages = [
        read_stage_curve(run_dir / "metrics.csv", label)
        for label, run_dir in runs.items()
        if (run_dir / "metrics.csv").is_file()
    ]
    if stages:
        plot_stage_curves(stages, out / PLOTS["loss"], title="pre-training loss per stage")
        written["loss"] = PLOTS["loss"]
    results = evaluation["results"]
    streams = {stream: results[stream] for stream in SUMMARY_STREAMS}
    plot_recall_panels(streams, out / PLOTS["recall"], keys=RECALL_KEYS, chance=chance)
    linear = {s: {i: v["linear_top1"] for i, v in inits.items()} for s, inits in streams.items()}
    plot_linear_panels(linear, out / PLOTS["linear"], chance=chance)
    written.update(recall=PLOTS["recall"], linear=PLOTS["linear"])
    panels = []
    for key, (ylabel, baseline) in DIAGNOSTICS.items():
        curves, baselines = {}, {}
        for label, run_dir in runs.items():
            path = run_dir / "metrics.csv"
            columns = path.open().readline().strip().split(",") if path.is_file() else []
            if key in columns:
                curves[label] = read_metric_curve(path, key)
            if baseline in columns:
                baselines[label] = read_metric_curve(path, baseline)
        if curves:
            level = chance if baseline is None else None
            panels.append(DiagnosticPanel(ylabel, curves, level, baselines))
    if panels:
        plot_diagnostics(panels, out / PLOTS["diagnostics"])
        written["diagnostics"] = PLOTS["diagnostics"]
    best = best_init(results)
    _grid(out / PLOTS["grid"], evaluation, best)
    written["grid"] = PLOTS["grid"]
    if best != "random" and "random" in results["rgb+flow"]:
        _grid(out / PLOTS["grid_random"], evaluation, "random")
        written["grid_random"] = PLOTS["grid_random"]
    return written


def diagnostic_means(runs: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Mean of each `DIAGNOSTICS` column per run after the queue warm-up (``{label: {key: m}}``)."""
    means: dict[str, dict[str, float]] = {}
    for label, run_dir in runs.items():
        path = run_dir / "metrics.csv"
        if not path.is_file():
            continue
        header = path.open().readline().strip().split(",")
        warmup = read_stage_curve(path, label).warmup_until or 0
        for key in [k for main, (_, base) in DIAGNOSTICS.items() for k in (main, base) if k]:
            if key in header:
                steps, values = read_metric_curve(path, key)
                kept = values[(steps >= warmup) & ~np.isnan(values)]
                if len(kept):
                    means.setdefault(label, {})[key] = float(kept.mean())
    return means


def _cpu_model() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def findings(summary: dict[str, Any]) -> str:
    """The "what the demo shows" paragraph, filled with this run's numbers."""
    results, chance = summary["results"], summary["chance"]
    sentences = []
    for stream in SUMMARY_STREAMS:
        inits = results[stream]
        if "random" not in inits or len(inits) < 2:
            continue
        best = best_init(results, stream)
        gain = inits[best]["R@1"] - inits["random"]["R@1"]
        verdict = "beats" if gain > 0 else "does not beat"
        sentences.append(
            f"On {stream}, the best pre-trained encoder ({display_name(best)}) {verdict} random "
            f"initialisation at R@1: {_pct(inits[best]['R@1'])} vs {_pct(inits['random']['R@1'])} "
            f"(linear top-1 {_pct(inits[best]['linear_top1'])} vs "
            f"{_pct(inits['random']['linear_top1'])})."
        )
    rgb = results.get("rgb", {})
    if "coclr" in rgb and "pretrained" in rgb:
        delta = rgb["coclr"]["R@1"] - rgb["pretrained"]["R@1"]
        sentences.append(
            f"Co-training (CoCLR) {'improves on' if delta > 0 else 'does not improve on'} "
            f"single-stream InfoNCE on rgb R@1: {_pct(rgb['coclr']['R@1'])} vs "
            f"{_pct(rgb['pretrained']['R@1'])}."
        )
    for label, values in summary.get("diagnostics", {}).items():
        for key, mean in values.items():
            if key not in DIAGNOSTICS:
                continue  # a baseline, reported with its diagnostic
            name, baseline = DIAGNOSTICS[key]
            if baseline is None:
                reference = f"chance {_pct(chance)}"
            elif baseline in values:
                reference = f"{_pct(values[baseline])} between different classes"
            else:
                reference = "no baseline logged"
            sentences.append(f"{label}: {name} {_pct(mean)} after the queue warm-up ({reference}).")
    sentences.append(f"Chance is {_pct(chance)} at R@1 and for the linear probe.")
    return " ".join(sentences)


def format_report(summary: dict[str, Any]) -> str:
    """``report.md``: settings, results, findings, plots and timings of one demo run."""
    import torch

    from vidssl import __version__

    settings = summary["settings"]
    lines = [
        "# vidssl demo report",
        "",
        f"vidssl {__version__}, torch {torch.__version__}, CPU: {_cpu_model()}, "
        f"seed {settings.get('seed')}, total {summary['timings'].get('total', 0):.0f} s.",
        "",
        "## Results",
        "",
        "Fractions in `summary.json` shown in %; `pretrained` is the InfoNCE encoder.",
        "",
        format_table(summary["results"]),
        "",
        "## What this run shows",
        "",
        findings(summary),
        "",
        "## Plots",
        "",
    ]
    captions = {
        "recall": "R@k per stream (chance dashed)",
        "linear": "linear-probe top-1 per stream",
        "loss": "pre-training loss per stage (queue warm-up shaded, learning rate dotted)",
        "diagnostics": "co-training diagnostics",
        "grid": "retrieval, best init",
        "grid_random": "retrieval, random init (same queries)",
    }
    for key, file in summary.get("plots", {}).items():
        lines += [f"![{captions.get(key, key)}]({file})", ""]
    lines += ["## Timings", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {secs:.1f} |" for stage, secs in summary["timings"].items()]
    lines += ["", "## Settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """Writes ``out/report.md`` (`format_report`) atomically and returns its path."""
    path = out / "report.md"
    atomic_write_text(path, format_report(summary))
    return path
