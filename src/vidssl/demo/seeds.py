"""The demo over several seeds: each seed's run in its own folder, then mean ± std of every number.

``vidssl demo --seeds 0,1,2 --out DIR`` runs (or continues) ``DIR/seed_K`` for each seed and
writes ``DIR/seeds.json`` and ``DIR/seeds.md``. The standard deviation is the sample one
(``ddof=1``) over the seeds; differences to InfoNCE are paired by seed (the same data and random
init), which removes the seed-to-seed variation the methods share.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidssl.errors import UserError
from vidssl.plots.palette import display_name, sort_methods
from vidssl.utils.io import atomic_write_text

__all__ = ["aggregate", "parse_seeds", "run_seeds", "seeds_markdown", "spread"]

#: Columns of the seeds table: summary metric → header.
TABLE_METRICS = {"R@1": "R@1", "R@5": "R@5", "linear_top1": "linear top-1"}
#: The init the paired differences are taken against.
BASELINE = "pretrained"


def spread(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "values"}`` of ``values``; ``std`` is the sample one (0 for one value)."""
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "values": [float(v) for v in array]}


def aggregate(summaries: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """Mean ± std over seeds of every result and diagnostic the runs have in common.

    Args:
        summaries: The runs' ``summary.json`` contents (same settings but the seed).
        seeds: The seed of each summary.

    Returns:
        ``{"seeds", "chance", "results": {stream: {init: {metric: spread}}}, "paired":
        {stream: {init: {metric: spread of (init − InfoNCE)}}}, "diagnostics": {stage: {metric:
        spread}}}``; an init or stream missing from one run is left out.
    """
    if not summaries:
        raise UserError("no demo runs to aggregate")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    paired: dict[str, dict[str, dict[str, Any]]] = {}
    for stream, inits in summaries[0]["results"].items():
        for init, metrics in inits.items():
            runs = [s["results"].get(stream, {}).get(init) for s in summaries]
            if any(run is None for run in runs):
                continue
            results.setdefault(stream, {})[init] = {
                m: spread([run[m] for run in runs]) for m in metrics
            }
            base = [s["results"][stream].get(BASELINE) for s in summaries]
            if init != BASELINE and all(b is not None for b in base):
                paired.setdefault(stream, {})[init] = {
                    m: spread([run[m] - b[m] for run, b in zip(runs, base, strict=True)])
                    for m in metrics
                }
    diagnostics: dict[str, dict[str, Any]] = {}
    for stage, metrics in summaries[0].get("diagnostics", {}).items():
        for metric in metrics:
            values = [s.get("diagnostics", {}).get(stage, {}).get(metric) for s in summaries]
            if all(v is not None for v in values):
                diagnostics.setdefault(stage, {})[metric] = spread(values)
    return {
        "seeds": list(seeds),
        "chance": summaries[0]["chance"],
        "results": results,
        "paired": paired,
        "diagnostics": diagnostics,
    }


def _pm(value: dict[str, Any], signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{100 * value['mean']:{sign}.1f} ± {100 * value['std']:.1f}"


def seeds_markdown(agg: dict[str, Any]) -> str:
    """The results table (%, mean ± std), paired differences to InfoNCE, and the diagnostics."""
    seeds = ", ".join(str(s) for s in agg["seeds"])
    heads = " | ".join(TABLE_METRICS.values())
    lines = [
        f"Mean ± sample std over seeds {seeds} (%; chance {100 * agg['chance']:.1f}).",
        "",
        f"| stream | init | {heads} |",
        "|---|---|" + "---:|" * len(TABLE_METRICS),
    ]
    for stream, inits in agg["results"].items():
        for init in sort_methods(list(inits)):
            cells = " | ".join(_pm(inits[init][m]) for m in TABLE_METRICS)
            lines.append(f"| {stream} | {display_name(init)} | {cells} |")
    if agg["paired"]:
        lines += [
            "",
            "Difference to InfoNCE, paired by seed (percentage points, mean ± std):",
            "",
            f"| stream | init | {heads} |",
            "|---|---|" + "---:|" * len(TABLE_METRICS),
        ]
        for stream, inits in agg["paired"].items():
            for init in sort_methods(list(inits)):
                cells = " | ".join(_pm(inits[init][m], signed=True) for m in TABLE_METRICS)
                lines.append(f"| {stream} | {display_name(init)} − InfoNCE | {cells} |")
    if agg["diagnostics"]:
        lines += ["", "| diagnostic | stage | mean ± std (%) |", "|---|---|---:|"]
        for stage, metrics in agg["diagnostics"].items():
            for metric, value in metrics.items():
                lines.append(f"| {metric} | {stage} | {_pm(value)} |")
    return "\n".join(lines)


def parse_seeds(text: str) -> list[int]:
    """The seeds of ``--seeds 0,1,2``; `UserError` for anything but comma-separated integers."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise UserError(f"--seeds {text}: expected comma-separated integers such as 0,1,2")
    return seeds


def run_seeds(out: Path, seeds: Sequence[int], settings_for_seed: Any) -> dict[str, Any]:
    """Runs (or continues) ``out/seed_K`` per seed, then writes ``seeds.json`` and ``seeds.md``.

    Args:
        out: The folder of the seed runs.
        seeds: Distinct seeds.
        settings_for_seed: ``seed -> DemoSettings``.

    Returns:
        The aggregate (see `aggregate`).
    """
    from vidssl.demo.run import run_demo

    if len(set(seeds)) != len(seeds) or not seeds:
        raise UserError(f"--seeds {','.join(map(str, seeds))}: expected distinct seeds")
    summaries = []
    for seed in seeds:
        print(f"[demo seeds] seed {seed} -> {out / f'seed_{seed}'}", flush=True)
        summaries.append(run_demo(out / f"seed_{seed}", settings_for_seed(seed)))
    agg = aggregate(summaries, seeds)
    atomic_write_text(out / "seeds.json", json.dumps(agg, indent=1))
    table = seeds_markdown(agg)
    atomic_write_text(out / "seeds.md", table + "\n")
    print(table, flush=True)
    return agg
