"""Result records of evaluation runs: one JSON and one markdown table per run, written atomically.

Every record has the same top-level keys (`RECORD_KEYS`): ``task``, ``dataset``, ``protocol``
(splits, clips, crops, resolution, seq_len, ds), ``encoders`` (path, arch, SHA-256 per stream),
``results`` (the numbers, fractions in [0, 1]), ``skipped`` (unreadable videos, per split),
``settings`` (the full `EvalConfig`), ``vidssl_version`` and ``created``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vidssl import __version__
from vidssl.utils.io import atomic_write_text

__all__ = ["RECORD_KEYS", "make_record", "markdown_table", "write_results"]

RECORD_KEYS = (
    "task",
    "dataset",
    "protocol",
    "encoders",
    "results",
    "skipped",
    "settings",
    "vidssl_version",
    "created",
)


def make_record(
    task: str,
    *,
    dataset: Mapping[str, Any],
    protocol: Mapping[str, Any],
    encoders: Mapping[str, Any],
    results: Mapping[str, Any],
    skipped: Mapping[str, list[str]],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Assembles a result record with the keys of `RECORD_KEYS`."""
    return {
        "task": task,
        "dataset": dict(dataset),
        "protocol": dict(protocol),
        "encoders": dict(encoders),
        "results": dict(results),
        "skipped": {
            "count": sum(len(v) for v in skipped.values()),
            **{k: list(v) for k, v in skipped.items()},
        },
        "settings": dict(settings),
        "vidssl_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _number(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, float) else str(value)


def markdown_table(record: Mapping[str, Any]) -> str:
    """A markdown summary: one row per stream, one column per metric (percent)."""
    results = record["results"]
    streams = {k: v for k, v in results.items() if isinstance(v, Mapping)}
    if not streams:
        streams = {"": results}
    metrics = list(dict.fromkeys(m for v in streams.values() for m in v))
    protocol, dataset = record["protocol"], record["dataset"]
    lines = [
        f"# {record['task']}: {dataset.get('name')} split {dataset.get('split_id')}",
        "",
        "protocol: " + ", ".join(f"{k} {v}" for k, v in protocol.items()),
        f"skipped videos: {record['skipped']['count']}",
        "",
        "| stream | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for stream, values in streams.items():
        cells = [_number(values.get(m, "")) for m in metrics]
        lines.append(f"| {stream or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(record: Mapping[str, Any], out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Writes ``out_dir/name.json`` and ``out_dir/name.md`` atomically; returns both paths."""
    out = Path(out_dir)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    atomic_write_text(json_path, json.dumps(record, indent=2, default=str) + "\n")
    atomic_write_text(md_path, markdown_table(record))
    return json_path, md_path
