import multiprocessing
import os
import pickle
import random
from io import BytesIO

import lmdb
import msgpack
import numpy as np
import pytest
from PIL import Image

from vidssl.data.sources import LmdbVideo, lmdb_store
from vidssl.data.sources.lmdb_store import coclr_video_order, read_index, shared_reader, write_lmdb
from vidssl.errors import CorruptVideoError, DataError, UserError
from vidssl.utils.jpeg import encode_jpeg

# 'Jump-Rope' sorts before 'Jump/...' as a path ('-' < '/') but after 'Jump' as a class name,
# so the id shuffle input (sorted paths) and the record order (class by class) differ.
LAYOUT = {
    "Jump": {"v_Jump_g01_c01": 3, "v_Jump_g02_c01": 5},
    "Jump-Rope": {"v_JumpRope_g01_c01": 2, "v_JumpRope_g01_c02": 4},
    "Archery": {"v_Archery_g01_c01": 11, "v_Archery_g03_c02": 0},
}


def make_frames_root(root, layout=LAYOUT, size=(24, 32)):
    rng = np.random.default_rng(0)
    for cls, videos in layout.items():
        for video, n_frames in videos.items():
            folder = root / cls / video
            folder.mkdir(parents=True)
            for i in range(n_frames):
                image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
                (folder / f"image_{i + 1:05d}.jpg").write_bytes(encode_jpeg(image, quality=90))
    (root / ".hidden" / "x").mkdir(parents=True)
    (root / "Jump" / ".v_Jump_g09_c01.partial-abc").mkdir()
    return root


def all_names(layout=LAYOUT):
    return [f"{cls}/{video}" for cls, videos in layout.items() for video in videos]


class CoclrStyleReader:
    """Reads an LMDB the way CoCLR's dataset code does (msgpack raw=True, '%09d' % order index)."""

    def __init__(self, db_path):
        self.env = lmdb.open(
            str(db_path),
            subdir=os.path.isdir(db_path),
            readonly=True,
            lock=False,
            readahead=False,
            meminit=False,
        )
        with self.env.begin(write=False) as txn:
            self.order = [name.decode() for name in msgpack.loads(txn.get(b"__order__"), raw=True)]
            self.keys = msgpack.loads(txn.get(b"__keys__"), raw=True)
            self.vlen = msgpack.loads(txn.get(b"__vlen__"), raw=True)
            self.length = msgpack.loads(txn.get(b"__len__"), raw=True)

    def raw_frames(self, vname):
        with self.env.begin(write=False) as txn:
            record = txn.get(("%09d" % self.order.index(vname)).encode("ascii"))  # noqa: UP031
        return msgpack.loads(record, raw=True)

    def frames(self, vname):
        return [
            np.asarray(Image.open(BytesIO(raw)).convert("RGB")) for raw in self.raw_frames(vname)
        ]


@pytest.fixture
def frames_root(tmp_path):
    return make_frames_root(tmp_path / "frames")


@pytest.fixture
def db_path(tmp_path, frames_root):
    path = tmp_path / "out" / "ucf_frame.lmdb"
    summary = write_lmdb(frames_root, path, progress=False)
    assert summary.videos == 6 and summary.frames == 3 + 5 + 2 + 4 + 11
    assert summary.empty == ("Archery/v_Archery_g03_c02",)
    return path


def test_id_order_matches_coclr_shuffle():
    expected = sorted(all_names())
    random.seed(0)
    random.shuffle(expected)
    assert coclr_video_order(all_names()) == expected
    assert coclr_video_order(all_names(), seed=1) != expected


