import pytest
from tests.data.catalog_fixtures import touch_videos, write_coclr_lmdb, write_lines

from vidssl.data.catalogs import table as catalogs
from vidssl.errors import DataError

SPLIT_LINES = {  # written in this (unsorted) order; classes must come out sorted
    "wave": ["Wave_hello_wave_u_cm_np1_fr_med_0.avi 2", "Wave_bye_wave_f_nm_np1_le_goo_1.avi 1"],
    "brush_hair": [
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1",
        "April_09_brush_hair_u_nm_np1_ba_goo_1.avi 2",
        "Aussie_Brush_hair_brush_hair_h_cm_np1_ri_goo_0.avi 0",
        "Blonde_brush_hair_brush_hair_u_cm_np2_ba_med_3.avi 1",
    ],
    "cartwheel": ["Cartwheel_Tutorial_cartwheel_f_cm_np1_ri_med_0.avi 1"],
}


@pytest.fixture
def hmdb_root(tmp_path):
    for class_name, lines in SPLIT_LINES.items():
        split_dir = tmp_path / "testTrainMulti_7030_splits"
        write_lines(split_dir / f"{class_name}_test_split1.txt", [f"{line} " for line in lines])
        videos = [f"{class_name}/{line.split()[0][:-4]}" for line in lines]
        touch_videos(tmp_path / "hmdb51_org", videos)
    return tmp_path


def test_train_and_test_tags(hmdb_root):
    train = catalogs.load("hmdb51", hmdb_root, "train")
    assert train.class_names == ("brush_hair", "cartwheel", "wave")
    assert train.paths.tolist() == [
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
        "brush_hair/Blonde_brush_hair_brush_hair_u_cm_np2_ba_med_3.avi",
        "cartwheel/Cartwheel_Tutorial_cartwheel_f_cm_np1_ri_med_0.avi",
        "wave/Wave_bye_wave_f_nm_np1_le_goo_1.avi",
    ]
    assert train.labels.tolist() == [0, 0, 1, 2]
    assert train.groups.tolist() == [-1] * 4
    assert train.storage == "video" and train.missing == 0
    test = catalogs.load("hmdb51", hmdb_root, "test")
    assert test.paths.tolist() == [
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi",
        "wave/Wave_hello_wave_u_cm_np1_fr_med_0.avi",
    ]
    assert test.labels.tolist() == [0, 2]


def test_lmdb_media(hmdb_root):
    write_coclr_lmdb(
        hmdb_root / "hmdb51_frame.lmdb",
        {
            "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1": 31,
            "wave/Wave_hello_wave_u_cm_np1_fr_med_0": 17,
        },
    )
    table = catalogs.load("hmdb51", hmdb_root, "test", media=hmdb_root / "hmdb51_frame.lmdb")
    assert table.storage == "lmdb"
    assert table.n_frames.tolist() == [31, 17]
    assert table.paths.tolist() == [
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1",
        "wave/Wave_hello_wave_u_cm_np1_fr_med_0",
    ]


def test_missing_split_files(hmdb_root):
    with pytest.raises(DataError) as error:
        catalogs.load("hmdb51", hmdb_root, "train", split_id=2)
    assert str(error.value) == (
        f"no testTrainMulti_7030_splits/<class>_test_split2.txt under {hmdb_root}; expected the"
        " official HMDB51 split files"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Wave_x_wave_u_cm_np1_fr_med_0.avi 3", "expected '<video>.avi <0|1|2>'"),
        ("Wave_x_wave_u_cm_np1_fr_med_0.avi", "expected '<video>.avi <0|1|2>'"),
        ("other/Wave_x.avi 1", "expected a file name, not a path"),
        ("../Wave_x.avi 1", "contains '..'"),
    ],
)
def test_bad_line(hmdb_root, line, expected):
    split_file = hmdb_root / "testTrainMulti_7030_splits" / "wave_test_split1.txt"
    write_lines(split_file, [*SPLIT_LINES["wave"], line])
    with pytest.raises(DataError) as error:
        catalogs.load("hmdb51", hmdb_root, "train")
    assert str(error.value).startswith(f"{split_file}:3: ")
    assert expected in str(error.value)
