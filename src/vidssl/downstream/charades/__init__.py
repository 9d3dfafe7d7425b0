"""Charades multi-label classification (SEVERE task shift, severe.md §7).

Public API: `mean_ap` (the reported metric), the catalogs (`read_frame_list`,
`read_official_csv`), the clip geometry in `views`, the datasets in `dataset` and the
training/evaluation task in `task`.
"""

from vidssl.downstream.charades.catalog import (
    NUM_CLASSES,
    CharadesVideo,
    read_frame_list,
    read_official_csv,
    span_label,
    video_label,
    write_frame_list,
)
from vidssl.downstream.charades.metrics import max_ensemble, mean_ap, per_class_ap

__all__ = [
    "NUM_CLASSES",
    "CharadesVideo",
    "max_ensemble",
    "mean_ap",
    "per_class_ap",
    "read_frame_list",
    "read_official_csv",
    "span_label",
    "video_label",
    "write_frame_list",
]
