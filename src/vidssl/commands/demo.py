"""``vidssl demo``: the whole pipeline on synthetic data in minutes on a laptop CPU."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.epilog = (
        "Synthesises motion-defined action videos, extracts Farneback flow, pre-trains InfoNCE "
        "on RGB and on flow, then CoCLR, ViCC (single then cross stream) and PCL (RGB), "
        "evaluates retrieval R@k and a linear probe for random init vs each method (rgb, flow, "
        "rgb+flow), prints the table and writes report.md, summary.json and the plots into the "
        "run directory. Re-running continues an interrupted run (and runs methods added with "
        "--methods). --seeds 0,1,2 runs each seed in DIR/seed_K and writes mean ± std (and "
        "differences to InfoNCE paired by seed) to DIR/seeds.md and seeds.json; --rgb-input raw "
        "trains and evaluates the RGB stream on raw frames instead of residual clips."
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="run directory (default runs/demo, runs/demo_quick with --quick; _seedK for K != 0)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller run (under 3 minutes on 2 CPU cores)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    parser.add_argument(
        "--seeds",
        metavar="K,K",
        default=None,
        help="run every seed (DIR/seed_K) and write mean ± std to DIR/seeds.md and seeds.json",
    )
    parser.add_argument(
        "--rgb-input",
        choices=("residual", "raw"),
        default="residual",
        help="RGB stream as residual clips (default, frame differences) or raw frames",
    )
    parser.add_argument(
        "--methods",
        metavar="M,M",
        default=None,
        help="methods to run after InfoNCE, from infonce,coclr,vicc,pcl,vcp (default: all but vcp; "
        "with --quick: infonce,coclr, the subset that fits in 3 minutes)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="W",
        help="processes for data synthesis and flow (default 2); results do not depend on it",
    )


def run(args: argparse.Namespace) -> int:
    """Runs or continues the demo; returns 0."""
    from vidssl.demo.run import demo_settings, run_demo
    from vidssl.errors import UserError

    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: expected 1 or more")
    methods = None if args.methods is None else tuple(m for m in args.methods.split(",") if m)

    def settings_for(seed: int) -> Any:
        return demo_settings(
            quick=args.quick, seed=seed, workers=args.workers, methods=methods,
            rgb_input=args.rgb_input,
        )  # fmt: skip

    out = args.out
    if out is None:
        out = "runs/demo_quick" if args.quick else "runs/demo"
        out += "_raw" if args.rgb_input == "raw" else ""
        out += "_seeds" if args.seeds else (f"_seed{args.seed}" if args.seed else "")
    if args.seeds is not None:
        from vidssl.demo.seeds import parse_seeds, run_seeds

        run_seeds(Path(out), parse_seeds(args.seeds), settings_for)
        return 0
    run_demo(out, settings_for(args.seed))
    return 0
