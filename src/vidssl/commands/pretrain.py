"""``vidssl pretrain PRESET|CONFIG.yaml [key=value ...]``: self-supervised pre-training.

Loads the config, builds the dataset (`vidssl.data.dataset_builder.build_pretrain_dataset`) and
the method (`vidssl.methods.registry.build_method`), trains with `vidssl.train.engine.fit` (resuming
per
``trainer.resume``), then exports the query encoder's backbone to ``<run_dir>/encoder/``
(``encoder.safetensors`` + ``encoder.json``, loadable with `vidssl.models.load_encoder`) and
prints a one-line summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.epilog = (
        "Examples: vidssl pretrain infonce/tiny data.root=data/synth; vidssl pretrain "
        "infonce/ucf101_rgb data.root=data/ucf101 trainer.devices=2. Outputs in trainer.run_dir: "
        "checkpoints/ (last.ckpt, epoch_NNNN.ckpt), metrics.csv, config.yaml, env.json, encoder/. "
        "A schedule preset (coclr/ucf101_schedule) runs all its stages, each in its own "
        "sub-directory, and prints retrieval R@k per stage; re-running it continues."
    )
    parser.add_argument("config", metavar="PRESET", help="preset name (infonce/tiny) or YAML path")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides (optim.lr=0.01)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def _run_schedule(args: argparse.Namespace) -> int:
    from vidssl.train.schedule import (
        format_final_table,
        format_table,
        load_schedule,
        plan_stages,
        run_schedule,
        split_overrides,
    )

    if args.dry_run:
        spec = load_schedule(args.config)
        names = sorted({s.name for s in (*spec.seed, *spec.cycle)})
        settings, _, _ = split_overrides(args.overrides, names)
        root = Path(settings.get("trainer.run_dir", spec.run_dir))
        for stage in plan_stages(spec, root):
            seeds = ", ".join(str(p) for p in stage.pretrain_dirs) or "-"
            print(f"{stage.index:2d} {stage.label}: {stage.spec.preset} ({stage.spec.stream}) "
                  f"in {stage.directory}; pretrain: {seeds}")  # fmt: skip
        return 0
    records = run_schedule(args.config, args.overrides)
    print(format_table(records))
    if records:  # the final RGB / flow / R+F retrieval, when the schedule evaluated one
        summary = Path(records[-1].directory).parent / "schedule.json"
        final = json.loads(summary.read_text()).get("final") if summary.is_file() else None
        if final:
            print("\n" + format_final_table(final))
    return 0


def run(args: argparse.Namespace) -> int:
    """Trains, exports the encoder and prints the summary; returns 0."""
    import yaml

    from vidssl.methods.registry import load_config
    from vidssl.train.pretraining import run_pretraining
    from vidssl.train.schedule import is_schedule

    if is_schedule(args.config):
        return _run_schedule(args)
    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None), end="")
        return 0
    result = run_pretraining(cfg, source=str(args.config))
    if result.encoder_dir is not None:
        print(result.summary(cfg.method.name))
    return 0
