"""``vidssl demo``: synthetic data → flow → InfoNCE on RGB and flow → evaluation → plots.

`run_demo(out, settings)` runs the stages in order, each skipped when its outputs exist (so a
re-run continues; pre-training resumes from its last checkpoint):

1. ``data/``: `vidssl.data.synthetic.dataset.make_synthetic_dataset` (motion defines the classes);
2. ``data/flow/``: Farneback flow JPEGs (`vidssl.data.flow.dataset.extract_flow_dataset`);
3. ``random_{rgb,flow}/encoder/``: the backbones as built before training (random init);
4. ``infonce_{rgb,flow}/``: InfoNCE pre-training (``vidssl pretrain infonce/tiny`` with the
   demo's sizes), exported encoder in ``encoder/``;
5. ``eval.json``: retrieval R@k and linear top-1 of every init on rgb, flow and rgb+flow
   (`vidssl.demo.evaluate`);
6. plots and ``summary.json`` (`vidssl.demo.report`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidssl.errors import UserError
from vidssl.utils.io import atomic_write_text

__all__ = ["DemoSettings", "demo_settings", "run_demo"]

logger = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
STREAMS = ("rgb", "flow")


@dataclass(frozen=True)
class DemoSettings:
    """Every size the demo uses (data, backbone, pre-training, evaluation)."""

    classes: int = 10
    # 10 groups of 3 siblings per class, 3 of them test groups: 30 independent test sources
    # (siblings are near-duplicates, so with 12 videos the R@1 of 30 queries rested on 10).
    videos_per_class: int = 30
    frames: int = 64
    size: int = 64
    # R3D-10 at width 1/4 (16-channel stem) costs about what R3D-18 at width 1/8 (8 channels)
    # did, and InfoNCE on flow beats random init with it; with the 8-channel R3D-18 it did not.
    backbone: str = "r3d_10"
    width_mult: float = 0.25
    seq_len: int = 8
    ds: int = 2
    img_size: int = 32
    batch_size: int = 8
    queue_size: int = 128
    lr: float = 1e-3
    momentum: float = 0.99
    # The queue holds more keys than one epoch of train videos: mask a video's own (and its
    # same-source siblings') older keys out of its negatives (InfoNCE method.mask_siblings).
    mask_siblings: bool = True
    rgb_augmentation: str = "base"
    # The RGB stream is fed as residual clips (frame differences, as PCL/VCP do): on raw frames
    # every encoder — even a supervised one — learned each source's colours and background and
    # none beat random init; the differences keep the moving object and drop the static scene.
    rgb_residual: str = "pcl"
    flow_augmentation: str = "null"
    infonce_steps: int = 100
    coclr_steps: int = 100
    vicc_steps: int = 100
    pcl_steps: int = 100
    vcp_steps: int = 100
    #: Methods to run after InfoNCE (`vidssl.demo.stages.METHODS`); InfoNCE always runs.
    methods: tuple[str, ...] = ("infonce", "coclr", "vicc", "pcl")
    eval_clips: int = 4
    eval_crop: int = 64
    linear_epochs: int = 100
    seed: int = 0
    workers: int = 2


# --quick runs the subset that fits in 3 minutes on 2 cores; ViCC and PCL are asked for with
# --methods (or run by the default demo).
QUICK = DemoSettings(infonce_steps=300, coclr_steps=150, methods=("infonce", "coclr"))
DEFAULT = DemoSettings(
    infonce_steps=1000, coclr_steps=400, vicc_steps=200, pcl_steps=300, vcp_steps=300
)


#: ``--rgb-input`` → the RGB stream's residual mode.
RGB_INPUTS = {"residual": "pcl", "raw": "none"}


def demo_settings(
    *,
    quick: bool = False,
    seed: int = 0,
    workers: int = 2,
    methods: tuple[str, ...] | None = None,
    rgb_input: str = "residual",
) -> DemoSettings:
    """The quick or default settings with ``seed``, ``workers``, ``rgb_input`` and ``methods``.

    Raises:
        UserError: an unknown method or RGB input.
    """
    from vidssl.demo.stages import check_methods

    if rgb_input not in RGB_INPUTS:
        raise UserError(f"--rgb-input {rgb_input}: expected one of {', '.join(RGB_INPUTS)}")
    base = QUICK if quick else DEFAULT
    chosen = check_methods(tuple(methods) if methods is not None else base.methods)
    return dataclasses.replace(
        base, seed=seed, workers=workers, methods=chosen, rgb_residual=RGB_INPUTS[rgb_input]
    )


class Progress:
    """Prints one line per stage with the elapsed time, and keeps each stage's duration."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}
        self._stage: tuple[str, float] | None = None

    def stage(self, name: str, message: str) -> None:
        """Starts stage ``name`` (ends the previous one)."""
        self.end()
        self._stage = (name, time.perf_counter())
        print(f"[demo {time.perf_counter() - self.start:6.1f} s] {message}", flush=True)

    def end(self) -> None:
        """Ends the current stage and records its duration."""
        if self._stage is not None:
            name, began = self._stage
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - began, 2)
            self._stage = None

    def total(self) -> float:
        """Seconds since the demo started."""
        return time.perf_counter() - self.start


