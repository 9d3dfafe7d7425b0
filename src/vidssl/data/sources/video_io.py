"""Writing videos with PyAV (bundled FFmpeg), for the synthetic dataset, tests and benchmarks."""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidssl.utils.io import atomic_write_bytes


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray] | np.ndarray,
    *,
    fps: int = 25,
    codec: str = "libx264",
    gop: int = 16,
    crf: int = 18,
    bframes: bool = False,
    threads: int | None = None,
) -> int:
    """Encodes ``T×H×W×3`` uint8 RGB frames into a video file (container from the suffix).

    The file appears atomically (written to memory, then renamed into place).

    Args:
        path: output path; ``.avi``, ``.mp4``, ``.mkv`` and ``.webm`` are typical.
        frames: an array ``T×H×W×3`` or an iterable of ``H×W×3`` arrays (H and W even for x264).
        fps: constant frame rate.
        codec: ``libx264`` (H.264), ``mpeg4`` or ``libvpx-vp9`` (VP9, for ``.webm``).
        gop: keyframe interval in frames.
        crf: x264 / VP9 constant rate factor (lower = better quality); ignored for ``mpeg4``.
        bframes: allow B-frames (off by default, so decode order equals display order).
        threads: encoder threads; pass 1 for byte-identical files on machines with any core count
            (x264 then also runs without its frame-type/macroblock-tree lookahead: with it, the
            same frames encoded twice came out different now and then, about 1 video in 5 when
            two processes encoded at once).

    Returns:
        The number of frames written.
    """
    path = Path(path)
    import io

    buffer = io.BytesIO()
    suffix = path.suffix.lower()
    container_format = {".avi": "avi", ".mp4": "mp4", ".mkv": "matroska", ".webm": "webm"}.get(
        suffix
    )
    count = 0
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps, 1))
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if not bframes:
            stream.codec_context.max_b_frames = 0
        if threads is not None:
            stream.codec_context.thread_count = threads
        if codec == "libx264":
            options = {
                "crf": str(crf),
                "preset": "veryfast",
                "keyint_min": str(gop),
                "sc_threshold": "0",
                "bf": "0" if not bframes else "2",
            }
            if threads is not None:
                options["threads"] = str(threads)
            if threads == 1:
                options["x264-params"] = "rc-lookahead=0:mbtree=0"
            stream.options = options
        elif codec == "libvpx-vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": str(crf), "b": "0"}
        else:
            stream.codec_context.bit_rate = 2_000_000
            stream.codec_context.qmax = 8
        for frame_array in frames:
            frame_array = np.ascontiguousarray(frame_array, dtype=np.uint8)
            if count == 0:
                stream.height, stream.width = frame_array.shape[:2]
            frame = av.VideoFrame.from_ndarray(frame_array, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    atomic_write_bytes(path, buffer.getvalue())
    return count
