"""``vidssl eval retrieval``: nearest-neighbour retrieval R@k (test queries vs train gallery).

Examples::

    vidssl eval retrieval --encoder enc/coclr_rgb --root data/ucf101
    vidssl eval retrieval --checkpoint CoCLR-ucf101-rgb.pth.tar --method coclr --root data/ucf101
    vidssl eval retrieval --encoder enc/pcl --preset pcl_retrieval --root data/ucf101
    vidssl eval retrieval --encoder enc/rgb --flow-encoder enc/flow --flow-media data/flow ...
"""

from __future__ import annotations

import argparse

from vidssl.commands.eval_common import (
    add_common_arguments,
    load_encoders,
    overrides_from,
    print_results,
)


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

    overrides = overrides_from(args, {"protocol": "retrieval.protocol"})
    from vidssl.eval.config import load_eval_config

    cfg = load_eval_config(args.preset, overrides)  # bad settings fail before loading weights
    encoder, flow = load_encoders(args)
    print_results(run_retrieval(encoder, cfg, flow_encoder=flow))
    return 0