def _check_settings(out: Path, settings: DemoSettings) -> None:
    path = out / SETTINGS_FILE
    # The methods may grow between runs (each method's stages live in their own folders), and a
    # setting the folder's file does not name is newer than the run: no stage used it.
    ignored = ("workers", "methods")
    wanted = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ignored}
    if path.is_file():
        found = json.loads(path.read_text())
        diff = sorted(k for k, v in wanted.items() if k in found and found[k] != v)
        if diff:
            raise UserError(
                f"{out} holds a demo run with other settings ({', '.join(diff)}); "
                "expected an empty folder or one made with the same --quick/--seed"
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(dataclasses.asdict(settings), indent=1))


def pretrain_overrides(s: DemoSettings, data_root: Path, stream: str, run_dir: Path) -> list[str]:
    """``infonce/tiny`` overrides for the demo's InfoNCE run on ``stream``."""
    if stream == "flow":
        media = [f"data.media={data_root / 'flow'}", "data.modality=flow"]
    else:
        media = [f"data.residual={s.rgb_residual}"]
    return [
        f"data.root={data_root}",
        *media,
        f'data.augmentation="{s.flow_augmentation if stream == "flow" else s.rgb_augmentation}"',
        f"data.seq_len={s.seq_len}",
        f"data.ds={s.ds}",
        f"data.img_size={s.img_size}",
        # the demo's recipe was measured with the retrying crop; CoCLR's single draw (the
        # reference presets' default since issue 11) lowered InfoNCE rgb R@1 31.1 → 27.8 here
        "data.crop_draw=retry",
        f"data.batch_size={s.batch_size}",
        f"data.workers={min(s.workers, 1)}",
        "data.persistent_workers=false",
        f"model.backbone={s.backbone}",
        f"model.width_mult={s.width_mult}",
        f"method.queue_size={s.queue_size}",
        f"optim.lr={s.lr}",
        f"method.momentum={s.momentum}",
        f"method.mask_siblings={str(s.mask_siblings).lower()}",
        "schedule.name=cosine",
        f"trainer.epochs={epochs_for(s.infonce_steps, data_root, s.batch_size)}",
        f"trainer.max_steps={s.infonce_steps}",
        f"trainer.seed={s.seed}",
        f"trainer.run_dir={run_dir}",
        "trainer.progress_bar_refresh=0",
        "trainer.log_every_n_steps=5",
        "trainer.checkpoint_every_n_steps=50",
        "trainer.checkpoint_every_n_epochs=0",
    ]


