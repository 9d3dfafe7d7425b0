import json

import numpy as np
import pytest
import torch

from vidssl.bench import loader_baselines as bl
from vidssl.bench.decode import decord_available
from vidssl.bench.loader_measure import VideoSpec, make_data, read_rss_mb
from vidssl.cli import main
from vidssl.data.sources import FrameFolder, LmdbVideo, VideoFile, lmdb_store

INDICES = [9, 0, 3, 3, 17, 10]  # unordered, repeated, across keyframes (gop 5)


# The module fixture is expensive: keep this module on one xdist worker so it is built once.
pytestmark = pytest.mark.xdist_group("test_bench_loader")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_loader_data")
    return root, make_data(root, VideoSpec(videos=2, frames=20, height=32, width=48, gop=5))


def test_generated_data_layout_and_frames_differ(data):
    root, media = data
    assert (root / "train.csv").read_text().splitlines() == [
        "Basketball/v_Basketball_g01_c01,Basketball",
        "Diving/v_Diving_g01_c01,Diving",
    ]
    frames = VideoFile(media["video"] / "Diving/v_Diving_g01_c01.avi").read(range(20))
    assert frames.shape == (20, 32, 48, 3)
    assert all(not torch.equal(frames[t], frames[t + 1]) for t in range(19))


def test_whole_video_decode_equals_seek_decode(data):
    _, media = data
    path = media["video"] / "Basketball/v_Basketball_g01_c01.avi"
    whole = bl.WholeVideoDecode(path)
    assert len(whole) == 20
    assert torch.equal(whole.read(INDICES), VideoFile(path).read(INDICES))


def test_decord_source_reads_the_frames_of_an_mp4_without_b_frames(make_video):
    pytest.importorskip("decord")  # optional baseline, not a dependency
    path = make_video("plain.mp4", n_frames=20, gop=5)
    source = bl.DecordVideo(path)
    assert len(source) == 20
    assert torch.equal(source.read(INDICES), VideoFile(path).read(INDICES))
    with pytest.raises(IndexError):
        source.read([20])


def test_coclr_lmdb_reader_pixel_equal_to_lmdb_video(data):
    _, media = data
    name = "Diving/v_Diving_g01_c01"
    video_id = lmdb_store.read_index(media["lmdb"]).lookup()[name]
    env = lmdb_store.shared_reader(media["lmdb"]).env
    images = bl.coclr_lmdb_images(env, video_id, INDICES)
    assert len(images) == len(INDICES)
    ours = LmdbVideo(media["lmdb"], name).read(INDICES).numpy()
    assert np.array_equal(np.stack([np.asarray(im) for im in images]), ours)
    folder = bl.folder_images(str(media["frames"] / name), INDICES)
    assert np.array_equal(np.stack([np.asarray(im) for im in folder]), ours)
    assert np.array_equal(FrameFolder(media["frames"] / name).read(INDICES).numpy(), ours)


def test_pil_null_view_of_a_flat_clip_is_the_normalised_colour():
    from PIL import Image

    colour = (200, 100, 50)
    frames = [Image.new("RGB", (40, 30), colour) for _ in range(3)]
    view = bl.PilCoclrAugment(16).view(frames, strong=False, rng=np.random.default_rng(0))
    assert view.shape == (3, 3, 16, 16)
    for c in range(3):
        expected = (colour[c] / 255 - bl.IMAGENET_MEAN[c]) / bl.IMAGENET_STD[c]
        assert torch.allclose(view[c], torch.full((3, 16, 16), expected), atol=1e-6)


def test_read_rss_mb_of_this_process():
    import os

    rss = read_rss_mb(os.getpid())
    assert set(rss) == {"rss", "anon", "file"}
    assert 10 < rss["rss"] < 100_000 and rss["anon"] <= rss["rss"]


@pytest.mark.slow
def test_bench_loader_quick_report(tmp_path, capsys):
    out = tmp_path / "loader.json"
    assert main(["bench", "loader", "--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    s = report["settings"]
    assert report["benchmark"] == "loader"
    assert {"cpus", "torch", "av", "pillow"} <= set(report["machine"])
    assert (s["batch_size"], s["batches"], s["rounds"], s["seq_len"]) == (2, 2, 1, 8)
    rows = report["results"]
    assert [(r["storage"], r["workers"]) for r in rows] == [
        (storage, w) for storage in ("video", "frames", "lmdb") for w in (0, 2)
    ]
    for r in rows:
        kinds = ["ours", "baseline", "ceiling"] + (
            ["whole_decode_only"] * (r["storage"] == "video")
        )
        for kind in kinds:
            timing = r[kind]
            assert timing["samples"] == 4
            assert timing["samples_per_s"] == pytest.approx(4 / timing["seconds"], rel=1e-12)
        ours = r["ours"]["samples_per_s"]
        assert r["ours_vs_baseline"] == pytest.approx(ours / r["baseline"]["samples_per_s"])
        assert r["ours_vs_ceiling"] == pytest.approx(ours / r["ceiling"]["samples_per_s"])
        vs_base = r["targets"]["ours_vs_baseline"]
        if r["storage"] == "frames":
            assert vs_base is None and "seek_vs_whole_decode_only" not in r
        else:
            assert vs_base["target"] == {"video": 5.0, "lmdb": 2.0}[r["storage"]]
            assert vs_base["met"] == (r["ours_vs_baseline"] >= vs_base["target"])
        vs_ceiling = r["targets"]["ours_vs_ceiling"]
        assert vs_ceiling == {"target": 0.7, "met": r["ours_vs_ceiling"] >= 0.7}
        if r["storage"] == "video":
            whole = r["whole_decode_only"]["samples_per_s"]
            assert r["seek_vs_whole_decode_only"] == pytest.approx(
                r["ceiling"]["samples_per_s"] / whole
            )
        with_decord = r["storage"] == "video" and decord_available()
        assert ("ours_vs_decord" in r) == with_decord
        if with_decord:
            assert r["ours_vs_decord"] == pytest.approx(ours / r["decord"]["samples_per_s"])
            assert r["decord_decode_only"]["samples"] == 4
    (rss,) = report["rss"]
    assert (rss["storage"], rss["workers"], rss["samples"]) == ("lmdb", 2, 16)
    assert len(rss["per_worker"]) == 2
    for worker in rss["per_worker"]:
        assert worker["growth_mb"] == pytest.approx(worker["end_mb"] - worker["start_mb"])
    assert rss["max_growth_mb"] == max(w["growth_mb"] for w in rss["per_worker"])
    assert rss["met"] == (rss["max_growth_mb"] < 50)
    printed = capsys.readouterr().out
    assert "| storage | workers | ours samples/s |" in printed
    first = rows[0]
    assert f"| video | 0 | {first['ours']['samples_per_s']:.2f} |" in printed


def test_bench_loader_bad_options_exit_2(capsys):
    assert main(["bench", "loader", "--size", "big"]) == 2
    assert "--size 'big' is not HEIGHTxWIDTH" in capsys.readouterr().err
    assert main(["bench", "loader", "--storages", "video,tape"]) == 2
    assert "unknown ['tape']" in capsys.readouterr().err
