"""``vidssl bench decode``: per-clip read time and exactness of video readers, side by side.

Readers (all with one decoding thread):

- ``vidssl fresh``: a new `VideoFile` per read with every per-process cache emptied first (index
  and open containers), as when a shuffled dataset over many videos reads one it has not seen.
- ``vidssl warm``: one `VideoFile` kept for all reads of a video (its container stays open).
- ``decord fresh`` / ``decord warm``: ``decord.VideoReader`` made per read / kept; only when
  decord is installed (vidssl never needs it; the rows are skipped with a note otherwise).
- ``pyav from start``: opens the file and decodes sequentially up to the last wanted frame.

Every read is checked against one plain sequential PyAV decode of the whole video: ``exact`` means
equal bytes; ``right_frames`` means every returned frame is nearer (mean absolute difference) to the
true frame with its index than to any other frame, which tells wrong frames from a different colour
conversion. The readers take turns on each clip, so a load change on a shared machine hits them
alike; ratios to decord therefore compare times measured side by side.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidssl.bench.common import environment
from vidssl.bench.flow import moving_texture

# (name, codec, file suffix, keyframe interval, B-frames): the kinds of files users train from
CODECS: tuple[tuple[str, str, str, int, bool], ...] = (
    ("h264-mp4", "libx264", ".mp4", 50, True),  # H.264 with B-frames, as most MP4 downloads
    ("mpeg4-avi", "mpeg4", ".avi", 12, False),  # MPEG-4 Part 2 in AVI, as UCF101 ships
    ("vp9-webm", "libvpx-vp9", ".webm", 60, False),  # VP9 WebM, as many Kinetics downloads
)
# (name, frames, step): 16/32 consecutive frames and strided clips
CLIPS: tuple[tuple[str, int, int], ...] = (
    ("16x1", 16, 1),
    ("32x1", 32, 1),
    ("16x2", 16, 2),
    ("16x4", 16, 4),
    ("8x8", 8, 8),
)
READERS = ("vidssl fresh", "vidssl warm", "decord fresh", "decord warm", "pyav from start")


@dataclass(frozen=True)
class Settings:
    """What one run measures.

    Attributes:
        sizes: frame sizes (height, width) of the generated videos.
        n_frames: frames per generated video.
        reads: timed reads per (video, clip, reader) and round.
        rounds: rounds; each round draws new clip starts.
        seed: seed of the clip starts and of the video content.
    """

    sizes: tuple[tuple[int, int], ...] = ((240, 320), (360, 640))
    n_frames: int = 250
    reads: int = 4
    rounds: int = 2
    seed: int = 0


QUICK = Settings(sizes=((48, 64),), n_frames=72, reads=1, rounds=1)


def decord_available() -> bool:
    """True when ``decord`` can be imported (it is an optional baseline, never a dependency)."""
    return importlib.util.find_spec("decord") is not None


def make_inputs(folder: Path, settings: Settings) -> list[dict[str, Any]]:
    """Writes one video per (codec, size) into ``folder``; returns their descriptions."""
    from vidssl.data.sources.video_io import write_video

    videos = []
    for height, width in settings.sizes:
        grey = [
            moving_texture(settings.n_frames, height, width, settings.seed + c) for c in range(3)
        ]
        frames = np.stack([g[..., 0] for g in grey], axis=-1)
        for name, codec, suffix, gop, bframes in CODECS:
            path = folder / f"{name}_{width}x{height}{suffix}"
            write_video(path, frames, codec=codec, gop=gop, bframes=bframes, threads=1)
            videos.append(
                {"video": path.name, "codec": name, "height": height, "width": width, "gop": gop}
            )
    return videos


def sequential_decode(path: Path) -> np.ndarray:
    """Every frame of ``path`` (``T×H×W×3`` uint8 RGB) by one plain sequential PyAV decode."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def check_frames(
    clip: np.ndarray, indices: np.ndarray, truth: np.ndarray, step: int = 4
) -> tuple[bool, bool, int]:
    """(exact, right_frames, max_abs_diff) of ``clip`` against ``truth[indices]``.

    ``right_frames`` compares each frame that is not exact with every true frame on a grid of
    every ``step``-th pixel (mean absolute difference); the nearest must be the one asked for.
    """
    expected = truth[indices]
    if clip.shape != expected.shape:
        return False, False, 255
    diff = np.abs(clip.astype(np.int16) - expected).reshape(len(clip), -1).max(axis=1)
    right = True
    if diff.any():
        grid = truth[:, ::step, ::step].astype(np.int16)
        for frame, index in zip(clip[diff > 0, ::step, ::step], indices[diff > 0], strict=True):
            errors = np.abs(grid - frame).mean(axis=(1, 2, 3))
            right &= bool(errors[index] == errors.min())
    return not diff.any(), right, int(diff.max())


