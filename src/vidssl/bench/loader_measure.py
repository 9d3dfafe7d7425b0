"""Test data, loaders and timing for ``vidssl bench loader`` (see `vidssl.bench.loader`).

The data is generated: UCF101-like videos (``Class/v_Class_gXX_c01.avi``, H.264 without B-frames,
a keyframe every ``gop`` frames) of a moving colour texture with per-frame noise, decoded into
``image_%05d.jpg`` frame folders (`extract_frames`, quality 95) and packed into a CoCLR LMDB
(`write_lmdb`); a ``csv`` catalog lists the videos, so every storage is loaded through
`vidssl.data.catalogs.load` exactly like a training run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidssl.data.catalogs import table as catalogs

CLASSES = ("Basketball", "Diving")
MEDIA = {"video": "videos", "frames": "frames", "lmdb": "frames.lmdb"}


@dataclass(frozen=True)
class VideoSpec:
    """The generated videos."""

    videos: int
    frames: int
    height: int
    width: int
    gop: int
    fps: int = 25


def synth_frames(n_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """``T×H×W×3`` uint8: a colour block texture drifting (1, 2) px per frame, plus noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    texture = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for t in range(n_frames):
        moved = np.roll(texture, (t, 2 * t), axis=(0, 1))[:height, :width].astype(np.int16)
        noise = rng.integers(-6, 7, size=(height, width, 1), dtype=np.int16)
        frames[t] = np.clip(moved + noise, 0, 255)
    return frames


def make_data(root: Path, spec: VideoSpec) -> dict[str, Path]:
    """Writes videos, frame folders, the LMDB and ``train.csv`` under ``root``; returns media."""
    from vidssl.commands.data_frames import extract_frames
    from vidssl.data.sources.lmdb_store import write_lmdb
    from vidssl.data.sources.video_io import write_video

    rows = []
    for i in range(spec.videos):
        cls = CLASSES[i % len(CLASSES)]
        name = f"{cls}/v_{cls}_g{i // len(CLASSES) + 1:02d}_c01"
        video = root / MEDIA["video"] / f"{name}.avi"
        video.parent.mkdir(parents=True, exist_ok=True)
        frames = synth_frames(spec.frames, spec.height, spec.width, seed=i)
        write_video(video, frames, fps=spec.fps, gop=spec.gop, threads=1)
        extract_frames(
            video, root / MEDIA["frames"] / name, naming="image", quality=95, short_side=None
        )
        rows.append(f"{name},{cls}")
    write_lmdb(root / MEDIA["frames"], root / MEDIA["lmdb"], progress=False)
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    return {storage: root / path for storage, path in MEDIA.items()}


def load_table(root: Path, media: Path) -> catalogs.VideoTable:
    """The ``csv`` catalog of the generated videos bound to one media store."""
    return catalogs.load("csv", root, "train", media=media)


def train_config(root: Path, media: Path, *, seq_len: int, size: int, batch: int, workers: int):
    """The InfoNCE UCF101 preset pointed at the generated data (real training data settings)."""
    from vidssl.methods.registry import load_config

    overrides = {
        "data.dataset": "csv",
        "data.root": root,
        "data.media": media,
        "data.seq_len": seq_len,
        "data.ds": 1,
        "data.img_size": size,
        "data.batch_size": batch,
        "data.workers": workers,
        "data.pin_memory": "false",
        "data.persistent_workers": "true",
    }
    return load_config("infonce/ucf101_rgb", [f"{k}={v}" for k, v in overrides.items()])


def tiled(table: catalogs.VideoTable, rows: int) -> catalogs.VideoTable:
    """``table`` repeated (in order) to exactly ``rows`` rows."""
    return table.subset(np.resize(np.arange(len(table)), rows))


@dataclass
class Timing:
    """Samples and seconds accumulated over rounds."""

    samples: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Samples per second."""
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON form (full precision)."""
        return {"samples": self.samples, "seconds": self.seconds, "samples_per_s": self.rate}


def time_loader(loader: Any, warmup: int, batches: int, batch_size: int) -> tuple[int, float]:
    """Times ``batches`` batches after ``warmup`` untimed ones; returns (samples, seconds).

    One warm-up batch per worker covers worker start-up and aligns the workers' batches.
    """
    iterator = iter(loader)
    try:
        for _ in range(warmup):
            next(iterator)
        started = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        return batches * batch_size, time.perf_counter() - started
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def measure_kinds(
    loaders: dict[str, Callable[[], Any]], rounds: int, warmup: int, batches: int, batch: int
) -> dict[str, Timing]:
    """Times every loader ``rounds`` times, alternating the order (ABC, CBA, ...)."""
    timings = {kind: Timing() for kind in loaders}
    names = list(loaders)
    for r in range(rounds):
        for kind in names if r % 2 == 0 else names[::-1]:
            samples, seconds = time_loader(loaders[kind](), warmup, batches, batch)
            timings[kind].samples += samples
            timings[kind].seconds += seconds
    return timings


# ---------------------------------------------------------------------------------------- RSS


def read_rss_mb(pid: int) -> dict[str, float]:
    """``VmRSS``, ``RssAnon`` and ``RssFile`` of a process in MB (from /proc/<pid>/status)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) / 1024  # kB → MB
    return {"rss": values["VmRSS"], "anon": values["RssAnon"], "file": values["RssFile"]}


def worker_pids(iterator: Any) -> list[int]:
    """The DataLoader worker processes of a multi-process iterator."""
    workers = getattr(iterator, "_workers", None)
    if workers is not None:
        return [worker.pid for worker in workers]
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    return [int(pid) for pid in children]


def rss_run(loader: Any, batches: int, checkpoints: int = 10) -> dict[str, Any]:
    """Iterates ``batches`` batches and records each DataLoader worker's memory.

    Memory is read after the first batch, at ``checkpoints`` evenly spaced points and at the end.
    """
    iterator = iter(loader)
    try:
        next(iterator)
        pids = worker_pids(iterator)
        start = {pid: read_rss_mb(pid) for pid in pids}
        trace = [{"batch": 1, "rss_mb": [start[pid]["rss"] for pid in pids]}]
        every = max(1, (batches - 1) // checkpoints)
        started = time.perf_counter()
        for done in range(2, batches + 1):
            next(iterator)
            if done % every == 0 or done == batches:
                trace.append({"batch": done, "rss_mb": [read_rss_mb(p)["rss"] for p in pids]})
        seconds = time.perf_counter() - started
        end = {pid: read_rss_mb(pid) for pid in pids}
    finally:
        iterator._shutdown_workers()
    per_worker = [
        {
            "pid": pid,
            "start_mb": start[pid]["rss"],
            "end_mb": end[pid]["rss"],
            "growth_mb": end[pid]["rss"] - start[pid]["rss"],
            "anon_growth_mb": end[pid]["anon"] - start[pid]["anon"],
            "file_growth_mb": end[pid]["file"] - start[pid]["file"],
        }
        for pid in pids
    ]
    return {"per_worker": per_worker, "trace": trace, "seconds": seconds}
