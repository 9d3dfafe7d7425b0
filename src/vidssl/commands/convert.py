"""``vidssl convert``: a reference system's checkpoint → ``encoder.safetensors`` + ``encoder.json``.

Examples::

    vidssl convert CoCLR-ucf101-rgb-128-s3d-ep182.tar --method coclr --out enc/coclr_rgb
    vidssl convert checkpoint_0199.pth.tar --method MoCo --out enc/moco --format torchvision
    vidssl convert rpd18kin400.pth --method TCLR --out enc/tclr

The checkpoint is loaded strictly (`vidssl.models.checkpoints.load_foreign`); the report lists
the loaded tensors and the ignored keys grouped by prefix. ``--format torchvision`` writes
``OUT/<arch>.pth``, a plain state dict with torchvision's key names (r3d_18 / r2plus1d_18).
Any problem is one ``vidssl: error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FORMATS = ("vidssl", "torchvision")
# Kept free of vidssl.models imports (torch) so that ``vidssl --help`` stays fast; a test checks
# these against `vidssl.models.checkpoints.adapters` and `vidssl.models.checkpoints.arch`.
METHOD_CHOICES_HELP = (
    "coclr (also cpr, cvtcl, infonce, ubernce), vicc, pcl (also vcp), supervised, scratch, "
    "selavi, avid_cma, moco, video_moco, pretext_contrast, rspnet, gdt, tclr, ctp"
)
ARCH_HELP = "s3d, s3dg, r3d_18, r2plus1d_18, r2plus1d_18_tclr, r3d_10, r21d_10, c3d"
NORMALIZATION_CHOICES = ("imagenet", "kinetics", "none")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's options."""
    parser.add_argument(
        "checkpoint",
        type=Path,
        nargs="?",
        help="the foreign checkpoint (.pth/.pth.tar/.pt/.safetensors); none for --method scratch",
    )
    parser.add_argument(
        "--method", required=True, help=f"method that wrote it, any case: {METHOD_CHOICES_HELP}"
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--arch", help=f"{ARCH_HELP} (default: inferred from the keys)")
    parser.add_argument("--format", choices=FORMATS, default="vidssl", help="output format")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow arbitrary unpickling (runs code from the file; only for trusted files)",
    )
    parser.add_argument("--modality", choices=("rgb", "flow"), default="rgb")
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATION_CHOICES,
        help="input normalisation to record (default: the method's evaluation code's)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=3,
        metavar=("T", "H", "W"),
        help="clip size to record (default: the backbone's reference size)",
    )
    parser.add_argument(
        "--in-channels", type=int, help="input channels (default: read from the first conv)"
    )
    parser.add_argument(
        "--width-mult", type=float, help="channel multiplier (default: inferred from the shapes)"
    )
    parser.add_argument("--report", type=Path, help="also write the load report as JSON here")


def run(args: argparse.Namespace) -> int:
    """Converts the checkpoint and prints the report; returns 0."""
    from vidssl.models.checkpoints import load_foreign_with_report
    from vidssl.models.checkpoints.adapters import adapter_for
    from vidssl.models.checkpoints.export import export_encoder, export_torchvision
    from vidssl.utils.io import atomic_write_text

    adapter = adapter_for(args.method)
    model, report = load_foreign_with_report(
        args.checkpoint,
        adapter.name,
        args.arch,
        trust=args.trust_checkpoint,
        in_channels=args.in_channels,
        width_mult=args.width_mult,
    )
    for line in report.summary_lines():
        print(line)
    if args.format == "torchvision":
        written = [export_torchvision(model, args.out / f"{report.arch}.pth")]
    else:
        source = {"method": report.method, "path": report.path, "sha256": report.sha256}
        json_path = export_encoder(
            model,
            args.out,
            modality=args.modality,
            normalization=args.normalization or adapter.normalization,
            input_size=args.input_size,
            channel_order=adapter.channel_order,
            source=source,
        )
        written = [json_path.with_name("encoder.safetensors"), json_path]
    if args.report is not None:
        atomic_write_text(args.report, json.dumps(report.to_dict(), indent=2) + "\n")
        written.append(args.report)
    print("wrote " + ", ".join(str(path) for path in written))
    return 0
