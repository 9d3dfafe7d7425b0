"""What the ``vidssl downstream <task>`` commands share: options, init overrides, running a task.

Each task command adds its ``--preset`` choices and epilog, maps ``--init`` / ``--preset`` to its
preset, and calls `run_task`, which prints the config (``--dry-run``) or trains and evaluates on
the shared trainer (`vidssl.downstream.trainer.run_downstream`).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vidssl.config.schema import Config
    from vidssl.downstream.trainer import DownstreamTask

#: ``--init`` values: the SEVERE initialisations and ``vidssl`` (an exported encoder).
INIT_CHOICES = (
    "scratch", "supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet",
    "avid_cma", "ctp", "tclr", "gdt", "vidssl",
)  # fmt: skip


def add_common_arguments(
    parser: argparse.ArgumentParser, presets: tuple[str, ...], preset_help: str
) -> None:
    """Adds the options every downstream command takes to ``parser``.

    ``--init``, ``--checkpoint``, ``--preset`` (``presets``), ``--trust-checkpoint``,
    ``--evaluate-only``, ``--dry-run`` and the ``key=value`` overrides.
    """
    parser.add_argument(
        "--init", required=True, choices=INIT_CHOICES,
        help="initialisation: a SEVERE method, or vidssl (an encoder exported by vidssl pretrain)",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint", metavar="CKPT", help="the init's checkpoint (vidssl: the encoder directory)"
    )
    parser.add_argument("--preset", default="reference", choices=presets, help=preset_help)
    parser.add_argument(
        "--trust-checkpoint", action="store_true", help="allow arbitrary unpickling of CKPT"
    )
    parser.add_argument(
        "--evaluate-only", action="store_true", help="evaluate the finished run in run_dir"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides (data.root=DIR)"
    )


def init_overrides(args: argparse.Namespace) -> list[str]:
    """The user's overrides plus the checkpoint settings of ``--checkpoint`` / ``--init``.

    Without ``--checkpoint``, scratch and the tiny preset get ``method.checkpoint=null`` (a
    reference preset keeps its checkpoint path).
    """
    overrides = list(args.overrides)
    if args.checkpoint is not None:
        overrides.append(f"method.checkpoint={args.checkpoint}")
    elif args.init == "scratch" or args.preset == "tiny":
        overrides.append("method.checkpoint=null")
    if args.trust_checkpoint:
        overrides.append("method.trust_checkpoint=true")
    return overrides


def run_task(task: DownstreamTask, cfg: Config, args: argparse.Namespace) -> dict[str, Any] | None:
    """Prints the config (``--dry-run``) or runs the task; the record when it was evaluated.

    Returns None after a dry run, on a DDP rank other than 0, and when training stopped early
    (a line says to run again to resume).
    """
    import yaml

    from vidssl.downstream.trainer import run_downstream

    if args.dry_run:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None), end="")
        return None
    record = run_downstream(task, cfg, evaluate_only=args.evaluate_only)
    if record is None and int(os.environ.get("RANK", "0")) == 0:
        print(f"{task.name}: training not finished in {cfg.trainer.run_dir}; run again to resume")
    return record
