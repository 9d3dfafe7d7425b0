"""``vidssl downstream charades``: SEVERE Charades multi-label classification (mAP).

Builds the config from a preset (``--preset``: ``reference`` = the init's SEVERE config, ``seed1``
… ``seed3``, or ``tiny``) plus ``key=value`` overrides, loads the initialisation strictly
(`vidssl.models.checkpoints.load_foreign`, report printed and saved as ``init_report.json``),
trains on the Lightning engine (resumable), recomputes BatchNorm statistics, evaluates 10 × 3
views per test video with a max-ensemble and writes ``results.json`` / ``results.md``.
"""

from __future__ import annotations

import argparse
import os

INIT_CHOICES = (
    "scratch", "supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet",
    "avid_cma", "ctp", "tclr", "gdt", "vidssl",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.epilog = (
        "Examples: vidssl downstream charades --init supervised --checkpoint r2plus1d_18-91a641e6"
        ".pth data.root=data/charades; vidssl downstream charades --init scratch --preset tiny "
        "data.root=data/synth_charades trainer.run_dir=runs/tiny. Outputs in trainer.run_dir: "
        "init_report.json, checkpoints/, metrics.csv, config.yaml, results.json, results.md, "
        "per_class_ap.csv. Re-running the same command resumes an interrupted run."
    )
    parser.add_argument(
        "--init", required=True, choices=INIT_CHOICES,
        help="initialisation: a SEVERE method, or vidssl (an encoder exported by vidssl pretrain)",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint", metavar="CKPT", help="the init's checkpoint (vidssl: the encoder directory)"
    )
    parser.add_argument(
        "--preset",
        default="reference",
        choices=("reference", "seed1", "seed2", "seed3", "tiny"),
        help="reference = SEVERE's config for --init (seed 0); seedK its seed files; tiny = CPU",
    )
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


def run(args: argparse.Namespace) -> int:
    """Runs the task and prints the mAP line; returns 0."""
    import yaml

    from vidssl.downstream.charades.presets import load_charades_config
    from vidssl.downstream.charades.task import CharadesTask
    from vidssl.downstream.trainer import run_downstream

    name = "charades/tiny" if args.preset == "tiny" else f"charades/{args.init}"
    if args.preset.startswith("seed"):
        name += f"_{args.preset}"
    overrides = list(args.overrides)
    if args.checkpoint is not None:
        overrides.append(f"method.checkpoint={args.checkpoint}")
    elif args.init == "scratch" or args.preset == "tiny":
        overrides.append("method.checkpoint=null")
    if args.trust_checkpoint:
        overrides.append("method.trust_checkpoint=true")
    cfg = load_charades_config(name, overrides, init=args.init)
    if args.dry_run:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None), end="")
        return 0
    record = run_downstream(CharadesTask(), cfg, evaluate_only=args.evaluate_only)
    if record is None:
        if int(os.environ.get("RANK", "0")) != 0:
            return 0  # DDP: rank 0 evaluates and reports
        print(f"charades: training not finished in {cfg.trainer.run_dir}; run again to resume")
        return 0
    print(
        f"charades ({cfg.method.init}): mAP {100 * record['mAP']:.2f} over "
        f"{record['results']['classes_evaluated']} classes, {record['dataset']['test_videos']} "
        f"test videos; results in {cfg.trainer.run_dir}/results.json"
    )
    return 0
