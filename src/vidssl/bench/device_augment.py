"""Per-sample cost of ``data.augment_on=cpu`` vs ``device`` (the CoCLR view policies).

For a batch of samples (two ``T×H×W×3`` uint8 clips each, random content) it times:

- ``cpu: full views``: the worker-side policy with the whole pipeline (crop/resize, jitter,
  grey, blur, flip, normalisation) per view, float views out (``augment_on=cpu``);
- ``device: worker crop``: the worker side of ``augment_on=device`` (draws + uint8
  crop/resize, packed parameters);
- ``device: batched tail (<dev>)``: `vidssl.data.transforms.device.augment_batch` on the collated
  batch, on the CPU and on CUDA when available (synchronised), divided by the batch size;
- ``device: total (<dev>)``: worker crop + batched tail.

Times are medians over ``--reps`` batches, in ms per sample (both views). ``--threads`` sets
torch's intra-op threads (1 ≈ one data-loader worker; the CPU tail then also runs on one thread).

    python -m vidssl.bench.device_augment                       # T=16, 128×171 → 112, batch 16
    python -m vidssl.bench.device_augment --frames 32 --size 128 --batch 32 --reps 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import default_collate

from vidssl.data.dataset_builder import build_view_policy
from vidssl.data.transforms import device as device_augment


def _median_ms(work: Callable[[], object], reps: int, sync: Callable[[], None]) -> float:
    work()  # warm-up
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    """Parses the options, times both paths and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=171)
    parser.add_argument("--size", type=int, default=112, help="output frame size")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--augmentation", default="base", choices=["base", "coclr", "null"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    gen = np.random.default_rng(0)
    shape = (args.frames, args.height, args.width, 3)
    samples = [
        [torch.from_numpy(gen.integers(0, 256, shape, dtype=np.uint8)) for _ in range(2)]
        for _ in range(args.batch)
    ]
    on_cpu = build_view_policy(args.augmentation, 2, args.size)
    on_dev = build_view_policy(args.augmentation, 2, args.size, on_device=True)

    def worker(policy):
        def run() -> list[dict[str, object]]:
            rng = np.random.default_rng(1)
            out = []
            for clips in samples:
                made = policy(clips, rng)
                out.append({"views": made.views, "device_params": made.device_params})
            return out

        return run

    def no_sync() -> None:
        return None

    per = 1.0 / args.batch
    rows = [("cpu: full views", _median_ms(worker(on_cpu), args.reps, no_sync) * per)]
    crop_ms = _median_ms(worker(on_dev), args.reps, no_sync) * per
    rows.append(("device: worker crop", crop_ms))
    batch = default_collate(worker(on_dev)())
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        moved = {**batch, "views": [v.to(device) for v in batch["views"]]}
        sync = torch.cuda.synchronize if device == "cuda" else no_sync
        tail_ms = _median_ms(
            lambda moved=moved: device_augment.augment_batch(moved, on_dev.device),
            args.reps,
            sync,
        )
        rows.append((f"device: batched tail ({device})", tail_ms * per))
        rows.append((f"device: total ({device})", crop_ms + tail_ms * per))

    print(
        f"augmentation={args.augmentation}, 2 views of {args.frames}×{args.height}×{args.width} "
        f"→ {args.size}², batch {args.batch}, torch threads {args.threads}, "
        f"median of {args.reps}"
    )
    print(f"{'path':<28} {'ms/sample':>10}")
    for name, ms in rows:
        print(f"{name:<28} {ms:>10.2f}")


if __name__ == "__main__":
    main()
