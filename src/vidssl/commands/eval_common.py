"""Options shared by ``vidssl eval retrieval|linear|finetune`` (not a command itself).

Every option becomes a ``key=value`` override of the eval preset (``--preset``), so a flag and
``--set`` behave the same and the resolved settings land in the result JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

# flag dest -> config key
_DATA_FLAGS = {
    "dataset": "data.dataset",
    "root": "data.root",
    "media": "data.media",
    "flow_media": "data.flow_media",
    "split_id": "data.split_id",
    "seq_len": "data.seq_len",
    "ds": "data.ds",
    "img_size": "data.img_size",
    "crop_size": "data.crop_size",
    "batch_size": "data.batch_size",
    "workers": "data.workers",
    "device": "runtime.device",
    "seed": "runtime.seed",
    "out": "runtime.out",
}


def add_common_arguments(parser: argparse.ArgumentParser, default_preset: str) -> None:
    """Adds encoder, dataset, clip and runtime options."""
    model = parser.add_argument_group("encoder (one of --encoder / --checkpoint)")
    model.add_argument("--encoder", metavar="DIR", help="our export (encoder.safetensors + .json)")
    model.add_argument("--checkpoint", metavar="FILE", help="a foreign checkpoint")
    model.add_argument("--method", help="method that wrote --checkpoint: coclr, vicc, pcl, ...")
    model.add_argument("--arch", help="architecture of --checkpoint (default: inferred)")
    model.add_argument(
        "--trust-checkpoint", action="store_true", help="allow unpickling (trusted files only)"
    )
    model.add_argument("--flow-encoder", metavar="DIR", help="flow export for two-stream fusion")
    model.add_argument("--flow-checkpoint", metavar="FILE", help="foreign flow checkpoint")
    data = parser.add_argument_group("data and clips (override the preset)")
    data.add_argument(
        "--preset",
        default=default_preset,
        help=f"eval preset or YAML file (default {default_preset}; tiny for toy data)",
    )
    data.add_argument("--dataset", help="catalog name: ucf101, hmdb51, kinetics400, csv, ...")
    data.add_argument("--root", help="dataset root (split / annotation files)")
    data.add_argument("--media", help="videos, frame folders or LMDB (default per dataset)")
    data.add_argument("--flow-media", help="flow frames or flow LMDB (with a flow encoder)")
    data.add_argument("--split-id", type=int, help="official split number (default 1)")
    data.add_argument("--seq-len", type=int, help="frames per clip")
    data.add_argument("--ds", type=int, help="temporal stride between frames")
    data.add_argument("--img-size", type=int, help="clip height/width fed to the encoder")
    data.add_argument("--crop-size", type=int, help="centre/corner crop of the raw frame")
    data.add_argument("--batch-size", type=int, help="videos per batch")
    data.add_argument("--workers", type=int, help="DataLoader worker processes")
    run = parser.add_argument_group("runtime")
    run.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    run.add_argument("--seed", type=int, help="seed of random clips and training")
    run.add_argument("--out", help="output directory for the JSON / markdown results")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any eval setting, e.g. linear.epochs=10 (repeatable)",
    )


def overrides_from(args: argparse.Namespace, extra: dict[str, str] | None = None) -> list[str]:
    """The ``key=value`` overrides the flags ask for (``--set`` last, so it wins)."""
    flags = {**_DATA_FLAGS, **(extra or {})}
    out = [f"{key}={getattr(args, dest)}" for dest, key in flags.items()
           if getattr(args, dest, None) is not None]  # fmt: skip
    return out + list(args.set)


def load_encoders(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(rgb encoder, flow encoder or None)`` from the encoder flags."""
    from vidssl.errors import UserError
    from vidssl.eval.encoders import load_eval_encoder

    encoder = load_eval_encoder(
        args.encoder,
        checkpoint=args.checkpoint,
        method=args.method,
        arch=args.arch,
        trust=args.trust_checkpoint,
    )
    if args.flow_encoder is not None and args.flow_checkpoint is not None:
        raise UserError("give at most one of --flow-encoder and --flow-checkpoint")
    flow = None
    if args.flow_encoder is not None or args.flow_checkpoint is not None:
        flow = load_eval_encoder(
            args.flow_encoder,
            checkpoint=args.flow_checkpoint,
            method=args.method,
            trust=args.trust_checkpoint,
            modality="flow",
        )
    return encoder, flow


def print_results(record: dict[str, Any]) -> None:
    """Prints one line per stream and the written files."""
    for stream, values in record["results"].items():
        shown = ", ".join(
            f"{k} {100 * v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
        )
        print(f"{record['task']} {stream}: {shown}")
    if record["skipped"]["count"]:
        print(f"skipped {record['skipped']['count']} unreadable videos (listed in the JSON)")
    print(f"wrote {record['files']['json']} and {record['files']['markdown']}")


def run_eval(
    args: argparse.Namespace, runner: Callable[..., dict[str, Any]], extra: dict[str, str]
) -> int:
    """The body of every ``vidssl eval`` command; returns 0.

    Resolves the settings first (so a bad setting fails before any weights are read), loads the
    encoders, runs ``runner(encoder, cfg, flow_encoder=flow)`` and prints its record.

    Args:
        args: The parsed options (`add_common_arguments` plus the command's own).
        runner: `run_retrieval`, `run_linear_probe` or `run_finetune`.
        extra: The command's own ``flag dest -> config key`` overrides.
    """
    from vidssl.eval.config import load_eval_config

    cfg = load_eval_config(args.preset, overrides_from(args, extra))
    encoder, flow = load_encoders(args)
    print_results(runner(encoder, cfg, flow_encoder=flow))
    return 0
