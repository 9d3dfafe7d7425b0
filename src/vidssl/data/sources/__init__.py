"""Frame sources.

Frame sources: `VideoFile` (PyAV, keyframe seek), `FrameFolder` (JPEG folders), `LmdbVideo` (CoCLR
LMDB) behind one `FrameSource` protocol; video writing (`video_io`), frame-file naming
(`frame_files`), the LMDB writer (`lmdb_store`) and catalog-to-storage binding (`media`).
"""

from vidssl.data.sources.base import (
    VIDEO_EXTENSIONS,
    FrameFolder,
    FrameSource,
    LmdbVideo,
    VideoFile,
    find_videos,
)

__all__ = [
    "VIDEO_EXTENSIONS",
    "FrameFolder",
    "FrameSource",
    "LmdbVideo",
    "VideoFile",
    "find_videos",
]
