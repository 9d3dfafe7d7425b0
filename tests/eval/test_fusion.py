import numpy as np
import torch

from vidssl.eval.fusion import align_ids, fuse_probabilities, fuse_similarities
from vidssl.eval.results import RECORD_KEYS, make_record, markdown_table, write_results


def test_probabilities_are_averaged_after_alignment():
    rgb = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    flow = torch.tensor([[0.3, 0.7], [0.6, 0.4]])
    fused, ids = fuse_probabilities(rgb, flow, np.array(["a", "b", "c"]), np.array(["c", "a"]))
    assert ids.tolist() == ["a", "c"]  # b has no flow
    torch.testing.assert_close(fused, torch.tensor([[0.75, 0.25], [0.4, 0.6]]))


def test_similarities_are_summed_after_alignment():
    sim_rgb = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    sim_flow = torch.tensor([[10.0, 20.0], [30.0, 40.0]])  # rows q2, q1; columns g3, g1
    fused, q, g = fuse_similarities(
        sim_rgb,
        sim_flow,
        (np.array(["q1", "q2"]), np.array(["q2", "q1"])),
        (np.array(["g1", "g2", "g3"]), np.array(["g3", "g1"])),
    )
    assert q.tolist() == ["q1", "q2"] and g.tolist() == ["g1", "g3"]
    # q1,g1 = 1 + 40; q1,g3 = 3 + 30; q2,g1 = 4 + 20; q2,g3 = 6 + 10
    torch.testing.assert_close(fused, torch.tensor([[41.0, 33.0], [24.0, 16.0]]))
    assert [a.tolist() for a in align_ids(np.array([5, 6]), np.array([6]))] == [[1], [0]]


def test_record_keys_and_files(tmp_path):
    record = make_record(
        "retrieval",
        dataset={"name": "ucf101", "split_id": 1},
        protocol={"name": "coclr", "seq_len": 32},
        encoders={"rgb": {"sha256": "ab"}},
        results={"rgb": {"R@1": 0.5}, "fused": {"R@1": 0.625}},
        skipped={"rgb_test": ["x.avi"], "rgb_train": []},
        settings={},
    )
    assert tuple(record) == RECORD_KEYS
    assert record["skipped"] == {"count": 1, "rgb_test": ["x.avi"], "rgb_train": []}
    json_path, md_path = write_results(record, tmp_path, "r")
    assert json_path.read_text().startswith("{") and md_path.read_text() == markdown_table(record)
    assert "| fused | 62.50 |" in md_path.read_text()
