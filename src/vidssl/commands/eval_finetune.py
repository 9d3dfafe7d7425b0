"""``vidssl eval finetune``: end-to-end fine-tuning, then centre / 5-crop / 10-crop testing.

Examples::

    vidssl eval finetune --encoder enc/coclr_rgb --root data/ucf101             # CoCLR recipe
    vidssl eval finetune --encoder enc/vicc_rgb --root data/ucf101 --preset vicc_finetune
"""

from __future__ import annotations

import argparse

from vidssl.commands.eval_common import add_common_arguments, run_eval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options."""
    add_common_arguments(parser, "coclr_finetune")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (preset: 500)")
    parser.add_argument("--crops", choices=("center", "five", "ten"), help="test crops (ten)")


def run(args: argparse.Namespace) -> int:
    """Fine-tunes and tests, prints the accuracies, writes finetune.json / finetune.md."""
    from vidssl.eval.finetune import run_finetune

    return run_eval(args, run_finetune, {"epochs": "finetune.epochs", "crops": "finetune.crops"})
