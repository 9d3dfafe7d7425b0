"""``vidssl eval retrieval``: nearest-neighbour retrieval R@k (test queries vs train gallery).

Examples::

    vidssl eval retrieval --encoder enc/coclr_rgb --root data/ucf101
    vidssl eval retrieval --checkpoint CoCLR-ucf101-rgb.pth.tar --method coclr --root data/ucf101
    vidssl eval retrieval --encoder enc/pcl --preset pcl_retrieval --root data/ucf101
    vidssl eval retrieval --encoder enc/rgb --flow-encoder enc/flow --flow-media data/flow ...
"""

from __future__ import annotations

import argparse

from vidssl.commands.eval_common import add_common_arguments, run_eval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options."""
    add_common_arguments(parser, "coclr_retrieval")
    parser.add_argument(
        "--protocol",
        choices=("coclr", "full", "pcl"),
        help="coclr: windows vs one random gallery clip; full: windows both sides; pcl: 10 clips",
    )


def run(args: argparse.Namespace) -> int:
    """Runs retrieval, prints R@k, writes retrieval.json / retrieval.md; returns 0."""
    from vidssl.eval.run import run_retrieval

    return run_eval(args, run_retrieval, {"protocol": "retrieval.protocol"})
