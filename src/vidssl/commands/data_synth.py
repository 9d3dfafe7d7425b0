"""``vidssl data synth``: write a synthetic motion-defined action dataset in the UCF101 layout."""

from __future__ import annotations

import argparse

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
        "--classes",
        type=int,
        default=10,
        metavar="N",
        help=f"number of motion classes, 1-{len(MOTION_CLASSES)} (default 10)",
    )
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
        default=64,
        metavar="T",
        help="mean clip length; lengths are uniform in [0.625T, 1.375T] (default 64: 40-88)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=64,
        metavar="S",
        help="frame height, even, 32-1080; width is 4/3 of it (default 64: 86x64)",
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


def run(args: argparse.Namespace) -> int:
    """Writes the dataset and prints a one-line summary; returns 0."""
    from vidssl.data.synthetic import make_synthetic_dataset

    summary = make_synthetic_dataset(
        args.out,
        classes=args.classes,
        videos_per_class=args.videos_per_class,
        frames=args.frames,
        size=args.size,
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
