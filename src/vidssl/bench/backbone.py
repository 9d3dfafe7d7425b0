"""``vidssl bench backbone``: forward+backward throughput and memory of every backbone.

Each case builds one backbone in train mode, feeds random clips ``B×3×T×H×W`` and times
``loss = mean(output²); loss.backward()`` (fp32, or bf16 autocast), in contiguous and in
``channels_last_3d`` memory format. Reported per case: clips/s, ms per step, the bytes autograd
saves for backward (deduplicated storages, any device) and, on CUDA, the peak allocated memory.
Reference sizes are the clip sizes the reference code bases train with (S3D 32×128²,
R3D/R(2+1)D-18 16×112² and 32×112², VCOP nets 16×112²); the demo size is a tiny-width model on
small clips, as used by the CPU presets. ``--quick`` runs only the demo size (on CPU on one
thread and in contiguous format only, unless ``--threads``/``--memory-format`` say otherwise).

Every case first runs one untimed step that records the saved activations (it also absorbs the
first-call kernel set-up), then ``--warmup`` untimed and ``--iters`` timed steps. The full
measurement is meant for an idle machine: ``vidssl bench backbone --out FILE.json`` (add
``--device cpu cuda`` for both devices).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from vidssl.bench.common import int_option
from vidssl.errors import UserError

logger = logging.getLogger(__name__)

DEMO_WIDTH_MULT = 0.125
DEMO_CLIP = (8, 64, 64)
PRECISIONS = ("fp32", "bf16")
MEMORY_FORMATS = ("contiguous", "channels_last_3d")


@dataclass(frozen=True)
class BenchCase:
    """One measurement: a backbone at one clip size, precision and memory format."""

    backbone: str
    size: str  # 'reference' or 'demo'
    width_mult: float
    frames: int
    height: int
    width: int
    batch_size: int
    precision: str
    memory_format: str
    device: str


def _devices(requested: list[str] | None) -> list[str]:
    import torch

    if not requested:
        return ["cuda" if torch.cuda.is_available() else "cpu"]
    if "cuda" in requested and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to this torch build")
    return list(dict.fromkeys(requested))


def _backbone_names(selection: str | None) -> list[str]:
    from vidssl.models.backbones import BACKBONE_NAMES, backbone_spec

    if not selection:
        return list(BACKBONE_NAMES)
    names = [name.strip() for name in selection.split(",") if name.strip()]
    for name in names:
        backbone_spec(name)  # raises UserError naming the valid backbones
    return names


def plan_cases(args: argparse.Namespace) -> list[BenchCase]:
    """Expands the command-line options into the list of cases to measure."""
    from vidssl.models.backbones import backbone_spec

    cases: list[BenchCase] = []
    for device in _devices(args.device):
        batch = int_option(args.batch_size, 8 if device == "cuda" else 2, "--batch-size")
        quick_cpu = args.quick and device == "cpu"
        formats = args.memory_formats or (["contiguous"] if quick_cpu else list(MEMORY_FORMATS))
        for name in _backbone_names(args.backbones):
            sizes = [("demo", DEMO_WIDTH_MULT, DEMO_CLIP, 2)]
            if not args.quick:
                sizes += [
                    ("reference", 1.0, clip, batch) for clip in backbone_spec(name).reference_inputs
                ]
            for size, width_mult, (frames, height, width), batch_size in sizes:
                for precision in args.precision:
                    for memory_format in formats:
                        cases.append(
                            BenchCase(
                                name,
                                size,
                                width_mult,
                                frames,
                                height,
                                width,
                                batch_size,
                                precision,
                                memory_format,
                                device,
                            )
                        )
    return cases


def _saved_activation_bytes(step: Any) -> int:
    """Runs ``step()`` and returns the bytes of distinct storages autograd saved for backward."""
    import torch

    storages: dict[tuple[str, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(storages.values())


def _timed_steps(case: BenchCase, warmup: int, iters: int) -> dict[str, Any]:
    """Builds the case's model and clips, then measures saved activations and step time."""
    import torch

    from vidssl.models import build_backbone

    device = torch.device(case.device)
    torch.manual_seed(0)
    model = build_backbone(case.backbone, width_mult=case.width_mult).to(device).train()
    clips = torch.randn(case.batch_size, 3, case.frames, case.height, case.width, device=device)
    if case.memory_format == "channels_last_3d":
        model = model.to(memory_format=torch.channels_last_3d)
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    use_bf16 = case.precision == "bf16"
    cuda = device.type == "cuda"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            output = model(clips)
        output.float().square().mean().backward()
        model.zero_grad(set_to_none=True)

    saved_bytes = _saved_activation_bytes(step)
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "clips_per_s": case.batch_size * iters / seconds,
        "ms_per_step": 1000.0 * seconds / iters,
        "saved_activation_mib": saved_bytes / 2**20,
        "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
    }


