"""``vidssl eval linear``: linear probe (L2 → BN → Linear) on frozen features, top-1/top-5.

Example::

    vidssl eval linear --encoder enc/coclr_rgb --root data/ucf101 --set linear.epochs=100
"""

from __future__ import annotations

import argparse

from vidssl.commands.eval_common import add_common_arguments, run_eval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options."""
    add_common_arguments(parser, "coclr_linear")
    parser.add_argument("--epochs", type=int, help="probe epochs (default 100)")


def run(args: argparse.Namespace) -> int:
    """Trains and tests the probe, prints top-1/top-5, writes linear.json / linear.md."""
    from vidssl.eval.linear import run_linear_probe

    return run_eval(args, run_linear_probe, {"epochs": "linear.epochs"})
