"""AVA frame-mAP@0.5 on worked examples whose APs are computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from vidssl.data.catalogs.ava import read_labelmap
from vidssl.downstream.ava import evaluate_files
from vidssl.errors import DataError

LABELMAP = """item {
  name: "bend/bow (at the waist)"
  id: 1
}
item {
  name: "crawl"
  id: 3
}
item {
  name: "crouch/kneel"
  id: 4
}
item {
  name: "dance"
  id: 5
}
"""

G1 = "0.0,0.0,0.5,0.5"
G2 = "0.5,0.5,1.0,1.0"
G3 = "0.0,0.0,1.0,1.0"
HALF_OF_G2 = "0.5,0.5,1.0,0.75"  # IoU with G2 exactly 0.5 (all values exact in binary)

GROUNDTRUTH = f"""vid,0902,{G1},1,0
vid,0902,{G2},1,1
vid,0903,{G3},1,0
vid,0905,{G1},1,0
vid,0902,{G1},3,0
vid,0903,{G3},4,0
vid,0902,{G2},2,1
"""

DETECTIONS = f"""vid,0904,{G3},1,0.95
vid,0902,{G1},1,0.9
vid,0902,{G1},1,0.8
vid,0902,{HALF_OF_G2},1,0.7
vid,0903,0.0,0.0,1.0,0.49,1,0.6
vid,0905,{G1},1,0.99
vid,0902,{G2},3,0.5
vid,0902,{G1},3,0.4
vid,0902,0.6,0.1,0.6,0.2,3,0.99
vid,0902,{G2},2,0.9
vid,0902,{G1},,0.97
vid,0903,{G3},5,0.3
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _files(folder: Path, groundtruth: str, detections: str, exclusions: str = "") -> list[Path]:
    return [
        _write(folder, "labelmap.pbtxt", LABELMAP),
        _write(folder, "gt.csv", groundtruth),
        _write(folder, "det.csv", detections),
        _write(folder, "excluded.csv", exclusions),
    ]


def test_worked_example_matches_hand_computed_aps(tmp_path: Path) -> None:
    result = evaluate_files(*_files(tmp_path, GROUNDTRUTH, DETECTIONS, "vid,0905\n"))
    per_class = result["per_class"]
    # class 1: ranked FP(0.95, no GT at 0904) TP(0.9) FP(0.8, duplicate) TP(0.7, IoU exactly 0.5)
    # FP(0.6, IoU 0.49); 3 GT. Monotone precision 1/2 at recall 1/3 and 2/3 -> AP 1/3.
    assert per_class[1] == pytest.approx(1 / 3, abs=1e-12)
    # class 3: the empty box (x1 == x2) is removed, G2 is a class-1 box -> FP(0.5) TP(0.4): AP 1/2
    assert per_class[3] == pytest.approx(0.5, abs=1e-12)
    assert per_class[4] == 0.0  # GT but no detection
    assert math.isnan(per_class[5])  # detections but no GT: left out of the mean
    assert set(per_class) == {1, 3, 4, 5}  # class 2 (not in the label map) is ignored
    assert result["mAP"] == pytest.approx((1 / 3 + 0.5 + 0.0) / 3, abs=1e-12)


def test_excluded_keyframe_counts_without_the_exclusion_file(tmp_path: Path) -> None:
    result = evaluate_files(*_files(tmp_path, GROUNDTRUTH, DETECTIONS)[:3])
    # class 1 with 0905 kept: TP(0.99) FP(0.95) TP(0.9) FP(0.8) TP(0.7) FP(0.6); 4 GT.
    # precision 1, 1/2, 2/3, 1/2, 3/5, 1/2 -> monotone 1, 2/3, 2/3, 3/5, 3/5, 1/2.
    # AP = 1/4 * (1 + 2/3 + 3/5) = 17/30
    assert result["per_class"][1] == pytest.approx(17 / 30, abs=1e-12)


def test_detections_are_matched_in_score_order_within_a_keyframe(tmp_path: Path) -> None:
    groundtruth = f"v,0902,{G3},1,0\n"
    detections = f"v,0902,{G3},1,0.3\nv,0902,{G3},1,0.8\n"
    result = evaluate_files(*_files(tmp_path, groundtruth, detections)[:3])
    # 0.8 is visited first and takes the GT; 0.3 is the duplicate: TP, FP -> AP 1
    assert result["per_class"][1] == 1.0


