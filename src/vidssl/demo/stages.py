"""The demo's pre-training stages beyond InfoNCE: overrides and runs for CoCLR, ViCC and PCL.

Every stage reuses the demo's data, clip and backbone sizes (`vidssl.demo.run.pretrain_overrides`)
and keeps each method's own optimiser and loss settings from its ``tiny`` preset:

- CoCLR: one cycle after InfoNCE — RGB mined by InfoNCE flow, then flow (``reverse``) mined by
  CoCLR RGB; init ``coclr``.
- ViCC: single-stream RGB and flow, then one cross-stream cycle (RGB against the frozen single
  flow encoder, then flow against the frozen cross RGB encoder); init ``vicc`` = the cross
  encoders.
- PCL: PCL(VCP) on the RGB stream (residual clips, as the method defines them); init ``pcl``,
  RGB only (no flow encoder, so no flow or rgb+flow rows).
- VCP: the cloze pretext alone (VCP's weak augmentation and residual), RGB only; init ``vcp``.
  Not in the default set (asked for with ``--methods``).

With ``--rgb-input raw`` (``rgb_residual="none"``) every RGB stage, PCL and VCP included, is
trained and evaluated on raw frames instead of residual clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vidssl.errors import UserError

if TYPE_CHECKING:
    from vidssl.demo.run import DemoSettings

__all__ = ["METHODS", "RGB_ONLY", "Stage", "check_methods", "method_stages"]

#: Methods the demo can run, in run order; ``infonce`` is always run (the others start from it
#: or are compared with it).
METHODS = ("infonce", "coclr", "vicc", "pcl", "vcp")
#: Inits evaluated on the RGB stream only.
RGB_ONLY = frozenset({"pcl", "vcp"})


@dataclass(frozen=True)
class Stage:
    """One pre-training run of the demo.

    Attributes:
        key: Timing key and run folder name (``coclr_rgb``, ``vicc_cross_flow``, ...).
        label: Shown in the loss plot (first word: the method).
        preset: The training preset.
        overrides: ``key=value`` overrides of the preset.
        steps: Optimiser steps.
    """

    key: str
    label: str
    preset: str
    overrides: tuple[str, ...]
    steps: int


def check_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """The methods in run order, ``infonce`` added; `UserError` naming an unknown one."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"--methods {','.join(unknown)}: expected some of {', '.join(METHODS)}")
    return tuple(m for m in METHODS if m in methods or m == "infonce")


def _shared(s: DemoSettings, root: Path, stream: str, run_dir: Path, steps: int) -> list[str]:
    """The demo's data/model/trainer overrides without InfoNCE's method and optimiser keys."""
    from vidssl.demo.run import pretrain_overrides

    drop = ("method.", "optim.", "schedule.", "trainer.epochs", "trainer.max_steps")
    return [*_without(pretrain_overrides(s, root, stream, run_dir), *drop), *_steps(s, root, steps)]


def _steps(s: DemoSettings, root: Path, steps: int) -> list[str]:
    """``steps`` optimiser steps, with the epochs that cover them (the schedule's horizon)."""
    from vidssl.demo.run import epochs_for

    return [f"trainer.epochs={epochs_for(steps, root, s.batch_size)}", f"trainer.max_steps={steps}"]


def _without(overrides: list[str], *keys: str) -> list[str]:
    return [o for o in overrides if not o.startswith(keys)]


def coclr_overrides(s: DemoSettings, out: Path, stream: str) -> list[str]:
    """``coclr/tiny`` overrides for one CoCLR cycle on ``stream``.

    RGB starts from InfoNCE RGB and mines with InfoNCE flow; flow (``reverse``) starts from
    InfoNCE flow and mines with the CoCLR RGB encoder of the same cycle.
    """
    from vidssl.demo.run import pretrain_overrides

    root = out / "data"
    base = _without(
        pretrain_overrides(s, root, "rgb", out / f"coclr_{stream}"),
        "trainer.max_steps", "trainer.epochs", "data.augmentation", "method.mask_siblings",
    )  # fmt: skip
    if stream == "rgb":
        pair = [out / "infonce_rgb", out / "infonce_flow"]
        extra = []
    else:
        pair = [out / "infonce_flow", out / "coclr_rgb"]
        extra = ["method.reverse=true", "data.modality=flow"]
    return [
        *base,
        *_stream_augmentations(s),
        *extra,
        f"data.flow_media={root / 'flow'}",
        f"method.pretrain=[{pair[0]},{pair[1]}]",
        *_steps(s, root, s.coclr_steps),
    ]


