"""Charades presets: the 11 SEVERE configs × seeds 0–3, and ``tiny`` for CPU tests.

``charades/<init>`` mirrors ``configs/Charades/VSSL/32x8_112x112_R18_<init>.yaml`` (seed 0),
``charades/<init>_seed{1,2,3}`` its seed files (the reference's ``gdt_seed_3`` says
``RNG_SEED: 2``; here it is seed 3), ``charades/tiny`` a laptop-sized run of any init.
Checkpoint paths default to the reference's ``checkpoints_pretraining/`` layout (severe.md §1).
Configs are validated by `vidssl.methods.registry.config_from_tree` like every training config.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from vidssl.config.parse import merge_trees, parse_overrides
from vidssl.config.schema import Config, _resolve_interpolations
from vidssl.downstream.trainer import INITS
from vidssl.errors import ConfigError

CHECKPOINTS = {
    "scratch": None,
    "supervised": "fully_supervised_kinetics/r2plus1d_18-91a641e6.pth",
    "selavi": "selavi/selavi_kinetics.pth",
    "moco": "moco/checkpoint_0199.pth.tar",
    "video_moco": "video_moco/r2plus1D_checkpoint_0199.pth.tar",
    "pretext_contrast": "pretext_checkpoint/pcl_r2p1d_res_ssl.pt",
    "rspnet": "rspnet/snellius_checkpoint_epoch_200.pth.tar",
    "avid_cma": "avid_cma/avid_cma_ckpt-ep20.pth.tar",
    "ctp": "ctp/snellius_r2p1d18_ctp_k400_epoch_90.pth",
    "tclr": "tclr/rpd18kin400.pth",
    "gdt": "gdt/gdt_K400.pth",
}
SEEDS = (0, 1, 2, 3)

#: ``configs/Charades/VSSL/32x8_112x112_R18_*.yaml`` (severe.md §7), 1 GPU × batch 16.
REFERENCE: dict[str, Any] = {
    "data": {
        "dataset": "charades", "root": "data/charades", "seq_len": 32, "ds": 8,
        "img_size": 112, "batch_size": 16, "workers": 8, "drop_last": True,
    },
    "model": {"backbone": "r2plus1d_18", "width_mult": 1.0},
    "method": {
        "name": "charades", "num_classes": 157, "dropout": 0.5, "reference_batch": 16,
        "precise_bn_batches": 200, "eval_batch_size": 16, "jitter_min": 256, "jitter_max": 340,
        "temporal_views": 10, "spatial_views": 3,
    },
    "optim": {"name": "sgd", "lr": 0.0375, "momentum": 0.9, "nesterov": True,
              "weight_decay": 1e-4},
    "schedule": {"name": "multistep", "milestones": [41, 49], "gamma": 0.1,
                 "warmup_epochs": 4.0, "warmup_start_lr": 1e-4},
    "trainer": {"epochs": 57, "checkpoint_every_n_epochs": 6, "log_every_n_steps": 20},
}  # fmt: skip

#: CPU-sized overrides: 8×2 clips of 32 px, width 1/8, 2 epochs, 2×3 test views.
TINY: dict[str, Any] = {
    "data": {"seq_len": 8, "ds": 2, "img_size": 32, "batch_size": 4, "workers": 0,
             "pin_memory": False, "persistent_workers": False},
    "model": {"width_mult": 0.125},
    "method": {"jitter_min": 36, "jitter_max": 44, "temporal_views": 2, "precise_bn_batches": 2,
               "reference_batch": 4},
    "optim": {"lr": 0.05},
    "schedule": {"milestones": [3], "warmup_epochs": 1.0, "warmup_start_lr": 0.005},
    "trainer": {"epochs": 4, "accelerator": "cpu", "devices": "1", "precision": "32",
                "log_every_n_steps": 1, "progress_bar_refresh": 0,
                "checkpoint_every_n_epochs": 1},
}  # fmt: skip


def preset_names() -> list[str]:
    """``charades/<init>``, ``charades/<init>_seedK`` (K = 1..3) and ``charades/tiny``."""
    names = [f"charades/{init}" + (f"_seed{s}" if s else "") for init in INITS for s in SEEDS]
    return [*names, "charades/tiny"]


def preset_tree(name: str, init: str | None = None) -> dict[str, Any]:
    """The config tree of preset ``name`` (``tiny`` takes ``init``, default scratch)."""
    short = name.removeprefix("charades/")
    tree = copy.deepcopy(REFERENCE)
    if short == "tiny":
        tree = merge_trees(tree, copy.deepcopy(TINY))
        init = (init or "scratch").lower()
        seed = 0
    else:
        base, _, seed_text = short.partition("_seed")
        if base not in (*INITS, "vidssl") or (seed_text and seed_text not in ("1", "2", "3")):
            raise ConfigError(
                f"unknown Charades preset {name!r}; presets: {', '.join(preset_names())}"
            )
        if init is not None and init.lower() != base:
            raise ConfigError(f"preset {name!r} is for init {base!r}, not {init!r}")
        init, seed = base, int(seed_text or 0)
    checkpoint = CHECKPOINTS.get(init)  # vidssl encoders have no reference file
    tree["method"]["init"] = init
    tree["method"]["checkpoint"] = f"checkpoints_pretraining/{checkpoint}" if checkpoint else None
    if init == "tclr":
        tree["model"]["backbone"] = "r2plus1d_18_tclr"
    tree["trainer"]["seed"] = seed
    tree["trainer"]["run_dir"] = f"runs/charades/{short if short != 'tiny' else 'tiny_' + init}"
    return tree


def load_charades_config(
    name: str, overrides: Sequence[str] = (), init: str | None = None
) -> Config:
    """Preset ``name`` (+ ``init`` for tiny) with ``key=value`` overrides, validated."""
    import vidssl.downstream.charades.task  # noqa: F401  (registers method 'charades')
    from vidssl.methods.registry import config_from_tree

    tree = merge_trees(preset_tree(name, init), parse_overrides(list(overrides)))
    return config_from_tree(_resolve_interpolations(tree))
