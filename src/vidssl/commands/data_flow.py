"""``vidssl data flow``: TV-L1 / Farneback optical flow stored like the CoCLR/ViCC releases.

Exit codes: 0 when every video has flow, 1 when some input videos were unreadable (they are
listed; the others are done), 2 for bad arguments or a missing OpenCV.
"""

from __future__ import annotations

import argparse
import os


def _default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``data flow`` options."""
    from vidssl.data.flow.dataset import DEFAULT_QUALITY
    from vidssl.data.flow.extract import METHODS

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--frames", type=str, metavar="DIR", help="root of Class/video/ RGB frame folders"
    )
    source.add_argument(
        "--videos", type=str, metavar="DIR", help="root of Class/video.ext video files"
    )
    parser.add_argument(
        "--out", type=str, required=True, metavar="DIR", help="output root (Class/video/flow_*)"
    )
    parser.add_argument(
        "--method", choices=METHODS, default="tvl1", help="flow estimator (default: tvl1)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_default_workers(),
        help="parallel processes, one OpenCV thread each (default: all CPUs)",
    )
    parser.add_argument(
        "--short-side",
        type=int,
        default=None,
        metavar="N",
        help="resize frames to this short side before flow (Kinetics practice: 256)",
    )
    parser.add_argument(
        "--quality",
        type=int,
        default=DEFAULT_QUALITY,
        help=f"flow JPEG quality, 95..100 (default: {DEFAULT_QUALITY}, like the releases)",
    )


def run(args: argparse.Namespace) -> int:
    """Extracts flow for every video; prints a summary and the unreadable videos."""
    from vidssl.data.flow.dataset import extract_flow_dataset

    summary = extract_flow_dataset(
        args.frames if args.frames is not None else args.videos,
        args.out,
        source_kind="frames" if args.frames is not None else "videos",
        method=args.method,
        workers=args.workers,
        short_side=args.short_side,
        quality=args.quality,
    )
    for video_id, reason in summary.failed:
        print(f"failed: {video_id}: {reason}")
    print(summary.line())
    return 1 if summary.failed else 0