def measure(case: BenchCase, warmup: int, iters: int) -> dict[str, Any]:
    """Times ``iters`` forward+backward steps of one case after ``1 + warmup`` untimed ones.

    Returns:
        The case's fields plus ``params``, ``clips_per_s``, ``ms_per_step``,
        ``saved_activation_mib`` and ``peak_memory_mib`` (CUDA only, else None); or the case's
        fields plus an ``error`` entry if the device ran out of memory.
    """
    import torch

    result: dict[str, Any] = asdict(case)
    try:
        result.update(_timed_steps(case, warmup, iters))
    except torch.OutOfMemoryError as error:
        result["error"] = f"out of memory: {str(error).splitlines()[0]}"
    finally:
        if case.device == "cuda":
            torch.cuda.empty_cache()
    return result


def best_memory_formats(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each (device, backbone, size, clip, precision), the faster memory format and speed-up.

    Only groups where both formats were measured appear; ``speedup`` is
    ``clips_per_s(channels_last_3d) / clips_per_s(contiguous)``.
    """
    groups: dict[tuple, dict[str, float]] = {}
    for entry in results:
        if "clips_per_s" not in entry:
            continue
        key = (
            entry["device"],
            entry["backbone"],
            entry["size"],
            entry["frames"],
            entry["height"],
            entry["width"],
            entry["precision"],
        )
        groups.setdefault(key, {})[entry["memory_format"]] = entry["clips_per_s"]
    summary = []
    for key, speeds in groups.items():
        if set(speeds) != set(MEMORY_FORMATS):
            continue
        speedup = speeds["channels_last_3d"] / speeds["contiguous"]
        fields = ("device", "backbone", "size", "frames", "height", "width", "precision")
        summary.append(
            {
                **dict(zip(fields, key)),
                "best_memory_format": "channels_last_3d" if speedup > 1.0 else "contiguous",
                "channels_last_speedup": speedup,
            }
        )
    return summary


def format_row(entry: dict[str, Any]) -> str:
    """One printed line of a measured case."""
    clip = f"{entry['batch_size']}x{entry['frames']}x{entry['height']}x{entry['width']}"
    head = (
        f"{entry['device']:<4} {entry['backbone']:<12} w={entry['width_mult']:<5} "
        f"{clip:<14} {entry['precision']:<4} {entry['memory_format']:<16}"
    )
    if "error" in entry:
        return f"{head} {entry['error']}"
    peak = entry["peak_memory_mib"]
    peak_text = "-" if peak is None else f"{peak:.0f}"
    return (
        f"{head} {entry['clips_per_s']:9.2f} clips/s {entry['ms_per_step']:9.1f} ms "
        f"saved {entry['saved_activation_mib']:8.1f} MiB peak {peak_text} MiB"
    )


def measure_all(cases: list[BenchCase], warmup: int, iters: int) -> list[dict[str, Any]]:
    """Measures every case in turn, with a progress bar."""
    from tqdm import tqdm

    results = []
    for case in tqdm(cases, desc="bench backbone", disable=None):
        entry = measure(case, warmup, iters)
        logger.debug("%s", format_row(entry))
        results.append(entry)
    return results
