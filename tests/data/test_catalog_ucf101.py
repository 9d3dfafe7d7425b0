import json
import logging

import numpy as np
import pytest
from tests.data.catalog_fixtures import (
    UCF_CLASSES,
    touch_videos,
    ucf_video_ids,
    write_coclr_lmdb,
    write_frame_folder,
    write_lines,
    write_ucf101_lists,
)

from vidssl.data.catalogs import table as catalogs
from vidssl.errors import DataError, UserError

TRAIN_IDS = [
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01",
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02",
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01",
    "HandStandPushups/v_HandStandPushups_g08_c01",
    "HandStandPushups/v_HandStandPushups_g10_c03",
    "YoYo/v_YoYo_g11_c01",
]
TRAIN_LABELS = [0, 0, 0, 1, 1, 2]
TRAIN_GROUPS = [8, 8, 9, 108, 110, 211]  # label * 100 + gXX
TRAIN_FRAMES = [5, 6, 7, 3, 4, 2]


@pytest.fixture
def ucf_root(tmp_path):
    """Official lists + UCF-101/ videos (HandStandPushups folder) + a stray TSP_Flows folder."""
    write_ucf101_lists(tmp_path)
    touch_videos(tmp_path / "UCF-101", ucf_video_ids())
    stray = tmp_path / "UCF-101" / "TSP_Flows"
    for video_id in ucf_video_ids():  # frame folders that must not turn the media into 'frames'
        write_frame_folder(stray / video_id.split("/")[1], 2)
    (stray / "readme.txt").write_text("stray")
    return tmp_path


def test_train_split_over_video_files(ucf_root):
    table = catalogs.load("ucf101", ucf_root, "train")
    assert table.storage == "video"
    assert table.media == str((ucf_root / "UCF-101").absolute())
    assert table.paths.tolist() == [f"{video}.avi" for video in TRAIN_IDS]
    assert table.labels.tolist() == TRAIN_LABELS
    assert table.groups.tolist() == TRAIN_GROUPS
    assert table.n_frames.tolist() == [-1] * 6
    assert table.class_names == UCF_CLASSES
    assert table.missing == 0 and len(table) == 6
    assert table.paths.dtype.kind == "U"
    for array in (table.labels, table.n_frames, table.groups):
        assert array.dtype == np.int64


def test_test_split_lines_without_ids(ucf_root):
    table = catalogs.load("ucf101", ucf_root, "test")
    assert table.paths.tolist() == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "HandStandPushups/v_HandStandPushups_g02_c01.avi",
        "YoYo/v_YoYo_g01_c02.avi",
    ]
    assert table.labels.tolist() == [0, 1, 2]
    assert table.groups.tolist() == [1, 102, 201]


def test_handstand_spelling_in_list_and_folder(ucf_root):
    # A list that uses the file spelling for the class folder still maps to classInd's class 2.
    lists = ucf_root / "ucfTrainTestlist"
    write_lines(lists / "testlist02.txt", ["HandStandPushups/v_HandStandPushups_g02_c01.avi"])
    write_lines(lists / "trainlist02.txt", ["YoYo/v_YoYo_g11_c01.avi 3"])
    table = catalogs.load("ucf101", ucf_root, "test", split_id=2)
    assert table.paths.tolist() == ["HandStandPushups/v_HandStandPushups_g02_c01.avi"]
    assert table.labels.tolist() == [1]
    assert table.class_names[1] == "HandstandPushups"


def test_frames_rgb_and_flow_align(tmp_path):
    write_ucf101_lists(tmp_path)
    for video_id, count in zip(TRAIN_IDS, TRAIN_FRAMES):
        write_frame_folder(tmp_path / "frames" / video_id, count)
        write_frame_folder(tmp_path / "flow" / video_id, count - 1, "flow_{:05d}.jpg")
    # PCL/twostreamfusion naming works alike.
    write_frame_folder(tmp_path / "frames2" / TRAIN_IDS[0], 4, "frame{:06d}.jpg")
    rgb = catalogs.load("ucf101", tmp_path, "train", media=tmp_path / "frames")
    flow = catalogs.load("ucf101", tmp_path, "train", media=tmp_path / "flow")
    assert rgb.storage == flow.storage == "frames"
    assert rgb.paths.tolist() == TRAIN_IDS
    assert flow.paths.tolist() == rgb.paths.tolist()
    assert rgb.n_frames.tolist() == TRAIN_FRAMES
    assert flow.n_frames.tolist() == [n - 1 for n in TRAIN_FRAMES]
    assert flow.labels.tolist() == rgb.labels.tolist() == TRAIN_LABELS
    pcl = catalogs.load("ucf101", tmp_path, "train", media=tmp_path / "frames2")
    assert pcl.paths.tolist() == [TRAIN_IDS[0]] and pcl.n_frames.tolist() == [4]
    assert pcl.missing == 5


