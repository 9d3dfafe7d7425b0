"""``vidssl bench loader``: two-clip SSL samples/s of our loader vs reference-style loaders.

For each storage (video files, frame folders, LMDB) and DataLoader worker count, four loaders run
side by side in one process over the same generated UCF101-like data, through the same
`ResumableLoader` (default collate) with the same per-sample seeds, so they read the same clips:

- **ours**: the training path, `build_pretrain_dataset` (CoCLR two-clip sampling and augmentation)
  over `VideoFile` (keyframe seek, decodes only the span), `FrameFolder` or `LmdbVideo`;
- **baseline**: for videos, whole-video decode then index, same augmentation; for the LMDB,
  CoCLR-style reading (unpack the whole record, PIL-decode each sampled frame, per-frame PIL
  augmentation); for frame folders the same per-frame PIL path reading the files;
- **ceiling**: our sources reading just the sampled frames, no augmentation (decode-only);
- for videos also **whole decode only** (the baseline's decode, no augmentation);
- for videos, when decord is installed, **decord** (a ``decord.VideoReader`` per read, same
  augmentation) and **decord decode only** (optional baselines; vidssl never needs decord).

Timing: per loader, one untimed batch per worker (start-up), then ``--batches`` timed batches;
``--rounds`` rounds alternate the loader order, and rates pool all rounds. torch runs one thread
per process (workers always do), so ``workers 0`` is one core for every loader. The RSS phase
runs our loader with 2 workers over ``--rss-samples`` samples (8-frame 64² clips) and records
each worker's RSS after its first batch and at the end (/proc status; anon/file split too).

Targets (issue 3): ours ≥ 5× whole-video decode (videos), ≥ 2× CoCLR-style (LMDB), ≥ 0.7× the
decode-only ceiling; worker RSS growth < 50 MB. Full run: ``vidssl bench loader --out
benchmarks/results/loader.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vidssl.errors import UserError

STORAGES = ("video", "frames", "lmdb")
TARGETS = {"video": 5.0, "lmdb": 2.0, "frames": None}
CEILING_TARGET = 0.7
RSS_TARGET_MB = 50.0
BASELINES = {
    "video": "whole-video decode, then index; same augmentation",
    "frames": "per-frame PIL read + per-frame PIL augmentation",
    "lmdb": "CoCLR-style: unpack whole record, PIL decode + per-frame PIL augmentation",
}
FULL = {"videos": 8, "frames": 250, "size": "240x320", "gop": 100, "seq_len": 32,
        "img_size": 128, "batch_size": 4, "batches": 8, "rounds": 2, "rss_samples": 20000,
        "rss_batch": 16}  # fmt: skip
QUICK = {"videos": 2, "frames": 40, "size": "48x64", "gop": 20, "seq_len": 8, "img_size": 32,
         "batch_size": 2, "batches": 2, "rounds": 1, "rss_samples": 16, "rss_batch": 4}  # fmt: skip


def _names(text: str, option: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = sorted(set(names) - set(STORAGES))
    if unknown:
        raise UserError(f"{option} {text!r}: unknown {unknown}; expected some of {STORAGES}")
    return names


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings: ``--quick`` or full defaults, overridden by the explicit options."""
    settings = dict(QUICK if args.quick else FULL)
    for key in ("videos", "frames", "size", "gop", "seq_len", "img_size", "batch_size",
                "batches", "rounds", "rss_samples"):  # fmt: skip
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    for key, value in settings.items():
        if isinstance(value, int) and value < 1:
            raise UserError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
    try:
        height, width = (int(v) for v in str(settings["size"]).lower().split("x"))
    except ValueError:
        raise UserError(f"--size {settings['size']!r} is not HEIGHTxWIDTH (e.g. 240x320)") from None
    if height < 16 or width < 16 or height % 2 or width % 2:
        raise UserError(f"--size {settings['size']!r}: need even sides of at least 16")
    try:
        workers = [int(v) for v in args.workers.split(",") if v]
    except ValueError:
        raise UserError(f"--workers {args.workers!r} is not comma-separated integers") from None
    if not workers or min(workers) < 0:
        raise UserError(f"--workers {args.workers!r}: expected integers >= 0")
    settings.update(
        height=height,
        width=width,
        workers=workers,
        storages=_names(args.storages, "--storages"),
        rss_storages=_names(args.rss_storages, "--rss-storages"),
        torch_threads=1,
        quick=bool(args.quick),
    )
    return settings


