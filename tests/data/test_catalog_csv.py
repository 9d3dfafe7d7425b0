import pytest
from tests.data.catalog_fixtures import (
    touch_videos,
    write_coclr_lmdb,
    write_frame_folder,
    write_lines,
)

from vidssl.data.catalogs import table as catalogs
from vidssl.errors import DataError, UserError

FRAME_ROOT = "/scratch/local/UCF101/frame"  # where CoCLR's CSVs point; absent here
COCLR_ROWS = [
    ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01", 120),
    ("HandStandPushups/v_HandStandPushups_g08_c01", 95),
    ("YoYo/v_YoYo_g11_c01", 201),
]
CLASS_IND = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]


@pytest.fixture
def coclr_root(tmp_path):
    rows = [f"{FRAME_ROOT}/{video}/,{count}" for video, count in COCLR_ROWS]
    write_lines(tmp_path / "train_split01.csv", rows, newline="\n")
    write_lines(tmp_path / "ClassInd.txt", CLASS_IND, newline="\n")
    return tmp_path


def test_coclr_csv_over_video_files_keeps_csv_counts(coclr_root):
    touch_videos(coclr_root / "videos", [video for video, _ in COCLR_ROWS])
    table = catalogs.load("coclr_csv", coclr_root, "train", media=coclr_root / "videos")
    assert table.paths.tolist() == [f"{video}.avi" for video, _ in COCLR_ROWS]
    assert table.n_frames.tolist() == [120, 95, 201]
    assert table.labels.tolist() == [0, 1, 2]
    assert table.groups.tolist() == [8, 108, 211]
    assert table.class_names == tuple(CLASS_IND)


def test_coclr_csv_over_lmdb_and_flow_frames(coclr_root):
    lmdb_counts = {"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01": 119, "YoYo/v_YoYo_g11_c01": 200}
    write_coclr_lmdb(coclr_root / "flow.lmdb", lmdb_counts)
    flow = catalogs.load("coclr_csv", coclr_root, "train", media=coclr_root / "flow.lmdb")
    assert flow.paths.tolist() == list(lmdb_counts)
    assert flow.n_frames.tolist() == [119, 200]  # the LMDB's __vlen__, not the RGB CSV's count
    assert flow.labels.tolist() == [0, 2] and flow.missing == 1
    for video, count in COCLR_ROWS:
        write_frame_folder(coclr_root / "flow" / video, 3 + count % 4, "flow_{:05d}.jpg")
    frames = catalogs.load("coclr_csv", coclr_root, "train", media=coclr_root / "flow")
    assert frames.storage == "frames"
    assert frames.n_frames.tolist() == [3, 6, 4]  # counted in the folders


def test_coclr_csv_default_media_and_sorted_classes(tmp_path):
    rows = [f"frame/{video}/,{count}" for video, count in COCLR_ROWS]
    write_lines(tmp_path / "test_split02.csv", rows, newline="\n")
    for video, _ in COCLR_ROWS:
        write_frame_folder(tmp_path / "frame" / video, 2)
    table = catalogs.load("coclr_csv", tmp_path, "test", split_id=2)
    assert table.media == str((tmp_path / "frame").absolute())
    assert table.class_names == ("ApplyEyeMakeup", "HandStandPushups", "YoYo")
    assert table.n_frames.tolist() == [2, 2, 2]


def test_coclr_csv_errors(coclr_root):
    with pytest.raises(DataError, match=r"no media for coclr_csv train found at /scratch/"):
        catalogs.load("coclr_csv", coclr_root, "train")
    with pytest.raises(DataError, match=r"test_split01.csv not found; expected CoCLR's"):
        catalogs.load("coclr_csv", coclr_root, "test")
    rows = [f"{FRAME_ROOT}/YoYo/v_YoYo_g11_c01/,5", f"{FRAME_ROOT}/Juggle/v_Juggle_g01_c01/,5"]
    csv_file = write_lines(coclr_root / "train_split02.csv", rows)
    with pytest.raises(DataError) as error:
        catalogs.load("coclr_csv", coclr_root, "train", split_id=2)
    assert str(error.value) == (f"{csv_file}:2: unknown class 'Juggle' (not in ClassInd.txt)")
    write_lines(csv_file, [f"{FRAME_ROOT}/YoYo/v_YoYo_g11_c01/,many"])
    with pytest.raises(DataError, match=r"train_split02.csv:1: .*expected 'path/,n_frames'"):
        catalogs.load("coclr_csv", coclr_root, "train", split_id=2)
    write_lines(csv_file, [f"{FRAME_ROOT}/YoYo/../,5"])
    with pytest.raises(DataError, match=r"train_split02.csv:1: path .* contains '..'"):
        catalogs.load("coclr_csv", coclr_root, "train", split_id=2)


