"""``vidssl bench loader``: two-clip SSL samples/s of our loader vs reference-style loaders.

The measurement lives in `vidssl.bench.loader`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from vidssl.bench.loader import STORAGES, markdown_table, resolve_settings, run_benchmark


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``bench loader`` options (defaults: full run; ``--quick`` values in QUICK)."""
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="write the JSON results")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few samples (seconds)")
    parser.add_argument("--storages", default=",".join(STORAGES), help="video,frames,lmdb")
    parser.add_argument("--workers", default="0,2", help="comma-separated num_workers values")
    parser.add_argument("--videos", type=int, help="generated videos (default 8)")
    parser.add_argument("--frames", type=int, help="frames per video (default 250 = 10 s)")
    parser.add_argument("--size", help="video frame HxW (default 240x320)")
    parser.add_argument("--gop", type=int, help="keyframe interval in frames (default 100)")
    parser.add_argument("--seq-len", type=int, help="frames per clip (default 32)")
    parser.add_argument("--img-size", type=int, help="output side (default 128)")
    parser.add_argument("--batch-size", type=int, help="samples per batch (default 4)")
    parser.add_argument("--batches", type=int, help="timed batches per loader and round (8)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 2)")
    parser.add_argument("--rss-samples", type=int, help="samples of the RSS run (20000)")
    parser.add_argument("--rss-storages", default="lmdb", help="storages of the RSS run, or ''")
    parser.add_argument(
        "--data-dir", type=Path, help="generate the data here (default: a temp dir)"
    )


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark, prints the tables, writes JSON if ``--out`` is given."""
    from vidssl.utils.io import atomic_write_text

    settings = resolve_settings(args)
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        report = run_benchmark(settings, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="vidssl-bench-loader-") as tmp:
            report = run_benchmark(settings, Path(tmp))
    print(markdown_table(report))
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0
