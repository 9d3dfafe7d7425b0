"""``vidssl bench decode``: per-clip read time and exactness of vidssl, decord and plain PyAV.

The measurement lives in `vidssl.bench.decode`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``bench decode`` options (defaults: full run; ``--quick``: tiny, seconds)."""
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="write the JSON results")
    parser.add_argument("--table", type=Path, metavar="FILE.md", help="write the markdown table")
    parser.add_argument("--quick", action="store_true", help="one tiny size, one read (seconds)")
    parser.add_argument("--reads", type=int, help="timed reads per clip kind and round (4)")
    parser.add_argument("--rounds", type=int, help="rounds of reads (2)")
    parser.add_argument("--videos", type=Path, nargs="+", help="time these files instead")
    parser.add_argument("--data-dir", type=Path, help="generate the inputs here (default: temp)")


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark, prints the table, writes JSON / markdown when asked."""
    from vidssl.bench.common import int_option, write_report
    from vidssl.bench.decode import QUICK, Settings, markdown_table, run_benchmark
    from vidssl.errors import UserError
    from vidssl.utils.io import atomic_write_text

    base = QUICK if args.quick else Settings()
    settings = dataclasses.replace(
        base,
        reads=int_option(args.reads, base.reads, "--reads"),
        rounds=int_option(args.rounds, base.rounds, "--rounds"),
    )
    missing = [str(path) for path in args.videos or [] if not path.is_file()]
    if missing:
        raise UserError(f"--videos: no such file {missing[0]}")
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        report = run_benchmark(settings, args.data_dir, args.videos)
    else:
        with tempfile.TemporaryDirectory(prefix="vidssl-bench-decode-") as tmp:
            report = run_benchmark(settings, Path(tmp), args.videos)
    table = markdown_table(report)
    print(table)
    write_report(args.out, report)
    if args.out:
        print(f"wrote {args.out}")
    if args.table:
        atomic_write_text(args.table, table + "\n")
    return 0