def _pyav_from_start(path: Path, indices: np.ndarray) -> np.ndarray:
    wanted, last, frames = set(indices.tolist()), int(indices.max()), {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted:
                frames[position] = frame.to_ndarray(format="rgb24")
            if position >= last:
                break
    return np.stack([frames[int(i)] for i in indices])


def _readers(path: Path, available: list[str]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Reader name → function reading ``indices`` of ``path`` as ``T×H×W×3`` uint8."""
    from vidssl.data.sources import VideoFile, video_file

    warm = VideoFile(path)

    def vidssl_fresh(indices: np.ndarray) -> np.ndarray:
        video_file.clear_caches()
        return VideoFile(path).read(indices).numpy()

    readers: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "vidssl fresh": vidssl_fresh,
        "vidssl warm": lambda indices: warm.read(indices).numpy(),
        "pyav from start": lambda indices: _pyav_from_start(path, indices),
    }
    if "decord fresh" in available:
        import decord  # optional baseline; vidssl itself never imports it

        kept = decord.VideoReader(str(path), num_threads=1)
        readers["decord fresh"] = lambda indices: (
            decord.VideoReader(str(path), num_threads=1).get_batch(list(indices)).asnumpy()
        )
        readers["decord warm"] = lambda indices: kept.get_batch(list(indices)).asnumpy()
    return {name: readers[name] for name in available}


def _time_video(path: Path, settings: Settings, available: list[str]) -> list[dict[str, Any]]:
    """Times every (clip, reader) on one video; readers take turns on each drawn clip."""
    truth = sequential_decode(path)
    n_frames = len(truth)
    readers = _readers(path, available)
    rng = np.random.default_rng(settings.seed)
    rows = []
    for clip_name, length, step in CLIPS:
        span = (length - 1) * step + 1
        if span > n_frames:
            continue
        times: dict[str, list[float]] = {name: [] for name in readers}
        checks: dict[str, list[tuple[bool, bool, int]]] = {name: [] for name in readers}
        for turn in range(settings.rounds * settings.reads):
            indices = int(rng.integers(0, n_frames - span + 1)) + step * np.arange(length)
            names = list(readers)
            names = names[turn % len(names) :] + names[: turn % len(names)]  # rotate the order
            for name in names:
                started = time.perf_counter()
                clip = readers[name](indices)
                times[name].append(time.perf_counter() - started)
                checks[name].append(check_frames(clip, indices, truth))
        for name in readers:
            rows.append(
                {
                    "video": path.name,
                    "clip": clip_name,
                    "reader": name,
                    "reads": len(times[name]),
                    "ms_median": round(1000 * statistics.median(times[name]), 2),
                    "ms_mean": round(1000 * statistics.fmean(times[name]), 2),
                    "exact": all(check[0] for check in checks[name]),
                    "right_frames": all(check[1] for check in checks[name]),
                    "max_abs_diff": max(check[2] for check in checks[name]),
                }
            )
    return rows


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Adds ``vs_decord_fresh`` / ``vs_decord_warm`` (time ratio of medians) to vidssl rows."""
    medians = {(r["video"], r["clip"], r["reader"]): r["ms_median"] for r in rows}
    for row in rows:
        for mode in ("fresh", "warm"):
            decord = medians.get((row["video"], row["clip"], f"decord {mode}"))
            if row["reader"] == f"vidssl {mode}" and decord:
                row[f"vs_decord_{mode}"] = round(row["ms_median"] / decord, 3)


def run_benchmark(
    settings: Settings, folder: Path, videos: list[Path] | None = None
) -> dict[str, Any]:
    """Generates the inputs in ``folder`` (unless ``videos`` are given) and times every reader."""
    available = [r for r in READERS if decord_available() or not r.startswith("decord")]
    if videos is None:
        described = make_inputs(folder, settings)
        paths = [folder / item["video"] for item in described]
    else:
        described = [{"video": path.name} for path in videos]
        paths = list(videos)
    rows = [row for path in paths for row in _time_video(path, settings, available)]
    _add_ratios(rows)
    notes = []
    if not decord_available():
        notes.append("decord is not installed: its rows are skipped (pip install decord)")
    for row in rows:
        if row["reader"].startswith("vidssl") and not row["exact"]:
            notes.append(f"vidssl is NOT exact on {row['video']} {row['clip']} ({row['reader']})")
        if row["reader"].startswith("decord") and not row["right_frames"]:
            notes.append(f"decord returns wrong frames on {row['video']} {row['clip']}")
    versions = {"av": av.__version__}
    if decord_available():
        import decord

        versions["decord"] = decord.__version__
    return {
        "benchmark": "decode",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "what": "ms per clip read (median), 1 decoding thread, readers interleaved per clip",
        "machine": {
            **environment(**versions),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "settings": {
            "sizes": [list(size) for size in settings.sizes],
            "n_frames": settings.n_frames,
            "reads": settings.reads,
            "rounds": settings.rounds,
            "clips": [list(clip) for clip in CLIPS],
        },
        "videos": described,
        "notes": notes,
        "results": rows,
    }


def markdown_table(report: dict[str, Any]) -> str:
    """One line per (video, clip): median ms per reader, vidssl/decord ratios, exactness."""
    readers = [r for r in READERS if any(row["reader"] == r for row in report["results"])]
    header = ["video", "clip", *[f"{r} ms" for r in readers]]
    has_decord = "decord fresh" in readers
    if has_decord:
        header += ["fresh vs decord", "warm vs decord"]
    header += ["vidssl exact", "decord right frames"] if has_decord else ["vidssl exact"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    grouped: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in report["results"]:
        grouped.setdefault((row["video"], row["clip"]), {})[row["reader"]] = row
    for (video, clip), by_reader in grouped.items():
        cells = [video, clip, *[f"{by_reader[r]['ms_median']:.1f}" for r in readers]]
        if has_decord:
            cells += [
                f"{by_reader['vidssl fresh'].get('vs_decord_fresh', float('nan')):.2f}×",
                f"{by_reader['vidssl warm'].get('vs_decord_warm', float('nan')):.2f}×",
            ]
        exact = by_reader["vidssl fresh"]["exact"] and by_reader["vidssl warm"]["exact"]
        cells.append("yes" if exact else "**NO**")
        if has_decord:
            right = (
                by_reader["decord fresh"]["right_frames"]
                and by_reader["decord warm"]["right_frames"]
            )
            diff = max(
                by_reader["decord fresh"]["max_abs_diff"], by_reader["decord warm"]["max_abs_diff"]
            )
            cells.append(f"yes (max diff {diff})" if right else f"**NO** (max diff {diff})")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [f"\n- {note}" for note in report["notes"]]
    return "\n".join(lines)
