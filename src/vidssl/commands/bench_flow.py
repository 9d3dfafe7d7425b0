"""``vidssl bench flow``: optical-flow extraction throughput (frame pairs per second).

The measurement lives in `vidssl.bench.flow`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import json

from vidssl.bench.flow import (
    DEFAULT_SIZES,
    markdown_table,
    parse_ints,
    parse_sizes,
    run_benchmark,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``bench flow`` options."""
    parser.add_argument("--out", type=str, default=None, metavar="FILE.json", help="JSON results")
    parser.add_argument("--methods", default="tvl1,farneback", help="comma-separated methods")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated HxW frame sizes")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--videos", type=int, default=4, help="videos per setting")
    parser.add_argument("--pairs", type=int, default=8, help="frame pairs per video")


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark, prints a markdown table, writes JSON if ``--out`` is given."""
    from vidssl.data.flow.extract import METHODS
    from vidssl.errors import UserError
    from vidssl.utils.io import atomic_write_text

    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise UserError(f"--methods {args.methods!r} is invalid; expected some of {METHODS}")
    if args.videos < 1 or args.pairs < 1:
        raise UserError("--videos and --pairs must be >= 1")
    report = run_benchmark(
        methods,
        parse_sizes(args.sizes),
        parse_ints(args.workers, "--workers"),
        args.videos,
        args.pairs,
    )
    print(markdown_table(report))
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0