def test_empty_frame_folder_is_kept_and_logged(tmp_path, caplog):
    write_ucf101_lists(tmp_path)
    for video_id, count in zip(TRAIN_IDS, TRAIN_FRAMES):
        write_frame_folder(tmp_path / "frames" / video_id, count if video_id[0] != "Y" else 0)
    with caplog.at_level(logging.WARNING, logger="vidssl.data.sources.media"):
        table = catalogs.load("ucf101", tmp_path, "train", media=tmp_path / "frames")
    assert table.n_frames.tolist() == [*TRAIN_FRAMES[:-1], 0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1 frame folders" in warnings[0]
    assert "YoYo/v_YoYo_g11_c01" in warnings[0]


def test_lmdb_storage_and_missing_video(tmp_path, caplog):
    write_ucf101_lists(tmp_path)
    counts = dict(zip(TRAIN_IDS[:-1], TRAIN_FRAMES[:-1]))  # YoYo is not in the LMDB
    counts["TSP_Flows/v_Stray_g01_c01"] = 9
    write_coclr_lmdb(tmp_path / "ucf101_frame.lmdb", counts)
    with caplog.at_level(logging.WARNING, logger="vidssl.data.sources.media"):
        table = catalogs.load("ucf101", tmp_path, "train", media=tmp_path / "ucf101_frame.lmdb")
    assert table.storage == "lmdb"
    assert table.paths.tolist() == TRAIN_IDS[:-1]
    assert table.n_frames.tolist() == TRAIN_FRAMES[:-1]
    assert table.labels.tolist() == TRAIN_LABELS[:-1]
    assert table.groups.tolist() == TRAIN_GROUPS[:-1]
    assert table.missing == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "YoYo/v_YoYo_g11_c01" in warnings[0]


def test_video_source_json_groups(ucf_root):
    mapping = {
        "v_ApplyEyeMakeup_g08": 5,
        "v_ApplyEyeMakeup_g09": 6,
        "v_HandStandPushups_g08": 40,
        "v_HandStandPushups_g10": 41,
        "v_YoYo_g11": 99,
    }
    path = ucf_root / "video_source.json"
    path.write_text(json.dumps(mapping))
    table = catalogs.load("ucf101", ucf_root, "train", video_source=path)
    assert table.groups.tolist() == [5, 5, 6, 40, 41, 99]
    del mapping["v_YoYo_g11"]
    with pytest.raises(DataError, match="no entry 'v_YoYo_g11'"):
        catalogs.load("ucf101", ucf_root, "train", video_source=mapping)


def test_lmdb_single_file_and_renamed_directory(tmp_path):
    write_ucf101_lists(tmp_path)
    counts = dict(zip(TRAIN_IDS, TRAIN_FRAMES))
    write_coclr_lmdb(tmp_path / "rgb.lmdb", counts, subdir=False)
    write_coclr_lmdb(tmp_path / "store", counts)  # a directory with data.mdb, any name
    for media in (tmp_path / "rgb.lmdb", tmp_path / "store"):
        table = catalogs.load("ucf101", tmp_path, "train", media=media)
        assert table.storage == "lmdb"
        assert table.n_frames.tolist() == TRAIN_FRAMES


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_root_and_split_file(tmp_path, ucf_root):
    with pytest.raises(DataError) as error:
        catalogs.load("ucf101", tmp_path / "nowhere", "train")
    message = _one_line(error)
    assert str(tmp_path / "nowhere") in message and "ucfTrainTestlist/" in message
    with pytest.raises(DataError) as error:
        catalogs.load("ucf101", ucf_root, "train", split_id=3)
    assert _one_line(error) == (
        f"{ucf_root / 'ucfTrainTestlist' / 'trainlist03.txt'} not found; expected"
        f" ucfTrainTestlist/trainlist03.txt under {ucf_root}"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Juggling/v_Juggling_g01_c01.avi 2", "unknown class 'Juggling' (not in classInd.txt)"),
        ("../YoYo/v_YoYo_g01_c01.avi 3", "contains '..'"),
        ("/data/YoYo/v_YoYo_g01_c01.avi 3", "absolute path"),
        ("YoYo/v_YoYo_g01_c01.avi 2", "class id 2 but classInd.txt gives 'YoYo' id 3"),
        ("YoYo/v_YoYo_g01_c01.avi x", "class id 'x' is not an integer"),
        ("YoYo/v_YoYo_g01_c01.avi 3 x", "3 fields; expected 'Class/v_X.avi [<class id>]'"),
        ("v_YoYo_g01_c01.avi 3", "path 'v_YoYo_g01_c01.avi'; expected Class/v_X.avi"),
    ],
)
def test_bad_split_line_names_file_and_line(ucf_root, line, expected):
    split_file = write_lines(
        ucf_root / "ucfTrainTestlist" / "trainlist02.txt",
        ["YoYo/v_YoYo_g11_c01.avi 3", "", line],
    )
    with pytest.raises(DataError) as error:
        catalogs.load("ucf101", ucf_root, "train", split_id=2)
    message = _one_line(error)
    assert message.startswith(f"{split_file}:3: ")
    assert expected in message


def test_bad_names_and_numbers(ucf_root):
    with pytest.raises(UserError, match=r"unknown dataset 'ucf102'; known datasets: .*hmdb51.*"):
        catalogs.load("ucf102", ucf_root, "train")
    for name in ("ucf101", "hmdb51", "kinetics400", "coclr_csv", "csv"):
        assert name in catalogs.known()
    with pytest.raises(UserError, match=r"split_id 4 out of range for ucf101; expected 1-3"):
        catalogs.load("ucf101", ucf_root, "train", split_id=4)
    with pytest.raises(UserError, match=r"unknown split 'val' for ucf101"):
        catalogs.load("ucf101", ucf_root, "val")
    with pytest.raises(UserError, match=r"unknown option\(s\) flow for dataset 'ucf101'"):
        catalogs.load("ucf101", ucf_root, "train", flow=True)


def test_missing_or_empty_media(ucf_root, tmp_path):
    with pytest.raises(DataError, match=r"media .*nope does not exist"):
        catalogs.load("ucf101", ucf_root, "train", media=ucf_root / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"none of the 6 videos listed in .*trainlist01.txt is in"):
        catalogs.load("ucf101", ucf_root, "train", media=empty)
    (ucf_root / "UCF-101").rename(ucf_root / "elsewhere")
    with pytest.raises(DataError, match=r"no media for ucf101 train found at .*UCF-101"):
        catalogs.load("ucf101", ucf_root, "train")
