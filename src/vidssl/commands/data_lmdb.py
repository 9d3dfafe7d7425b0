"""``vidssl data lmdb``: pack ``Class/video/`` frame folders into a CoCLR-compatible LMDB."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``data lmdb`` options."""
    parser.add_argument("--frames", required=True, help="frame root holding Class/video/ folders")
    parser.add_argument("--out", required=True, help="output LMDB file, e.g. ucf101_frame.lmdb")
    parser.add_argument(
        "--seed", type=int, default=0, help="video-id shuffle seed (CoCLR uses 0, the default)"
    )


def run(args: argparse.Namespace) -> int:
    """Writes the LMDB and its ``-order`` side file; returns 0."""
    from vidssl.data.sources.lmdb_store import write_lmdb

    summary = write_lmdb(args.frames, args.out, seed=args.seed)
    print(f"wrote {summary.videos} videos ({summary.frames} frames) to {args.out}")
    if summary.empty:
        print(f"  {len(summary.empty)} empty frame folders stored as empty records:")
        for name in summary.empty:
            print(f"  empty: {name}")
    return 0