def _row(storage: str, workers: int, timings: dict[str, Any]) -> dict[str, Any]:
    ours, base, ceiling = timings["ours"].rate, timings["baseline"].rate, timings["ceiling"].rate
    vs_base, vs_ceiling = ours / base, ours / ceiling
    target = TARGETS[storage]
    row = {
        "storage": storage,
        "workers": workers,
        "baseline": BASELINES[storage],
        **{f"{kind}": timing.as_dict() for kind, timing in timings.items()},
        "ours_vs_baseline": vs_base,
        "ours_vs_ceiling": vs_ceiling,
        "targets": {
            "ours_vs_baseline": None
            if target is None
            else {"target": target, "met": vs_base >= target},
            "ours_vs_ceiling": {"target": CEILING_TARGET, "met": vs_ceiling >= CEILING_TARGET},
        },
    }
    if "whole_decode_only" in timings:
        row["seek_vs_whole_decode_only"] = ceiling / timings["whole_decode_only"].rate
    if "decord" in timings:
        row["ours_vs_decord"] = ours / timings["decord"].rate
        row["ceiling_vs_decord_decode_only"] = ceiling / timings["decord_decode_only"].rate
    return row


def _loaders(storage: str, workers: int, root: Path, media: Path, s: dict[str, Any]) -> dict:
    from vidssl.bench import loader_baselines as bl
    from vidssl.bench.loader_measure import tiled, train_config
    from vidssl.data.catalogs import VideoTable
    from vidssl.data.dataset_builder import build_pretrain_dataset
    from vidssl.data.datasets import MultiViewDataset
    from vidssl.train.loader import build_train_loader

    cfg = train_config(root, media, seq_len=s["seq_len"], size=s["img_size"],
                       batch=s["batch_size"], workers=workers)  # fmt: skip
    built = build_pretrain_dataset(cfg)
    rows = (max(1, workers) + s["batches"]) * s["batch_size"]
    table, sampler = tiled(built.table, rows), built.sampler
    datasets: dict[str, Any] = {"ours": MultiViewDataset(table, sampler, built.views)}
    if storage == "video":
        fields = {f.name: getattr(table, f.name) for f in dataclasses.fields(VideoTable)}
        whole = bl.SwappedSourceTable(**fields, factory=bl.WholeVideoDecode)
        datasets["baseline"] = MultiViewDataset(whole, sampler, built.views)
        datasets["whole_decode_only"] = bl.DecodeOnlyDataset(whole, sampler)
        from vidssl.bench.decode import decord_available

        if decord_available():  # optional baseline: decord reader, same augmentation
            decord = bl.SwappedSourceTable(**fields, factory=bl.DecordVideo)
            datasets["decord"] = MultiViewDataset(decord, sampler, built.views)
            datasets["decord_decode_only"] = bl.DecodeOnlyDataset(decord, sampler)
    else:
        datasets["baseline"] = bl.PilClipDataset(table, sampler, s["img_size"])
    datasets["ceiling"] = bl.DecodeOnlyDataset(table, sampler)
    return {kind: (lambda d=d: build_train_loader(d, cfg)) for kind, d in datasets.items()}


def _rss(storage: str, root: Path, media: Path, s: dict[str, Any]) -> dict[str, Any]:
    from vidssl.bench.loader_measure import rss_run, tiled, train_config
    from vidssl.data.dataset_builder import build_pretrain_dataset
    from vidssl.data.datasets import MultiViewDataset
    from vidssl.train.loader import build_train_loader

    batch = s["rss_batch"]
    cfg = train_config(root, media, seq_len=8, size=64, batch=batch, workers=2)
    built = build_pretrain_dataset(cfg)
    batches = -(-s["rss_samples"] // batch)
    dataset = MultiViewDataset(tiled(built.table, batches * batch), built.sampler, built.views)
    result = rss_run(build_train_loader(dataset, cfg), batches)
    growth = max(worker["growth_mb"] for worker in result["per_worker"])
    return {"storage": storage, "workers": 2, "samples": batches * batch, "seq_len": 8,
            "img_size": 64, "max_growth_mb": growth, "target_mb": RSS_TARGET_MB,
            "met": growth < RSS_TARGET_MB, **result}  # fmt: skip


def _machine() -> dict[str, Any]:
    import av
    import PIL
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "av": av.__version__,
            "pillow": PIL.__version__, "load_avg_start": list(os.getloadavg())}  # fmt: skip