def test_a_detection_never_falls_back_to_its_second_best_box(tmp_path: Path) -> None:
    groundtruth = "v,0902,0.0,0.0,1.0,1.0,1,0\nv,0902,0.2,0.0,1.2,1.0,1,1\n"
    # the second detection overlaps the taken box by 0.95/1.05 and the free one by 0.85/1.15
    detections = "v,0902,0.0,0.0,1.0,1.0,1,0.9\nv,0902,0.05,0.0,1.05,1.0,1,0.8\n"
    result = evaluate_files(*_files(tmp_path, groundtruth, detections)[:3])
    assert result["per_class"][1] == pytest.approx(0.5, abs=1e-12)  # TP then FP, 2 GT


def test_detections_need_a_score(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="score"):
        evaluate_files(*_files(tmp_path, GROUNDTRUTH, f"vid,0902,{G1},1\n")[:3])


def test_labelmap_reads_id_and_label_id_forms(tmp_path: Path) -> None:
    text = 'item {\n  name: "stand"\n  label_id: 12\n}\nitem {\n  name: "sit"\n  id: 11\n}\n'
    labelmap = read_labelmap(_write(tmp_path, "map.pbtxt", text))
    assert labelmap.ids.tolist() == [12, 11]
    assert labelmap.name_of() == {12: "stand", 11: "sit"}
    with pytest.raises(DataError, match="twice"):
        read_labelmap(_write(tmp_path, "bad.pbtxt", text + 'item {\n  name: "x"\n  id: 11\n}\n'))


def _reference_ap(gt: list, det: list, class_id: int) -> float:
    """Independent loop version of the protocol: per keyframe sort by score, argmax GT, no
    fallback; then VOC all-point AP with a Python-level monotone envelope."""
    gt_c = [g for g in gt if g[2] == class_id]
    if not gt_c:
        return float("nan")
    scored = []
    for key in dict.fromkeys(d[0] for d in det):
        rows = sorted([d for d in det if d[0] == key and d[2] == class_id], key=lambda d: -d[3])
        truth = [g[1] for g in gt_c if g[0] == key]
        used = [False] * len(truth)
        for row in rows:
            if row[1][0] >= row[1][2] or row[1][1] >= row[1][3]:
                continue
            ious = []
            for box in truth:
                iw = max(0.0, min(row[1][2], box[2]) - max(row[1][0], box[0]))
                ih = max(0.0, min(row[1][3], box[3]) - max(row[1][1], box[1]))
                a = (row[1][2] - row[1][0]) * (row[1][3] - row[1][1])
                b = (box[2] - box[0]) * (box[3] - box[1])
                ious.append(iw * ih / (a + b - iw * ih))
            hit = False
            if ious:
                j = int(np.argmax(ious))
                if ious[j] >= 0.5 and not used[j]:
                    used[j] = hit = True
            scored.append((row[3], hit))
    scored.sort(key=lambda s: -s[0])
    tp = fp = 0
    points = []
    for _, hit in scored:
        tp, fp = tp + hit, fp + (not hit)
        points.append((tp / len(gt_c), tp / (tp + fp)))
    ap, previous_recall = 0.0, 0.0
    for i, (recall, _) in enumerate(points):
        if recall > previous_recall:
            ap += (recall - previous_recall) * max(p for _, p in points[i:])
            previous_recall = recall
    return ap


def test_random_scenes_match_an_independent_loop_implementation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gt, det, gt_lines, det_lines = [], [], [], []
    scores = rng.permutation(400) / 400.0 + 0.001  # distinct scores: no tie-order question
    for sec in range(902, 942):
        key = f"vid,{sec:04d}"
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 0.6, size=2)
            box = [float(v) for v in (x, y, x + rng.uniform(0.2, 0.4), y + rng.uniform(0.2, 0.4))]
            cls = int(rng.choice([1, 3, 4]))
            gt.append((key, box, cls))
            gt_lines.append(f"{key},{','.join(map(repr, box))},{cls},0")
            for _ in range(rng.integers(0, 4)):
                jitter = (np.asarray(box) + rng.normal(0, 0.06, size=4)).tolist()
                det_cls = cls if rng.uniform() < 0.8 else 5
                det.append((key, jitter, det_cls, float(scores[len(det)])))
                det_lines.append(f"{key},{','.join(map(repr, jitter))},{det_cls},{det[-1][3]!r}")
    files = _files(tmp_path, "\n".join(gt_lines) + "\n", "\n".join(det_lines) + "\n")[:3]
    result = evaluate_files(*files)
    assert len(det) > 60
    for class_id in (1, 3, 4, 5):
        expected = _reference_ap(gt, det, class_id)
        got = result["per_class"][class_id]
        assert (math.isnan(expected) and math.isnan(got)) or got == pytest.approx(expected)
