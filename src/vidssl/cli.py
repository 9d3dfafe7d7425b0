"""The ``vidssl`` command line.

Each sub-command lives in its own module under ``vidssl.commands`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import heavy libraries (torch,
lightning, av) inside ``run`` so that ``vidssl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence

from vidssl import __version__
from vidssl.errors import UserError

# command name -> (module under vidssl.commands, one-line help). Groups map to nested tables.
COMMANDS: dict[str, tuple[str, str] | dict[str, tuple[str, str]]] = {
    "data": {
        "synth": ("data_synth", "write a synthetic action dataset (UCF101 or Charades layout)"),
        "frames": ("data_frames", "decode videos into JPEG frame folders"),
        "flow": ("data_flow", "extract TV-L1 / Farneback optical flow as CoCLR-style JPEGs"),
        "lmdb": ("data_lmdb", "pack frame folders into a CoCLR-compatible LMDB"),
        "check": ("data_check", "list unreadable, empty or too-short videos (exit 1 if any)"),
        "charades": ("data_charades", "Charades videos -> 24 fps JPEG frames + frame lists"),
    },
    "pretrain": ("pretrain", "self-supervised pre-training from a preset or YAML config"),
    "eval": {
        "retrieval": ("eval_retrieval", "nearest-neighbour video retrieval R@k"),
        "linear": ("eval_linear", "linear probe on a frozen backbone"),
        "finetune": ("eval_finetune", "end-to-end fine-tuning and multi-crop testing"),
    },
    "downstream": {
        "charades": ("downstream_charades", "Charades multi-label classification (mAP)"),
        "ava": ("downstream_ava", "AVA spatio-temporal action detection (frame-mAP@0.5)"),
    },
    "convert": ("convert", "convert a foreign checkpoint into encoder.safetensors + encoder.json"),
    "demo": ("demo", "synthesise data, pre-train, evaluate and plot, end to end"),
    "bench": {
        "loader": ("bench_loader", "data loader throughput vs reference-style loaders"),
        "backbone": ("bench_backbone", "backbone forward+backward throughput and memory"),
        "train": ("bench_train", "one InfoNCE step: vidssl vs a bare PyTorch loop"),
        "flow": ("bench_flow", "optical-flow extraction throughput"),
        "decode": ("bench_decode", "video clip read time and exactness: vidssl, decord, PyAV"),
        "retrieval": ("bench_retrieval", "chunked retrieval throughput and memory"),
        "reliability": ("bench_reliability", "fault injection: corrupt data, kills, signals"),
    },
}


def _available(module: str) -> bool:
    return importlib.util.find_spec(f"vidssl.commands.{module}") is not None


def _add_command(
    subparsers: argparse._SubParsersAction, name: str, module: str, help_: str
) -> None:
    parser = subparsers.add_parser(name, help=help_, description=help_)
    command = importlib.import_module(f"vidssl.commands.{module}")
    command.add_arguments(parser)
    parser.set_defaults(_run=command.run)


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser with every sub-command that is implemented."""
    parser = argparse.ArgumentParser(
        prog="vidssl", description="Self-supervised video representation learning."
    )
    parser.add_argument("--version", action="version", version=f"vidssl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, entry in COMMANDS.items():
        if isinstance(entry, tuple):
            if _available(entry[0]):
                _add_command(subparsers, name, *entry)
            continue
        present = {sub: spec for sub, spec in entry.items() if _available(spec[0])}
        if not present:
            continue
        group = subparsers.add_parser(name, help=f"{name} commands: {', '.join(present)}")
        group_sub = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
        group.set_defaults(_group=group)
        for sub, (module, help_) in present.items():
            _add_command(group_sub, sub, module, help_)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the process exit code (2 for user errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not hasattr(args, "_run"):
        (getattr(args, "_group", None) or parser).print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as error:
        print(f"vidssl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidssl: interrupted", file=sys.stderr)
        return 130