def test_coclr_style_reader_reads_our_lmdb(db_path, frames_root):
    reader = CoclrStyleReader(db_path)
    names = all_names()
    shuffled = sorted(names)
    random.seed(0)
    random.shuffle(shuffled)
    assert reader.order == shuffled and reader.length == 6
    # records were written class by class (sorted classes, sorted videos): __keys__ and __vlen__
    by_class = [f"{c}/{v}" for c in sorted(LAYOUT) for v in sorted(LAYOUT[c])]
    assert reader.keys == [b"%09d" % shuffled.index(name) for name in by_class]
    assert reader.vlen == [LAYOUT[name.split("/")[0]][name.split("/")[1]] for name in by_class]
    coclr_frames = {}
    for name in names:
        files = sorted((frames_root / name).glob("*.jpg"))
        assert reader.raw_frames(name) == [f.read_bytes() for f in files]  # bytes, not re-encoded
        coclr_frames[name] = reader.frames(name)
    reader.env.close()  # py-lmdb allows one open environment per file and process

    for name in names:
        ours = LmdbVideo(db_path, name)
        assert len(ours) == len(coclr_frames[name])
        if coclr_frames[name]:
            indices = list(range(len(ours)))[::-1]
            expected = np.stack(coclr_frames[name])[indices]
            np.testing.assert_array_equal(ours.read(indices).numpy(), expected)
    assert (db_path.parent / "ucf_frame.lmdb-order").read_text() == "\n".join(shuffled)
    assert sorted(os.listdir(db_path.parent)) == ["ucf_frame.lmdb", "ucf_frame.lmdb-order"]


def test_read_index_aligns_vlen_with_ids(db_path):
    index = read_index(db_path)
    assert index.order.tolist() == coclr_video_order(all_names())
    assert index.keys.tolist() == [b"%09d" % i for i in range(6)]
    expected = [LAYOUT[name.split("/")[0]][name.split("/")[1]] for name in index.order]
    assert index.vlen.tolist() == expected
    # rewriting the database in place (new ids with another seed) is picked up by open readers
    write_lmdb(db_path.parent.parent / "frames", db_path, seed=1, progress=False)
    assert read_index(db_path).order.tolist() == coclr_video_order(all_names(), seed=1)


def test_lmdb_video_by_name_and_id(db_path):
    order = coclr_video_order(all_names())
    video_id = order.index("Archery/v_Archery_g01_c01")
    by_name, by_id = LmdbVideo(db_path, "Archery/v_Archery_g01_c01/"), LmdbVideo(db_path, video_id)
    assert len(by_name) == len(by_id) == 11
    np.testing.assert_array_equal(by_name.read([10, 0, 0]).numpy(), by_id.read([10, 0, 0]).numpy())
    assert by_name.read([1]).shape == (1, 24, 32, 3)
    assert LmdbVideo(db_path, video_id, min_short_side=12).read([1]).shape == (1, 12, 16, 3)
    with pytest.raises(IndexError):
        by_name.read([11])
    assert len(LmdbVideo(db_path, "Archery/v_Archery_g03_c02")) == 0
    with pytest.raises(CorruptVideoError, match="v_Nope"):
        len(LmdbVideo(db_path, "Jump/v_Nope"))
    with pytest.raises(CorruptVideoError, match=r"missing\.lmdb"):
        LmdbVideo(db_path.parent / "missing.lmdb", 0).read([0])


def _read_in_child(video, parent_env, queue):
    frames = video.read([2, 0]).numpy()
    own_reader = shared_reader(video.db_path)
    queue.put((frames, os.getpid(), own_reader.pid, own_reader.env is not parent_env))


def test_lmdb_video_pickles_and_works_after_fork(db_path):
    video = LmdbVideo(db_path, "Jump/v_Jump_g02_c01")
    expected = video.read([2, 0]).numpy()  # opens the environment in this process
    parent_env = shared_reader(db_path).env
    assert not any(isinstance(v, lmdb.Environment) for v in vars(video).values())
    clone = pickle.loads(pickle.dumps(video))
    np.testing.assert_array_equal(clone.read([2, 0]).numpy(), expected)

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_child, args=(video, parent_env, queue))
    child.start()
    frames, child_pid, reader_pid, own_env = queue.get(timeout=30)
    child.join(timeout=30)
    assert child.exitcode == 0 and child_pid != os.getpid() and reader_pid == child_pid and own_env
    assert shared_reader(db_path).env is parent_env  # the parent's reader is untouched
    np.testing.assert_array_equal(video.read([2, 0]).numpy(), expected)
    np.testing.assert_array_equal(frames, expected)


