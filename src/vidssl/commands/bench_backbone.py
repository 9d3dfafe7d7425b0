"""``vidssl bench backbone``: forward+backward throughput and memory of every backbone.

The measurement lives in `vidssl.bench.backbone`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from vidssl.bench.backbone import (
    MEMORY_FORMATS,
    PRECISIONS,
    best_memory_formats,
    format_row,
    measure_all,
    plan_cases,
)
from vidssl.bench.common import environment, int_option, torch_threads, write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options."""
    parser.add_argument("--out", type=Path, help="write the results as JSON to this file")
    parser.add_argument(
        "--device",
        nargs="+",
        choices=("cpu", "cuda"),
        help="devices to measure on (default: cuda if available, else cpu)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="demo size only, few iterations (seconds on CPU)"
    )
    parser.add_argument(
        "--backbones", help="comma-separated subset of backbone names (default: all)"
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=PRECISIONS,
        default=list(PRECISIONS),
        help="precisions to measure (default: fp32 bf16)",
    )
    parser.add_argument(
        "--memory-format",
        nargs="+",
        choices=MEMORY_FORMATS,
        dest="memory_formats",
        help="memory formats (default: both; contiguous only with --quick on CPU)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="clips per step at reference sizes (default: 8 on CUDA, 2 on CPU)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        help="untimed steps after the activation-measuring step (default 3, quick 0)",
    )
    parser.add_argument("--iters", type=int, help="timed steps per case (default 10, quick 2)")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's own setting; 1 with --quick, which keeps "
        "the smoke run fast on a shared machine)",
    )


def run(args: argparse.Namespace) -> int:
    """Measures every planned case, prints a table and writes JSON if ``--out`` is given."""
    import torch

    threads = int_option(args.threads, 1 if args.quick else torch.get_num_threads(), "--threads")
    warmup = int_option(args.warmup, 0 if args.quick else 3, "--warmup", minimum=0)
    iters = int_option(args.iters, 2 if args.quick else 10, "--iters")
    cases = plan_cases(args)
    with torch_threads(threads):
        results = measure_all(cases, warmup, iters)
        machine = environment()
    report = {
        "benchmark": "backbone",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "method": "train-mode forward + backward of mean(output²) on random clips; one untimed "
        f"step recording saved activations, {warmup} warm-up and {iters} timed steps per case",
        "environment": machine,
        "results": results,
        "memory_format_summary": best_memory_formats(results),
    }
    for entry in results:
        print(format_row(entry))
    write_report(args.out, report)
    return 0
