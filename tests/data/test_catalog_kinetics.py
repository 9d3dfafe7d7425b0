import logging

import pytest
from tests.data.catalog_fixtures import touch_videos, write_lines

from vidssl.data.catalogs import table as catalogs
from vidssl.errors import DataError

FOOTBALL = "passing American football (in game)"
CSV_LINES = [
    "label,youtube_id,time_start,time_end,split",
    "air drumming,--nQbRBEz2s,104,114,train",
    "abseiling,-3B32lodo2M,59,69,train",
    f'"{FOOTBALL}",a_B-c9,0,10,train',
    "abseiling,0347ZoDXyP0,7,17,train",
    "air drumming,-VtLx-mcPds,38.0,48.0,train",
    "abseiling,-XdB7-EKalo,1,11,val",  # another split: skipped
    "air drumming,missing0001,1,11,train",
    "abseiling,missing0002,5,15,train",
]


@pytest.fixture
def k400_root(tmp_path):
    write_lines(tmp_path / "train.csv", CSV_LINES, newline="\n")
    media = tmp_path / "train"
    touch_videos(media, ["air_drumming/--nQbRBEz2s_000104_000114"], ".mp4")  # underscores
    touch_videos(media, ["abseiling/-3B32lodo2M_000059_000069"], ".mkv")
    touch_videos(media, [f"{FOOTBALL}/a_B-c9_000000_000010"], ".webm")  # spaces
    touch_videos(media, ["abseiling/0347ZoDXyP0_000007_000017"], ".mp4")
    touch_videos(media, ["air_drumming/-VtLx-mcPds_000038_000048"], ".mp4")
    touch_videos(media, ["abseiling/-XdB7-EKalo_000001_000011"], ".mp4")
    return tmp_path


def test_parse_bind_and_count_missing(k400_root, caplog):
    with caplog.at_level(logging.WARNING, logger="vidssl.data.sources.media"):
        table = catalogs.load("kinetics400", k400_root, "train")
    assert table.class_names == ("abseiling", "air drumming", FOOTBALL)
    assert table.paths.tolist() == [
        "air_drumming/--nQbRBEz2s_000104_000114.mp4",
        "abseiling/-3B32lodo2M_000059_000069.mkv",
        f"{FOOTBALL}/a_B-c9_000000_000010.webm",
        "abseiling/0347ZoDXyP0_000007_000017.mp4",
        "air_drumming/-VtLx-mcPds_000038_000048.mp4",
    ]
    assert table.labels.tolist() == [1, 0, 2, 0, 1]
    assert table.n_frames.tolist() == [-1] * 5
    assert table.missing == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 of 7 videos" in warnings[0]
    assert "air drumming/missing0001_000001_000011" in warnings[0]
    assert "abseiling/missing0002_000005_000015" in warnings[0]


def test_explicit_annotations_and_classes(k400_root):
    classes = k400_root / "classes.txt"
    write_lines(classes, ["abseiling", "air drumming", "zumba", FOOTBALL])
    table = catalogs.load(
        "kinetics400",
        k400_root,
        "val",
        annotations=k400_root / "train.csv",
        class_names=classes,
        media=k400_root / "train",
    )
    assert table.paths.tolist() == ["abseiling/-XdB7-EKalo_000001_000011.mp4"]
    assert table.labels.tolist() == [0]
    assert table.class_names == ("abseiling", "air drumming", "zumba", FOOTBALL)


def test_bad_csv(k400_root):
    with pytest.raises(DataError, match=r"Kinetics CSV val.csv .* not found under .*annotations="):
        catalogs.load("kinetics400", k400_root, "val")
    bad = write_lines(k400_root / "bad.csv", ["label,youtube_id,start,end"])
    with pytest.raises(DataError, match=r"bad.csv:1: header .*expected label,youtube_id"):
        catalogs.load("kinetics400", k400_root, "train", annotations=bad)
    bad = write_lines(k400_root / "bad.csv", [CSV_LINES[0], CSV_LINES[1], "abseiling,x,a,9,train"])
    with pytest.raises(DataError, match=r"bad.csv:3: time_start 'a' is not a number"):
        catalogs.load("kinetics400", k400_root, "train", annotations=bad)
    classes = ["abseiling"]
    with pytest.raises(DataError, match=r"train.csv:2: unknown class 'air drumming'"):
        catalogs.load("kinetics400", k400_root, "train", class_names=classes)
