"""``vidssl bench train``: one InfoNCE step in vidssl vs the same step in a bare PyTorch loop.

The measurement lives in `vidssl.bench.train`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import datetime
from dataclasses import asdict
from pathlib import Path

from vidssl.bench.common import environment, int_option, torch_threads, write_report
from vidssl.bench.train import TARGET_RATIO, measure, resolve_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options."""
    parser.add_argument("--out", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few steps (seconds)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    parser.add_argument("--precision", choices=("32", "bf16-mixed"), default="32")
    parser.add_argument("--backbone", default="s3d", help="backbone name (default s3d)")
    parser.add_argument("--width-mult", type=float, help="backbone width (default 1, quick 1/16)")
    parser.add_argument("--batch-size", type=int, help="clips per step (cuda 32, cpu 2, quick 4)")
    parser.add_argument("--frames", type=int, help="frames per clip (cuda 32, cpu 16, quick 8)")
    parser.add_argument("--size", type=int, help="clip height/width (cuda 128, cpu 64, quick 32)")
    parser.add_argument("--queue-size", type=int, help="queue K (default 2048, quick 16)")
    parser.add_argument("--steps", type=int, help="timed steps per run (default 20, quick 3)")
    parser.add_argument("--warmup", type=int, help="untimed steps per run (default 5, quick 1)")
    parser.add_argument("--rounds", type=int, help="bare/vidssl alternations (default 2, quick 1)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (quick: 1)")


def run(args: argparse.Namespace) -> int:
    """Measures both loops, prints one line per side and writes JSON if ``--out`` is given."""
    import lightning
    import torch

    settings = resolve_settings(args)
    threads = int_option(args.threads, 1 if args.quick else torch.get_num_threads(), "--threads")
    with torch_threads(threads):
        results = measure(settings)
        machine = environment(lightning=lightning.__version__)
    report = {
        "benchmark": "train",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "method": "one InfoNCE step: vidssl (preset infonce/ucf101_rgb through "
        "vidssl.train.engine.fit, "
        "progress bar off) vs a bare PyTorch loop on the same device-resident batch; time from "
        "batch start to batch start with a device sync at each start; median of the timed steps",
        "settings": asdict(settings),
        "environment": machine,
        **results,
    }
    for side in ("bare", "vidssl"):
        print(f"{side:<7} {results[side]['ms_per_step_median']:10.2f} ms/step (median)")
    print(
        f"ratio   {results['ratio']:10.3f} (target ≤ {TARGET_RATIO}); overhead "
        f"{results['overhead_ms']:.2f} ms/step"
    )
    write_report(args.out, report)
    return 0