def epochs_for(steps: int, data_root: Path, batch_size: int) -> int:
    """Epochs that cover ``steps`` (the cosine schedule's horizon) on the train split."""
    train_list = data_root / "ucfTrainTestlist" / "trainlist01.txt"
    lines = train_list.read_text().splitlines() if train_list.is_file() else []
    n_train = sum(1 for line in lines if line.strip()) or batch_size
    return -(-steps // max(1, n_train // batch_size))


def _trained(run_dir: Path, steps: int) -> bool:
    info = run_dir / "encoder" / "encoder.json"
    if not info.is_file():
        return False
    return json.loads(info.read_text()).get("source", {}).get("global_step") == steps


def _pretrain(preset: str, overrides: list[str], run_dir: Path, steps: int) -> None:
    from vidssl.methods.registry import load_config
    from vidssl.train.pretraining import run_pretraining

    if _trained(run_dir, steps):
        return
    cfg = load_config(preset, overrides)
    print(run_pretraining(cfg, source=preset).summary(cfg.method.name), flush=True)


def export_random_init(preset: str, overrides: list[str], out_dir: Path, modality: str) -> None:
    """Exports the backbone exactly as pre-training builds it (same config and seed)."""
    if (out_dir / "encoder.json").is_file():
        return
    from vidssl.methods.registry import build_method, load_config
    from vidssl.models.checkpoints.export import export_encoder
    from vidssl.train.pretraining import trained_residual

    cfg = load_config(preset, overrides)
    method = build_method(cfg)
    d = cfg.data
    export_encoder(
        method.backbone,
        out_dir,
        modality=modality,
        normalization="imagenet",
        input_size=(d.seq_len, d.img_size, d.img_size),
        residual=trained_residual(cfg),
        source={"method": "random_init", "config": preset, "seed": cfg.trainer.seed},
    )


def _make_data(s: DemoSettings, root: Path, progress: Progress) -> None:
    from vidssl.data.flow.dataset import extract_flow_dataset
    from vidssl.data.synthetic import make_synthetic_dataset

    progress.stage("synth", f"synthesising {s.classes} classes x {s.videos_per_class} videos")
    summary = make_synthetic_dataset(
        root,
        classes=s.classes,
        videos_per_class=s.videos_per_class,
        frames=s.frames,
        size=s.size,
        seed=s.seed,
        workers=s.workers,
    )
    progress.stage("flow", f"extracting Farneback flow of {len(summary['videos'])} videos")
    flow = extract_flow_dataset(
        root / "UCF-101",
        root / "flow",
        source_kind="videos",
        method="farneback",
        workers=s.workers,
        progress=False,
    )
    if flow.failed:
        raise UserError(f"flow extraction failed for {len(flow.failed)} videos under {root}")


#: summary init name → run folder prefix (``<prefix>_<stream>/encoder``).
INIT_DIRS = {
    "random": "random",
    "pretrained": "infonce",
    "coclr": "coclr",
    "vicc": "vicc_cross",
    "pcl": "pcl",
    "vcp": "vcp",
}


def _encoders(out: Path, stream: str, inits: list[str]) -> dict[str, Path]:
    from vidssl.demo.stages import RGB_ONLY

    return {
        init: out / f"{INIT_DIRS[init]}_{stream}" / "encoder"
        for init in inits
        if stream == "rgb" or init not in RGB_ONLY
    }


def _evaluate(s: DemoSettings, out: Path, inits: list[str]) -> dict[str, Any]:
    import torch

    from vidssl.data.catalogs import align, load
    from vidssl.demo.evaluate import ClipSettings, evaluate_inits, stream_features
    from vidssl.eval.config import LinearSettings

    torch.manual_seed(s.seed)
    root = out / "data"
    tables = {}
    for split in ("train", "test"):
        rgb = load("ucf101", root, split)
        tables[split] = align(rgb, load("ucf101", root, split, media=root / "flow"))
    clips = ClipSettings(s.eval_clips, s.seq_len, s.ds, s.img_size, s.eval_crop)
    feats = {
        stream: stream_features(
            _encoders(out, stream, inits),
            (tables["train"][i], tables["test"][i]),
            clips,
            modality=stream,
        )
        for i, stream in enumerate(STREAMS)
    }
    linear = LinearSettings(epochs=s.linear_epochs, milestones=[60, 80], batch_size=64)
    results, sims = evaluate_inits(feats["rgb"], feats["flow"], linear, seed=s.seed)
    tables_rgb = (tables["train"][0], tables["test"][0])
    return {"results": results, "retrieval": sims, "tables": tables_rgb}


def run_demo(out: str | Path, settings: DemoSettings) -> dict[str, Any]:
    """Runs (or continues) the demo in ``out``; returns the summary written to summary.json.

    Raises:
        UserError: ``out`` holds a demo made with other settings, or a stage failed on bad data.
    """
    import os

    import torch

    from vidssl.demo.report import (
        diagnostic_means,
        print_table,
        write_plots,
        write_report,
        write_summary,
    )
    from vidssl.demo.stages import method_stages

    out = Path(out)
    s = settings
    _check_settings(out, s)
    # Training runs with one data-loader worker: leave it a core, or both processes' thread pools
    # contend for the same cores (--quick on 2 cores: 175 s with 2 threads; 152-159 s with one,
    # even with a benchmark running alongside).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    progress = Progress()
    root = out / "data"
    _make_data(s, root, progress)
    inits = ["random", "pretrained"]
    runs = {}
    for stream in STREAMS:
        run_dir = out / f"infonce_{stream}"
        overrides = pretrain_overrides(s, root, stream, run_dir)
        progress.stage("random_init", f"exporting the random-init {stream} encoder")
        export_random_init("infonce/tiny", overrides, out / f"random_{stream}" / "encoder", stream)
        progress.stage(
            f"infonce_{stream}", f"InfoNCE on {stream}: {s.infonce_steps} steps -> {run_dir}"
        )
        _pretrain("infonce/tiny", overrides, run_dir, s.infonce_steps)
        runs[f"InfoNCE {stream}"] = run_dir
    for stage in method_stages(s, out):
        run_dir = out / stage.key
        progress.stage(stage.key, f"{stage.label}: {stage.steps} steps -> {run_dir}")
        _pretrain(stage.preset, list(stage.overrides), run_dir, stage.steps)
        runs[stage.label] = run_dir
    inits += [init for init in ("coclr", "vicc", "pcl", "vcp") if init in s.methods]
    progress.stage("eval", f"evaluating {', '.join(inits)} on rgb, flow and rgb+flow")
    evaluation = _evaluate(s, out, inits)
    progress.stage("report", "writing plots and summary.json")
    plots = write_plots(out, evaluation, runs, chance=1.0 / s.classes)
    progress.end()
    summary = write_summary(out, evaluation["results"], s, progress, plots, diagnostic_means(runs))
    write_report(out, summary)
    print_table(summary)
    print(f"[demo {progress.total():6.1f} s] done: {out / 'summary.json'}", flush=True)
    return summary
