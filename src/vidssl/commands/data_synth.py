"""``vidssl data synth``: write a synthetic motion-defined action dataset in an official layout.

``--task`` picks the layout through `TASKS` (task → writer): ``ucf101`` (UCF101 folders and split
files, the default), ``charades`` (videos, ``Charades_v1_{train,test}.csv`` and the SlowFast
frame lists) or ``ava`` (AVA v2.2 frames, box CSVs, label map, exclusions and frame lists).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from vidssl.data.synthetic.motion import MOTION_CLASSES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options to ``parser``."""
    parser.epilog = (
        "classes, in --classes order: " + ", ".join(m.name for m in MOTION_CLASSES) + ". "
        "Writes DIR/UCF-101/<Class>/v_<Class>_gXX_cYY.avi, DIR/ucfTrainTestlist/ "
        "(classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt) and DIR/synth.json."
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset root to write")
    parser.add_argument(
        "--task",
        choices=sorted(TASKS),
        default="ucf101",
        help="layout to write (default ucf101); charades: Charades_v1_480/<id>.mp4, "
        "Charades_v1_{train,test}.csv, frame_lists/{train,val}.csv; ava: frames/<vid>/*.jpg, "
        "annotations/ (AVA v2.2 CSVs, label map, exclusions, frame lists)",
    )
    parser.add_argument(
        "--classes",
        type=int,
        default=None,
        metavar="N",
        help=f"number of motion classes, 1-{len(MOTION_CLASSES)} (default 10; charades 6)",
    )
    parser.add_argument(
        "--train-videos", type=int, default=None, metavar="N",
        help="charades/ava: training videos (charades 24, ava 4)",
    )  # fmt: skip
    parser.add_argument(
        "--test-videos", type=int, default=None, metavar="N",
        help="charades/ava: test (ava: val) videos (charades 12, ava 2)",
    )  # fmt: skip
    parser.add_argument(
        "--videos-per-class",
        type=int,
        default=12,
        metavar="M",
        help="clips per class, in source groups of up to 3 siblings (default 12)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        metavar="T",
        help="mean clip length; lengths are uniform in [0.625T, 1.375T] (default 64: 40-88); "
        "charades: [0.75T, 1.25T] at 24 fps (default 72)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        metavar="S",
        help="frame height, even, 32-1080; width is 4/3 of it (default 64: 86x64; charades 48; "
        "ava 96)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="K", help="random seed (default 0)")
    parser.add_argument(
        "--corrupt",
        type=int,
        default=0,
        metavar="C",
        help="add C undecodable .avi files, listed in the split files (default 0)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="W",
        help="parallel processes (default: usable CPU cores, at most 8); the output is the same",
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _ucf101(args: argparse.Namespace) -> int:
    from vidssl.data.synthetic import make_synthetic_dataset

    summary = make_synthetic_dataset(
        args.out,
        classes=_or(args.classes, 10),
        videos_per_class=args.videos_per_class,
        frames=_or(args.frames, 64),
        size=_or(args.size, 64),
        seed=args.seed,
        corrupt=args.corrupt,
        workers=args.workers,
    )
    split = summary["splits"]["01"]
    size = summary["frame_size"]
    print(
        f"{summary['root']}: {len(summary['videos'])} videos of {len(summary['classes'])} classes "
        f"({size['width']}x{size['height']}, {summary['length_range'][0]}-"
        f"{summary['length_range'][1]} frames; {summary['written']} written, "
        f"{summary['reused']} reused), split 01: {split['train']} train / {split['test']} test, "
        f"{len(summary['corrupt'])} corrupt, {summary['seconds']:.1f} s"
    )
    return 0


def _charades(args: argparse.Namespace) -> int:
    from vidssl.data.synthetic.charades import CharadesSynthParams, make_synthetic_charades
    from vidssl.downstream.charades.catalog import read_official_csv, write_frame_list

    params = CharadesSynthParams(
        classes=_or(args.classes, 6), train_videos=_or(args.train_videos, 24),
        test_videos=_or(args.test_videos, 12),
        frames=_or(args.frames, 72), size=_or(args.size, 48), seed=args.seed,
    )  # fmt: skip
    summary = make_synthetic_charades(args.out, params, workers=args.workers)
    root = Path(args.out)
    for csv_name, list_name in (("train", "train"), ("test", "val")):
        videos = read_official_csv(root / f"Charades_v1_{csv_name}.csv")
        write_frame_list(root / "frame_lists" / f"{list_name}.csv", videos)
    print(
        f"{summary['root']}: {summary['videos']} videos ({params.train_videos} train / "
        f"{params.test_videos} test) of {params.classes} action classes at 24 fps "
        f"({params.width}x{params.size}; {summary['written']} written, {summary['reused']} "
        f"reused), {summary['seconds']:.1f} s"
    )
    return 0


def _ava(args: argparse.Namespace) -> int:
    from vidssl.data.synthetic.ava import make_synthetic_ava

    height = _or(args.size, 96)
    summary = make_synthetic_ava(
        args.out, train_videos=_or(args.train_videos, 4), val_videos=_or(args.test_videos, 2),
        size=(height, height * 4 // 3), seed=args.seed,
    )  # fmt: skip
    print(
        f"{summary.root}: AVA layout, {len(summary.videos['train'])} train / "
        f"{len(summary.videos['val'])} val videos ({height * 4 // 3}x{height}, "
        f"{summary.keyframes_per_video} keyframes each), GT rows "
        + ", ".join(f"{split} {n}" for split, n in summary.gt_rows.items())
    )
    return 0


#: ``--task`` → writer.
TASKS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ucf101": _ucf101, "charades": _charades, "ava": _ava,
}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Writes the dataset of ``--task`` and prints a one-line summary; returns 0."""
    return TASKS[args.task](args)
