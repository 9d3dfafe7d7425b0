"""``vidssl downstream charades``: SEVERE Charades multi-label classification (mAP).

Builds the config from a preset (``--preset``: ``reference`` = the init's SEVERE config, ``seed1``
… ``seed3``, or ``tiny``) plus ``key=value`` overrides, loads the initialisation strictly
(`vidssl.models.checkpoints.load_foreign`, report printed and saved as ``init_report.json``),
trains on the Lightning engine (resumable), recomputes BatchNorm statistics, evaluates 10 × 3
views per test video with a max-ensemble and writes ``results.json`` / ``results.md``.
"""

from __future__ import annotations

import argparse

from vidssl.commands.downstream_common import add_common_arguments, init_overrides, run_task


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.epilog = (
        "Examples: vidssl downstream charades --init supervised --checkpoint r2plus1d_18-91a641e6"
        ".pth data.root=data/charades; vidssl downstream charades --init scratch --preset tiny "
        "data.root=data/synth_charades trainer.run_dir=runs/tiny. Outputs in trainer.run_dir: "
        "init_report.json, checkpoints/, metrics.csv, config.yaml, results.json, results.md, "
        "per_class_ap.csv. Re-running the same command resumes an interrupted run."
    )
    add_common_arguments(
        parser, ("reference", "seed1", "seed2", "seed3", "tiny"),
        "reference = SEVERE's config for --init (seed 0); seedK its seed files; tiny = CPU",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Runs the task and prints the mAP line; returns 0."""
    from vidssl.downstream.charades.presets import load_charades_config
    from vidssl.downstream.charades.task import CharadesTask

    name = "charades/tiny" if args.preset == "tiny" else f"charades/{args.init}"
    if args.preset.startswith("seed"):
        name += f"_{args.preset}"
    cfg = load_charades_config(name, init_overrides(args), init=args.init)
    record = run_task(CharadesTask(), cfg, args)
    if record is None:
        return 0
    print(
        f"charades ({cfg.method.init}): mAP {100 * record['mAP']:.2f} over "
        f"{record['results']['classes_evaluated']} classes, {record['dataset']['test_videos']} "
        f"test videos; results in {cfg.trainer.run_dir}/results.json"
    )
    return 0
