"""``vidssl demo``: the whole pipeline on synthetic data in minutes on a laptop CPU."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.epilog = (
        "Synthesises motion-defined action videos, extracts Farneback flow, pre-trains InfoNCE "
        "on RGB and on flow, then CoCLR, ViCC (single then cross stream) and PCL (RGB), "
        "evaluates retrieval R@k and a linear probe for random init vs each method (rgb, flow, "
        "rgb+flow), prints the table and writes report.md, summary.json and the plots into the "
        "run directory. Re-running continues an interrupted run (and runs methods added with "
        "--methods)."
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
        "--methods",
        metavar="M,M",
        default=None,
        help="methods to run after InfoNCE, from infonce,coclr,vicc,pcl (default: all; with "
        "--quick: infonce,coclr, the subset that fits in 3 minutes)",
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
    out = args.out
    if out is None:
        out = "runs/demo_quick" if args.quick else "runs/demo"
        out += f"_seed{args.seed}" if args.seed else ""
    methods = None if args.methods is None else tuple(m for m in args.methods.split(",") if m)
    settings = demo_settings(
        quick=args.quick, seed=args.seed, workers=args.workers, methods=methods
    )
    run_demo(out, settings)
    return 0