def test_generic_csv_names_with_header(tmp_path):
    write_lines(
        tmp_path / "train.csv",
        ["path,label", "walk/a.mp4,walk", "run/b/,run", "walk/c,walk"],
        newline="\n",
    )
    touch_videos(tmp_path, ["walk/a", "walk/c"], ".mp4")
    touch_videos(tmp_path, ["run/b"], ".mkv")
    table = catalogs.load("csv", tmp_path, "train")
    assert table.class_names == ("run", "walk")
    assert table.paths.tolist() == ["walk/a.mp4", "run/b.mkv", "walk/c.mp4"]
    assert table.labels.tolist() == [1, 0, 1]
    assert table.groups.tolist() == [-1, -1, -1]


def test_generic_csv_integer_labels_and_class_file(tmp_path):
    write_lines(tmp_path / "val.csv", ["x/a.avi,2", "x/b.avi,0"], newline="\n")
    touch_videos(tmp_path / "m", ["x/a", "x/b"])
    table = catalogs.load("csv", tmp_path, "val", media=tmp_path / "m")
    assert table.class_names == ("0", "1", "2")
    assert table.labels.tolist() == [2, 0]
    write_lines(tmp_path / "classInd.txt", ["1 jump", "2 skip", "3 hop"])
    write_lines(tmp_path / "test.csv", ["x/a.avi,hop", "x/b.avi,1"], newline="\n")
    table = catalogs.load("csv", tmp_path, "test", media=tmp_path / "m")
    assert table.class_names == ("jump", "skip", "hop")
    assert table.labels.tolist() == [2, 1]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["a/x.avi,walk", "a/y.avi,3"], ":2: mixes class names and integer labels"),
        (["a/x.avi,walk", "/abs/y.avi,walk"], ":2: absolute path '/abs/y.avi'"),
        (["a/x.avi,walk", "a/../../y.avi,walk"], ":2: path 'a/../../y.avi' contains '..'"),
        (["a/x.avi,walk,extra"], ":1: 3 fields; expected 'path,label'"),
        (["a/x.avi,-1"], ":1: label -1 out of range"),
    ],
)
def test_generic_csv_errors(tmp_path, lines, expected):
    csv_file = write_lines(tmp_path / "train.csv", lines)
    with pytest.raises(DataError) as error:
        catalogs.load("csv", tmp_path, "train")
    assert str(error.value).startswith(f"{csv_file}{expected}")


def test_generic_csv_unknown_class_with_class_list(tmp_path):
    csv_file = write_lines(tmp_path / "train.csv", ["a/x.avi,walk", "a/y.avi,swim"])
    with pytest.raises(DataError) as error:
        catalogs.load("csv", tmp_path, "train", class_names=["walk", "run"])
    assert str(error.value) == f"{csv_file}:2: unknown class 'swim' (not in the class list)"
    write_lines(csv_file, ["a/x.avi,7"])
    with pytest.raises(DataError, match=r"train.csv:1: label 7 out of range; expected 0..1"):
        catalogs.load("csv", tmp_path, "train", class_names=["walk", "run"])


def test_generic_csv_has_one_split_number(tmp_path):
    write_lines(tmp_path / "train.csv", ["a/x.avi,walk"])
    with pytest.raises(UserError, match=r"split_id 2 out of range for csv; expected 1$"):
        catalogs.load("csv", tmp_path, "train", split_id=2)