def test_reads_msgpack_06_style_lmdb_and_flags_bad_records(tmp_path):
    """Old CoCLR files pack str and bytes alike as msgpack raw; the order is not id order."""
    path = tmp_path / "old.lmdb"
    jpeg = encode_jpeg(np.full((8, 8, 3), 77, np.uint8))
    env = lmdb.open(str(path), subdir=False, map_size=1 << 20)
    pack = lambda value: msgpack.packb(value, use_bin_type=False)  # noqa: E731
    keys = [b"000000001", b"000000000", b"000000002", b"000000003"]
    with env.begin(write=True) as txn:
        txn.put(keys[0], pack([jpeg, jpeg]))
        txn.put(keys[1], pack([jpeg]))
        txn.put(keys[2], b"\xc1 not msgpack")
        txn.put(keys[3], pack([jpeg]))
        txn.put(b"__keys__", pack(keys))
        txn.put(b"__len__", pack(4))
        txn.put(b"__order__", pack(["A/a", "B/b", "C/garbage", "D/short"]))
        txn.put(b"__vlen__", pack([2, 1, 5, 3]))  # aligned with __keys__; D/short has 1 frame
    env.close()
    assert len(LmdbVideo(path, "A/a")) == 1 and len(LmdbVideo(path, "B/b")) == 2
    assert LmdbVideo(path, 1).read([1]).numpy().mean() == pytest.approx(77, abs=2)
    with pytest.raises(CorruptVideoError, match="C/garbage"):
        LmdbVideo(path, "C/garbage").read([0])
    assert LmdbVideo(path, "D/short").read([0]).shape == (1, 8, 8, 3)
    with pytest.raises(CorruptVideoError, match="1 of 3 frames"):
        LmdbVideo(path, "D/short").read([2])
    with pytest.raises(CorruptVideoError, match="video id 9"):
        len(LmdbVideo(path, 9))


def test_writer_grows_map_and_is_atomic(tmp_path, frames_root, monkeypatch):
    monkeypatch.setattr(lmdb_store, "INITIAL_MAP_SIZE", 32 << 10)  # far smaller than the data
    out = tmp_path / "grown.lmdb"
    write_lmdb(frames_root, out, progress=False)
    assert CoclrStyleReader(out).raw_frames("Jump/v_Jump_g02_c01") == [
        f.read_bytes() for f in sorted((frames_root / "Jump/v_Jump_g02_c01").glob("*.jpg"))
    ]

    calls = []

    def failing_list_frames(folder):
        calls.append(folder)
        if len(calls) == 3:
            raise OSError("disk went away")
        return sorted(folder.glob("*.jpg"))

    monkeypatch.setattr(lmdb_store, "list_frames", failing_list_frames)
    with pytest.raises(OSError, match="disk went away"):
        write_lmdb(frames_root, tmp_path / "broken.lmdb", progress=False)
    assert sorted(os.listdir(tmp_path)) == ["frames", "grown.lmdb", "grown.lmdb-order"]


def test_writer_user_errors(tmp_path):
    with pytest.raises(DataError, match="missing"):
        write_lmdb(tmp_path / "missing", tmp_path / "x.lmdb", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Class/video"):
        write_lmdb(tmp_path / "empty", tmp_path / "x.lmdb", progress=False)
    make_frames_root(tmp_path / "f")
    (tmp_path / "dir.lmdb").mkdir()
    with pytest.raises(UserError, match="directory"):
        write_lmdb(tmp_path / "f", tmp_path / "dir.lmdb", progress=False)