def run_benchmark(settings: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """Generates the data under ``data_dir``, measures everything; returns the JSON report."""
    import torch

    from vidssl.bench.loader_measure import VideoSpec, make_data, measure_kinds

    s = settings
    machine = _machine()
    spec = VideoSpec(s["videos"], s["frames"], s["height"], s["width"], s["gop"])
    media = make_data(data_dir, spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(s["torch_threads"])
    try:
        results = []
        for storage in s["storages"]:
            for workers in s["workers"]:
                loaders = _loaders(storage, workers, data_dir, media[storage], s)
                timings = measure_kinds(loaders, s["rounds"], max(1, workers), s["batches"],
                                        s["batch_size"])  # fmt: skip
                results.append(_row(storage, workers, timings))
        rss = [_rss(storage, data_dir, media[storage], s) for storage in s["rss_storages"]]
    finally:
        torch.set_num_threads(threads)
    machine["load_avg_end"] = list(os.getloadavg())
    return {
        "benchmark": "loader",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {**s, "data": dataclasses.asdict(spec), "codec": "libx264 (.avi, no B)"},
        "results": results,
        "rss": rss,
    }


def _flag(target: dict[str, Any] | None) -> str:
    if target is None:
        return "–"
    return f"{'✓' if target['met'] else '✗'} ≥{target['target']:g}"


def markdown_table(report: dict[str, Any]) -> str:
    """Throughput table, then the RSS table."""
    lines = [
        "| storage | workers | ours samples/s | baseline samples/s | ours/baseline | "
        "decode-only ceiling samples/s | ours/ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        t = r["targets"]
        lines.append(
            f"| {r['storage']} | {r['workers']} | {r['ours']['samples_per_s']:.2f} | "
            f"{r['baseline']['samples_per_s']:.2f} | {r['ours_vs_baseline']:.2f}× "
            f"{_flag(t['ours_vs_baseline'])} | {r['ceiling']['samples_per_s']:.2f} | "
            f"{r['ours_vs_ceiling']:.2f} {_flag(t['ours_vs_ceiling'])} |"
        )
    for r in report["results"]:
        if "seek_vs_whole_decode_only" in r:
            lines.append(
                f"\nvideo, {r['workers']} workers, decode only: seek "
                f"{r['ceiling']['samples_per_s']:.2f}/s vs whole-video "
                f"{r['whole_decode_only']['samples_per_s']:.2f}/s = "
                f"{r['seek_vs_whole_decode_only']:.2f}×"
            )
        if "ours_vs_decord" in r:
            lines.append(
                f"video, {r['workers']} workers: ours {r['ours']['samples_per_s']:.2f}/s vs "
                f"decord loader (same augmentation) {r['decord']['samples_per_s']:.2f}/s = "
                f"{r['ours_vs_decord']:.2f}×; decode only {r['ceiling_vs_decord_decode_only']:.2f}×"
            )
    if report["rss"]:
        lines += ["", "| RSS run | samples | worker RSS start → end (MB) | growth MB | anon MB |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in report["rss"]:
            workers = r["per_worker"]
            lines.append(
                f"| {r['storage']}, 2 workers, 8×64² | {r['samples']} | "
                + ", ".join(f"{w['start_mb']:.0f} → {w['end_mb']:.0f}" for w in workers)
                + f" | {r['max_growth_mb']:.1f} {'✓' if r['met'] else '✗'} <{r['target_mb']:g} | "
                + ", ".join(f"{w['anon_growth_mb']:.1f}" for w in workers)
                + " |"
            )
    return "\n".join(lines)
