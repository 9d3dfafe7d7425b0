"""Multi-stage pre-training schedules: CoCLR's InfoNCE-RGB → InfoNCE-flow → N alternation cycles.

A schedule is a YAML file whose name ends in ``_schedule`` (``coclr/ucf101_schedule``)::

    kind: schedule
    run_dir: runs/coclr_ucf101            # one sub-directory per stage below it
    cycles: 2
    seed:                                   # run once, in order
      - {name: rgb_infonce, preset: infonce/ucf101_rgb, stream: rgb}
      - {name: flow_infonce, preset: infonce/ucf101_flow, stream: flow}
    cycle:                                  # run `cycles` times, in order
      - {name: rgb_coclr, preset: coclr/ucf101_rgb, stream: rgb, pretrain: [rgb, flow]}
      - {name: flow_coclr, preset: coclr/ucf101_flow, stream: flow, pretrain: [flow, rgb]}
    evaluation: {preset: coclr_retrieval, overrides: []}   # retrieval after every stage

A stage may say ``take_epoch: N``: it then trains only the first N epochs of its preset's
``trainer.epochs`` (cosine laid out over the full length, ``schedule.horizon_epochs``), the
weights a later stage starts from (ViCC's slurm scripts: epoch 300 of a 500-epoch cosine).

``pretrain: [A, B]`` names streams: each becomes the run directory of the newest finished stage
of that stream (``method.pretrain`` of the CoCLR presets). Every stage is an ordinary resumable
run (``trainer.resume=auto``) in ``<run_dir>/<NN>_<label>/``; a finished stage writes
``stage.json`` and is skipped when the schedule runs again, so re-running the command after an
interruption continues at the interrupted stage (from its last checkpoint).

When every stage is evaluated, the newest RGB and flow encoders are also evaluated together at
the end (RGB, flow and R+F: summed cosine similarities), in ``<run_dir>/final_eval/``, written to
``final.md`` and ``schedule.json["final"]``.

Overrides given on the command line go to every stage, except ``trainer.run_dir`` (the schedule
root), ``cycles=N`` and ``evaluate=false`` (schedule settings) and ``<stage name>.<key>=value``
(only that stage, e.g. ``rgb_coclr.method.topk=3``). For single-stream flow stages a
``data.flow_media=DIR`` override becomes their ``data.media`` and a ``data.media`` override
(the RGB media) is left out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidssl.errors import ConfigError
from vidssl.utils.io import atomic_write_text

log = logging.getLogger(__name__)

SCHEDULE_SUFFIX = "_schedule"
STREAMS = ("rgb", "flow")
_STAGE_KEYS = {"name", "preset", "stream", "pretrain", "overrides", "take_epoch"}
_TOP_KEYS = {"kind", "run_dir", "cycles", "seed", "cycle", "evaluation"}


@dataclass(frozen=True)
class StageSpec:
    """One kind of stage: a training preset for one stream, optionally seeded by others."""

    name: str
    preset: str
    stream: str
    pretrain: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    take_epoch: int = 0


@dataclass(frozen=True)
class ScheduleSpec:
    """A parsed schedule file."""

    source: str
    run_dir: str
    cycles: int
    seed: tuple[StageSpec, ...]
    cycle: tuple[StageSpec, ...]
    eval_preset: str | None = None
    eval_overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedStage:
    """One stage of a concrete run: where it lives and what it is seeded from."""

    index: int
    label: str
    spec: StageSpec
    directory: Path
    pretrain_dirs: tuple[Path, ...] = field(default_factory=tuple)


def is_schedule(preset_or_path: str | Path) -> bool:
    """Whether a preset name or YAML path names a schedule (its stem ends in ``_schedule``)."""
    return Path(str(preset_or_path)).with_suffix("").name.endswith(SCHEDULE_SUFFIX)


def _stage(entry: Any, where: str) -> StageSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with name, preset, stream")
    unknown = set(entry) - _STAGE_KEYS
    if unknown:
        raise ConfigError(
            f"{where} has unknown keys {sorted(unknown)}; expected {sorted(_STAGE_KEYS)}"
        )
    for key in ("name", "preset", "stream"):
        if not entry.get(key):
            raise ConfigError(f"{where} needs '{key}'")
    stream = str(entry["stream"])
    pretrain = tuple(str(s) for s in entry.get("pretrain") or ())
    for name in (stream, *pretrain):
        if name not in STREAMS:
            raise ConfigError(f"{where}: stream {name!r} is not one of {list(STREAMS)}")
    take_epoch = entry.get("take_epoch") or 0
    if not isinstance(take_epoch, int) or take_epoch < 0:
        raise ConfigError(f"{where}: take_epoch {take_epoch!r} is not a non-negative int")
    return StageSpec(
        name=str(entry["name"]),
        preset=str(entry["preset"]),
        stream=stream,
        pretrain=pretrain,
        overrides=tuple(str(o) for o in entry.get("overrides") or ()),
        take_epoch=take_epoch,
    )


def load_schedule(preset_or_path: str | Path) -> ScheduleSpec:
    """Reads and checks a schedule file (a preset name such as ``coclr/tiny_schedule`` or a path).

    Raises:
        ConfigError: Unknown keys, missing fields, bad streams, or a stage seeded by a stream that
            no earlier stage trains.
    """
    import yaml

    from vidssl.config.schema import preset_path

    text = str(preset_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) else preset_path(text)
    if not path.is_file():
        raise ConfigError(f"schedule file {path} does not exist")
    tree = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tree, dict) or tree.get("kind") != "schedule":
        raise ConfigError(f"{path} is not a schedule (expected 'kind: schedule')")
    unknown = set(tree) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"{path} has unknown keys {sorted(unknown)}; expected {sorted(_TOP_KEYS)}"
        )
    seed = tuple(_stage(e, f"{path.name} seed[{i}]") for i, e in enumerate(tree.get("seed") or ()))
    cycle = tuple(
        _stage(e, f"{path.name} cycle[{i}]") for i, e in enumerate(tree.get("cycle") or ())
    )
    evaluation = tree.get("evaluation") or {}
    spec = ScheduleSpec(
        source=text,
        run_dir=str(tree.get("run_dir") or f"runs/{path.stem}"),
        cycles=int(tree.get("cycles", 1)),
        seed=seed,
        cycle=cycle,
        eval_preset=evaluation.get("preset"),
        eval_overrides=tuple(str(o) for o in evaluation.get("overrides") or ()),
    )
    plan_stages(spec, Path(spec.run_dir))  # checks that every seeding stream has a stage before
    return spec


def plan_stages(spec: ScheduleSpec, root: Path) -> list[PlannedStage]:
    """The concrete stages: seed stages, then ``cycles`` × the cycle stages, with their seeds."""
    if spec.cycles < 0:
        raise ConfigError(f"cycles={spec.cycles} must be ≥ 0")
    kinds = [(s, s.name) for s in spec.seed]
    for c in range(1, spec.cycles + 1):
        kinds += [(s, f"cycle{c}_{s.name}") for s in spec.cycle]
    if not kinds:
        raise ConfigError(f"schedule {spec.source} has no stages")
    newest: dict[str, Path] = {}
    planned = []
    for index, (stage, label) in enumerate(kinds, start=1):
        missing = [s for s in stage.pretrain if s not in newest]
        if missing:
            raise ConfigError(
                f"stage {label} is seeded by stream(s) {missing} that no earlier stage trains"
            )
        directory = root / f"{index:02d}_{label}"
        planned.append(
            PlannedStage(index, label, stage, directory, tuple(newest[s] for s in stage.pretrain))
        )
        newest[stage.stream] = directory
    return planned


def _split_key(override: str) -> tuple[str, str]:
    if "=" not in override:
        raise ConfigError(f"override {override!r} is not key=value")
    key, value = override.split("=", 1)
    return key.strip(), value


def split_overrides(
    overrides: Sequence[str], stage_names: Sequence[str]
) -> tuple[dict[str, str], list[str], dict[str, list[str]]]:
    """Sorts command-line overrides into schedule settings, all-stage and per-stage overrides."""
    settings: dict[str, str] = {}
    common: list[str] = []
    per_stage: dict[str, list[str]] = {}
    for override in overrides:
        key, value = _split_key(override)
        head, _, rest = key.partition(".")
        if key in ("cycles", "evaluate", "trainer.run_dir"):
            settings[key] = value
        elif head in stage_names and rest:
            per_stage.setdefault(head, []).append(f"{rest}={value}")
        else:
            common.append(override)
    return settings, common, per_stage


def _stage_overrides(stage: PlannedStage, common: Sequence[str], own: Sequence[str]) -> list[str]:
    from vidssl.methods.registry import load_config

    base = load_config(stage.spec.preset, [*stage.spec.overrides])
    single_flow = stage.spec.stream == "flow" and base.data.flow_media is None
    out = list(stage.spec.overrides)
    for override in common:
        key, value = _split_key(override)
        if single_flow and key == "data.media":
            continue  # the RGB media: this stage reads flow only
        if single_flow and key == "data.flow_media":
            override = f"data.media={value}"
        out.append(override)
    out += list(own)
    out.append(f"trainer.run_dir={stage.directory}")
    if stage.spec.take_epoch:
        full = load_config(stage.spec.preset, out)
        horizon = full.schedule.horizon_epochs or full.trainer.epochs
        if stage.spec.take_epoch > horizon:
            raise ConfigError(
                f"stage {stage.label}: take_epoch={stage.spec.take_epoch} is beyond its "
                f"{horizon}-epoch schedule"
            )
        out += [f"schedule.horizon_epochs={horizon}", f"trainer.epochs={stage.spec.take_epoch}"]
    if stage.pretrain_dirs:
        out.append("method.pretrain=[" + ",".join(str(p) for p in stage.pretrain_dirs) + "]")
    return out


def _eval_overrides(cfg: Any, stream: str, extra: Sequence[str]) -> list[str]:
    d = cfg.data
    media = d.flow_media if stream == "flow" and d.flow_media else d.media
    out = [f"data.dataset={d.dataset}", f"data.root={d.root}", f"data.split_id={d.split_id}"]
    if media:
        out.append(f"data.media={media}")
    return out + list(extra)


@dataclass
class StageRecord:
    """What a finished stage reports (``stage.json`` and a row of the final table)."""

    index: int
    label: str
    stream: str
    preset: str
    directory: str
    encoder: str
    global_step: int
    final_loss: float | None
    seconds: float
    skipped_videos: int
    retrieval: dict[str, float] = field(default_factory=dict)


def _run_stage(
    stage: PlannedStage, overrides: list[str], spec: ScheduleSpec, evaluate: bool,
    pretrain_fn: Callable[..., Any], retrieval_fn: Callable[..., dict[str, Any]],
) -> StageRecord:  # fmt: skip
    from vidssl.methods.registry import load_config

    cfg = load_config(stage.spec.preset, overrides)
    log.info("stage %d %s: %s (%s) in %s", stage.index, stage.label, stage.spec.preset,
             stage.spec.stream, stage.directory)  # fmt: skip
    result = pretrain_fn(cfg, source=stage.spec.preset)
    record = StageRecord(
        index=stage.index, label=stage.label, stream=stage.spec.stream, preset=stage.spec.preset,
        directory=str(stage.directory), encoder=str(result.encoder_dir),
        global_step=result.global_step, final_loss=result.final_loss, seconds=result.seconds,
        skipped_videos=len(result.skipped_videos),
    )  # fmt: skip
    if evaluate and spec.eval_preset:
        ev = retrieval_fn(
            result.encoder_dir, spec.eval_preset,
            overrides=_eval_overrides(cfg, stage.spec.stream, spec.eval_overrides),
            out=stage.directory / "eval",
        )  # fmt: skip
        record.retrieval = dict(next(iter(ev["results"].values())))
    atomic_write_text(stage.directory / "stage.json", json.dumps(asdict(record), indent=2))
    return record


def _final_retrieval(
    planned: Sequence[PlannedStage], records: Sequence[StageRecord], common: Sequence[str],
    per_stage: dict[str, list[str]], spec: ScheduleSpec, root: Path,
    retrieval_fn: Callable[..., dict[str, Any]],
) -> dict[str, Any] | None:  # fmt: skip
    """RGB, flow and R+F retrieval of the newest RGB and flow stages (None without both)."""
    from vidssl.methods.registry import load_config

    newest: dict[str, tuple[PlannedStage, StageRecord]] = {}
    for stage, record in zip(planned, records):
        newest[stage.spec.stream] = (stage, record)
    if set(newest) != set(STREAMS) or not spec.eval_preset:
        return None
    configs = {
        stream: load_config(stage.spec.preset, _stage_overrides(
            stage, common, per_stage.get(stage.spec.name, [])))
        for stream, (stage, _) in newest.items()
    }  # fmt: skip
    flow = configs["flow"].data
    flow_media = flow.flow_media if flow.flow_media else flow.media
    overrides = _eval_overrides(configs["rgb"], "rgb", spec.eval_overrides)
    if flow_media:
        overrides.append(f"data.flow_media={flow_media}")
    ev = retrieval_fn(
        newest["rgb"][1].encoder, spec.eval_preset, overrides=overrides,
        flow_encoder=newest["flow"][1].encoder, out=root / "final_eval",
    )  # fmt: skip
    labels = {"rgb": "rgb", "flow": "flow", "fused": "rgb+flow"}
    return {
        "stages": {stream: record.label for stream, (_, record) in newest.items()},
        "retrieval": {labels[k]: dict(v) for k, v in ev["results"].items() if k in labels},
    }


def format_final_table(final: dict[str, Any]) -> str:
    """Markdown table of the final RGB / flow / R+F retrieval."""
    ks = ("R@1", "R@5", "R@10", "R@20", "R@50")
    lines = ["| stream | " + " | ".join(ks) + " |", "|---|" + "---|" * len(ks)]
    for stream, recall in final["retrieval"].items():
        values = " | ".join(f"{100 * recall[k]:.1f}" if k in recall else "–" for k in ks)
        lines.append(f"| {stream} | {values} |")
    stages = ", ".join(f"{s}: {label}" for s, label in final["stages"].items())
    return "\n".join([*lines, "", f"Encoders: {stages}."])


def format_table(records: Sequence[StageRecord]) -> str:
    """Markdown table: one row per stage with retrieval R@k, steps and time."""
    ks = ("R@1", "R@5", "R@10")
    lines = [
        "| # | stage | stream | " + " | ".join(ks) + " | steps | minutes |",
        "|---|---|---|" + "---|" * len(ks) + "---|---|",
    ]
    for r in records:
        recall = " | ".join(f"{100 * r.retrieval[k]:.1f}" if k in r.retrieval else "–" for k in ks)
        lines.append(
            f"| {r.index} | {r.label} | {r.stream} | {recall} | {r.global_step} | "
            f"{r.seconds / 60:.1f} |"
        )
    return "\n".join(lines)


def run_schedule(
    preset_or_path: str | Path, overrides: Sequence[str] = (), *,
    pretrain_fn: Callable[..., Any] | None = None,
    retrieval_fn: Callable[..., dict[str, Any]] | None = None,
) -> list[StageRecord]:  # fmt: skip
    """Runs (or continues) every stage of a schedule; returns one record per stage.

    Args:
        preset_or_path: Schedule preset name or YAML path.
        overrides: Command-line overrides (see the module docstring).
        pretrain_fn: Trains one stage (default `vidssl.train.pretraining.run_pretraining`).
        retrieval_fn: Evaluates one encoder (default `vidssl.eval.run.run_retrieval`).

    Writes ``schedule.json`` and ``schedule.md`` (the final table) into the schedule root.
    """
    spec = load_schedule(preset_or_path)
    names = sorted({s.name for s in (*spec.seed, *spec.cycle)})
    settings, common, per_stage = split_overrides(overrides, names)
    if "cycles" in settings:
        spec = dataclasses.replace(spec, cycles=int(settings["cycles"]))
    evaluate = settings.get("evaluate", "true").lower() not in ("false", "0", "no")
    root = Path(settings.get("trainer.run_dir", spec.run_dir))
    if pretrain_fn is None:
        from vidssl.train.pretraining import run_pretraining as pretrain_fn
    if retrieval_fn is None:
        from vidssl.eval.run import run_retrieval as retrieval_fn
    records = []
    start = time.perf_counter()
    planned = plan_stages(spec, root)
    for stage in planned:
        done = stage.directory / "stage.json"
        if done.is_file():
            record = StageRecord(**json.loads(done.read_text()))
            log.info("stage %d %s already finished: skipped", stage.index, stage.label)
        else:
            stage_overrides = _stage_overrides(stage, common, per_stage.get(stage.spec.name, []))
            record = _run_stage(stage, stage_overrides, spec, evaluate, pretrain_fn, retrieval_fn)
        records.append(record)
    table = format_table(records)
    atomic_write_text(root / "schedule.md", table + "\n")
    final = None
    if evaluate:
        final = _final_retrieval(planned, records, common, per_stage, spec, root, retrieval_fn)
    if final is not None:
        atomic_write_text(root / "final.md", format_final_table(final) + "\n")
        log.info("final retrieval:\n%s", format_final_table(final))
    atomic_write_text(
        root / "schedule.json",
        json.dumps(
            {
                "schedule": spec.source,
                "cycles": spec.cycles,
                "seconds": time.perf_counter() - start,
                "stages": [asdict(r) for r in records],
                "final": final,
            },
            indent=2,
        ),
    )
    return records
