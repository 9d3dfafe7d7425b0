"""``vidssl downstream ava``: SEVERE AVA v2.2 spatio-temporal action detection (frame-mAP@0.5).

Builds the config from a preset (``--preset reference`` = the init's SEVERE config in
``config/presets/downstream/ava/``, or ``tiny`` for CPU runs on synthetic AVA) plus ``key=value``
overrides, loads the initialisation strictly (report printed and saved as ``init_report.json``),
trains the RoI detector on the Lightning engine (resumable), predicts every detected box of the
val videos (full frame) and scores them against the full GT: ``results.json`` (key ``mAP``),
``results.md``, ``per_class_ap.csv``, ``detections.csv``.
"""

from __future__ import annotations

import argparse

from vidssl.commands.downstream_common import add_common_arguments, init_overrides, run_task


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.epilog = (
        "Examples: vidssl downstream ava --init supervised --checkpoint r2plus1d_18-91a641e6.pth "
        "data.root=data/ava; vidssl data synth --task ava --out data/synth_ava && vidssl "
        "downstream ava --init scratch --preset tiny data.root=data/synth_ava "
        "trainer.run_dir=runs/ava_tiny. Outputs in trainer.run_dir: init_report.json, "
        "checkpoints/, metrics.csv, config.yaml, results.json, results.md, per_class_ap.csv, "
        "detections.csv. Re-running the same command resumes an interrupted run."
    )
    add_common_arguments(
        parser, ("reference", "tiny"),
        "reference = SEVERE's AVA config for --init; tiny = a CPU run on synthetic AVA",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Runs the task and prints the mAP line; returns 0."""
    from vidssl.downstream.ava.task import AvaTask, load_ava_config

    preset = "tiny" if args.preset == "tiny" else args.init.replace("vidssl", "scratch")
    cfg = load_ava_config(preset, init_overrides(args), init=args.init)
    record = run_task(AvaTask(), cfg, args)
    if record is not None:
        results = record["results"]
        print(
            f"ava ({cfg.method.init}): frame-mAP@0.5 {100 * record['mAP']:.2f} over "
            f"{results['classes_evaluated']} classes, {results['keyframes']} keyframes of "
            f"{record['dataset']['test_videos']} videos; results in "
            f"{cfg.trainer.run_dir}/results.json"
        )
    return 0
