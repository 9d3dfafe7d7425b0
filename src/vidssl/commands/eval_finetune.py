"""``vidssl eval finetune``: end-to-end fine-tuning, then centre / 5-crop / 10-crop testing.

Examples::

    vidssl eval finetune --encoder enc/coclr_rgb --root data/ucf101             # CoCLR recipe
    vidssl eval finetune --encoder enc/vicc_rgb --root data/ucf101 --preset vicc_finetune
    vidssl eval finetune --encoder enc/pcl --root data/ucf101 --preset pcl_finetune --splits 1,2,3
"""

from __future__ import annotations

import argparse

from vidssl.commands.eval_common import (
    add_common_arguments,
    load_encoders,
    overrides_from,
    print_results,
    run_eval,
)
from vidssl.errors import UserError

_FLAGS = {"epochs": "finetune.epochs", "crops": "finetune.crops"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options."""
    add_common_arguments(parser, "coclr_finetune")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (preset: 500)")
    parser.add_argument("--crops", choices=("center", "five", "ten"), help="test crops (ten)")
    parser.add_argument(
        "--splits",
        metavar="K,K,...",
        help="official splits to run one after the other (e.g. 1,2,3); prints each and the mean",
    )


def parse_splits(text: str) -> list[int]:
    """``"1,2,3"`` → ``[1, 2, 3]`` (`UserError` for anything else)."""
    try:
        splits = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--splits {text!r}: expected comma-separated split numbers") from None
    if not splits or min(splits) < 1 or len(set(splits)) != len(splits):
        raise UserError(f"--splits {text!r}: expected distinct positive split numbers")
    return splits


def run(args: argparse.Namespace) -> int:
    """Fine-tunes and tests, prints the accuracies, writes finetune.json / finetune.md."""
    from vidssl.eval.finetune import run_finetune

    if not args.splits:
        return run_eval(args, run_finetune, _FLAGS)
    from vidssl.eval.config import load_eval_config
    from vidssl.eval.finetune_pcl import run_finetune_splits

    splits = parse_splits(args.splits)
    cfg = load_eval_config(args.preset, overrides_from(args, _FLAGS))
    encoder, flow = load_encoders(args)
    summary = run_finetune_splits(encoder, cfg, splits, flow_encoder=flow)
    for split in splits:
        print(f"split {split}:")
        print_results(summary["records"][split])
    for stream, values in summary["mean"].items():
        shown = ", ".join(f"{k} {100 * v:.2f}" for k, v in values.items())
        print(f"finetune {stream} mean of splits {args.splits}: {shown}")
    print(f"wrote {summary['files']['json']}")
    return 0
