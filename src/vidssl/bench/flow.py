"""``vidssl bench flow``: optical-flow extraction throughput (frame pairs per second).

Measures the whole per-pair pipeline of ``vidssl data flow`` after decoding (grey conversion,
flow, quantisation, JPEG encoding) on generated frames of a moving texture, for each method, frame
size and worker count. Every setting runs in a pool of worker processes with one OpenCV thread
each (exactly like the extraction); pools are started and warmed up before timing, so the numbers
are steady-state throughput. ``workers 2 / workers 1`` shows how far process parallelism scales.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

DEFAULT_SIZES = "64x64,112x112,240x320"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"64x64,240x320"`` → ``[(64, 64), (240, 320)]``; `UserError` on a bad size."""
    from vidssl.errors import UserError

    sizes = []
    for item in text.split(","):
        try:
            height, width = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise UserError(f"--sizes item {item!r} is not HEIGHTxWIDTH (e.g. 240x320)") from None
        if height < 16 or width < 16:
            raise UserError(f"--sizes item {item!r} is too small; need at least 16x16")
        sizes.append((height, width))
    return sizes


def parse_ints(text: str, name: str) -> list[int]:
    """``"1,2"`` → ``[1, 2]`` (positive); `UserError` naming option ``name`` otherwise."""
    from vidssl.errors import UserError

    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{name} must be comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise UserError(f"{name} values must be >= 1, got {text!r}")
    return values


def moving_texture(n_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """``T×H×W×3`` uint8 frames of a smooth random texture translating by (2, 1) px per frame."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(height // 4 + 2, width // 4 + 2), dtype=np.uint8)
    texture = np.kron(coarse, np.ones((4, 4), dtype=np.uint8))[:height, :width]
    frames = [np.roll(texture, (t, 2 * t), axis=(0, 1)) for t in range(n_frames)]
    return np.repeat(np.stack(frames)[..., None], 3, axis=3)


def _flow_video(setting: tuple[str, int, int, int, int]) -> int:
    """Worker: computes and JPEG-encodes the flow of one generated video; returns its pairs."""
    from vidssl.data.flow.extract import iter_flow_images
    from vidssl.utils.jpeg import encode_jpeg

    method, height, width, pairs, seed = setting
    frames = moving_texture(pairs + 1, height, width, seed)
    return sum(1 for image in iter_flow_images(frames, method) if encode_jpeg(image, quality=100))


def _measure(pool: Any, method: str, size: tuple[int, int], videos: int, pairs: int) -> float:
    settings = [(method, *size, pairs, seed) for seed in range(videos)]
    pool.map(_flow_video, [(method, *size, 1, 0)] * len(settings))  # warm-up: TV-L1 buffers
    started = time.perf_counter()
    pool.map(_flow_video, settings, chunksize=1)
    return time.perf_counter() - started


def run_benchmark(
    methods: list[str], sizes: list[tuple[int, int]], workers: list[int], videos: int, pairs: int
) -> dict[str, Any]:
    """Runs every (workers, method, size) setting; returns the JSON-ready results."""
    import cv2

    from vidssl.data.flow.dataset import init_flow_worker
    from vidssl.data.flow.extract import FlowEstimator

    for method in methods:
        FlowEstimator(method)  # UserError early if OpenCV / cv2.optflow is missing
    results = []
    context = multiprocessing.get_context("spawn")
    for n_workers in workers:
        with context.Pool(n_workers, initializer=init_flow_worker) as pool:
            for method in methods:
                for height, width in sizes:
                    seconds = _measure(pool, method, (height, width), videos, pairs)
                    results.append(
                        {
                            "method": method,
                            "height": height,
                            "width": width,
                            "workers": n_workers,
                            "frame_pairs": videos * pairs,
                            "seconds": round(seconds, 6),
                            "pairs_per_s": round(videos * pairs / seconds, 2),
                        }
                    )
    single = {(r["method"], r["height"], r["width"]): r for r in results if r["workers"] == 1}
    for row in results:
        base = single.get((row["method"], row["height"], row["width"]))
        row["speedup_vs_1_worker"] = (
            round(row["pairs_per_s"] / base["pairs_per_s"], 2) if base else None
        )
    return {
        "benchmark": "flow",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "what": "grey + flow + quantise + JPEG(q100) per frame pair, 1 OpenCV thread per process",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "opencv": cv2.__version__,
            "python": platform.python_version(),
        },
        "settings": {"videos": videos, "pairs_per_video": pairs},
        "results": results,
    }


def markdown_table(report: dict[str, Any]) -> str:
    """The results as a markdown table."""
    lines = [
        "| method | size | workers | pairs | seconds | pairs/s | speedup vs 1 worker |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['method']} | {row['height']}×{row['width']} | {row['workers']} | "
            f"{row['frame_pairs']} | {row['seconds']:.3f} | {row['pairs_per_s']:.1f} | "
            f"{row['speedup_vs_1_worker']} |"
        )
    return "\n".join(lines)