def _stream_augmentations(s: DemoSettings) -> list[str]:
    """Each stream of two-stream data gets the policy its frozen encoder was trained with."""
    return [
        f'data.augmentation="{s.rgb_augmentation}"',
        f'data.flow_augmentation="{s.flow_augmentation}"',
    ]


def _coclr(s: DemoSettings, out: Path) -> list[Stage]:
    return [
        Stage(
            f"coclr_{stream}",
            f"CoCLR {stream}",
            "coclr/tiny",
            tuple(coclr_overrides(s, out, stream)),
            s.coclr_steps,
        )
        for stream in ("rgb", "flow")
    ]


def _vicc(s: DemoSettings, out: Path) -> list[Stage]:
    root = out / "data"
    steps, queue = s.vicc_steps, f"method.queue_size={s.queue_size}"
    single_rgb, single_flow = out / "vicc_single_rgb", out / "vicc_single_flow"
    cross_rgb, cross_flow = out / "vicc_cross_rgb", out / "vicc_cross_flow"
    two_stream = [f"data.flow_media={root / 'flow'}"]
    return [
        Stage(
            "vicc_single_rgb",
            "ViCC rgb (single)",
            "vicc/tiny",
            (*_shared(s, root, "rgb", single_rgb, steps), queue),
            steps,
        ),
        Stage(
            "vicc_single_flow",
            "ViCC flow (single)",
            "vicc/tiny_flow",
            (*_shared(s, root, "flow", single_flow, steps), queue),
            steps,
        ),
        Stage(
            "vicc_cross_rgb",
            "ViCC rgb (cross)",
            "vicc/tiny_cross",
            (
                *_without(_shared(s, root, "rgb", cross_rgb, steps), "data.augmentation"),
                *two_stream,
                *_stream_augmentations(s),
                queue,
                f"method.pretrain=[{single_rgb},{single_flow}]",
            ),
            steps,
        ),
        Stage(
            "vicc_cross_flow",
            "ViCC flow (cross)",
            "vicc/tiny_cross_flow",
            (
                *_without(_shared(s, root, "rgb", cross_flow, steps), "data.augmentation"),
                *two_stream,
                *_stream_augmentations(s),
                "data.modality=flow",
                queue,
                f"method.pretrain=[{single_flow},{cross_rgb}]",
            ),
            steps,
        ),
    ]


def _cloze(method: str, steps: int, s: DemoSettings, out: Path) -> list[Stage]:
    """PCL or VCP on the RGB stream (its own tuples, augmentation and residual)."""
    root, run_dir = out / "data", out / f"{method}_rgb"
    # PCL/VCP make their own residual clips after the cloze operation and have their own
    # augmentation; the demo trains them without the validation pass (so no plateau schedule).
    shared = _without(_shared(s, root, "rgb", run_dir, steps), "data.residual", "data.augmentation")
    extra = ['method.val_split=""', 'schedule.plateau_monitor=""']
    if s.rgb_residual == "none":  # the raw-RGB comparison: no residual anywhere
        extra.append("method.residual=none")
    label = f"{method.upper()} rgb"
    return [Stage(f"{method}_rgb", label, f"{method}/tiny", (*shared, *extra), steps)]


def _pcl(s: DemoSettings, out: Path) -> list[Stage]:
    return _cloze("pcl", s.pcl_steps, s, out)


def _vcp(s: DemoSettings, out: Path) -> list[Stage]:
    return _cloze("vcp", s.vcp_steps, s, out)


def method_stages(s: DemoSettings, out: Path) -> list[Stage]:
    """The stages of every method in ``s.methods`` after InfoNCE, in run order."""
    builders = {"coclr": _coclr, "vicc": _vicc, "pcl": _pcl, "vcp": _vcp}
    methods = [m for m in check_methods(s.methods) if m in builders]
    return [stage for method in methods for stage in builders[method](s, out)]
