"""Retrieval maths against hand-worked examples and an independent sort-based implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidssl.errors import ConfigError, UserError
from vidssl.eval import retrieval

# Gallery items are scaled basis vectors, so a query's cosine with item i is proportional to the
# query's i-th weight; the scales (3, 0.5, ...) would change a raw dot-product ranking.
GALLERY = torch.diag(torch.tensor([3.0, 0.5, 1.0, 2.0, 1.0]))
GALLERY_LABELS = [0, 1, 0, 2, 1]
QUERIES = torch.tensor(
    [
        [0.6, 0.1, 0.2, 0.05, 0.05],  # label 0: order g0(0) ...             → first positive rank 0
        [0.4, 0.1, 0.3, 0.2, 0.0],  # label 1: g0(0) g2(0) g3(2) g1(1) g4(1)  → rank 3
        [0.1, 0.4, 0.2, 0.0, 0.3],  # label 2: g1 g4 g2 g0, g3(2) last        → rank 4
    ]
)
QUERY_LABELS = [0, 1, 2]


def test_hand_worked_three_queries_five_gallery_items():
    recall = retrieval.recall_at_k(
        QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 2, 3, 4, 5, 10)
    )
    assert recall == pytest.approx({1: 1 / 3, 2: 1 / 3, 3: 1 / 3, 4: 2 / 3, 5: 1.0, 10: 1.0})
    assert list(recall) == [1, 2, 3, 4, 5, 10]
    neighbours = retrieval.nearest_neighbours(QUERIES, GALLERY, k=5)
    assert neighbours.tolist() == [[0, 2, 1, 3, 4], [0, 2, 3, 1, 4], [1, 4, 2, 0, 3]]


def test_numpy_inputs_and_string_labels_give_the_same_result():
    names = np.array(["walk", "run", "jump"])
    recall = retrieval.recall_at_k(
        QUERIES.numpy(), names[QUERY_LABELS], GALLERY.numpy(), names[GALLERY_LABELS], ks=(1, 4)
    )
    assert recall == pytest.approx({1: 1 / 3, 4: 2 / 3})


def test_ties_are_broken_by_lower_gallery_index():
    gallery = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.5, 0.0], [0.0, 1.0]])  # g0..g2 tie at cos 1
    query = torch.tensor([[1.0, 0.0]])
    assert retrieval.recall_at_k(query, [0], gallery, [1, 0, 0, 0], ks=(1, 2)) == {1: 0.0, 2: 1.0}
    assert retrieval.recall_at_k(query, [0], gallery, [0, 1, 1, 1], ks=(1,)) == {1: 1.0}
    assert retrieval.nearest_neighbours(query, gallery, k=4).tolist() == [[0, 1, 2, 3]]
    # A tie at the k-th place: the lower indices win the remaining slots.
    similarity = torch.tensor([[0.2, 0.5, 0.9, 0.5, 0.5]])
    top3 = retrieval.nearest_neighbours_from_similarity(similarity, k=3)
    assert top3.tolist() == [[2, 1, 3]]


def test_k_larger_than_gallery_and_missing_class():
    gallery = torch.eye(3)
    queries = torch.tensor([[0.0, 0.2, 1.0], [1.0, 0.0, 0.0]])
    recall = retrieval.recall_at_k(queries, [0, 7], gallery, [0, 1, 2], ks=(1, 3, 50))
    # Query 0 finds class 0 last (rank 2); class 7 is not in the gallery: a miss at every k.
    assert recall == pytest.approx({1: 0.0, 3: 0.5, 50: 0.5})
    assert retrieval.nearest_neighbours(queries, gallery, k=50).shape == (2, 3)


def test_fused_two_stream_similarity():
    rgb = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3]])
    flow = torch.tensor([[0.0, 0.7, 0.6], [0.9, 0.1, 0.2]])
    query_labels, gallery_labels = [2, 0], [0, 1, 2]
    # Fused = [[0.9, 0.8, 1.1], [1.1, 0.9, 0.5]]: both top-1 neighbours share the query's label.
    fused = retrieval.recall_at_k_from_similarity(rgb + flow, query_labels, gallery_labels, ks=(1,))
    rgb_only = retrieval.recall_at_k_from_similarity(rgb, query_labels, gallery_labels, ks=(1,))
    flow_only = retrieval.recall_at_k_from_similarity(flow, query_labels, gallery_labels, ks=(1,))
    assert (fused, rgb_only, flow_only) == ({1: 1.0}, {1: 0.0}, {1: 0.5})
    assert retrieval.nearest_neighbours_from_similarity(rgb + flow, k=2).tolist() == [
        [2, 0],
        [0, 1],
    ]


def sorted_recall(similarity: torch.Tensor, query_labels, gallery_labels, ks) -> dict[int, float]:
    """Independent R@k: a stable descending sort of every row, then label look-ups."""
    order = torch.sort(similarity, dim=1, descending=True, stable=True).indices
    matches = torch.as_tensor(gallery_labels)[order] == torch.as_tensor(query_labels)[:, None]
    return {k: matches[:, :k].any(dim=1).double().mean().item() for k in ks}


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
def test_chunked_equals_sorted_reference_with_many_ties(chunk_size):
    generator = torch.Generator().manual_seed(chunk_size)
    similarity = torch.randint(-3, 4, (23, 40), generator=generator).float()  # heavy ties
    query_labels = torch.randint(0, 6, (23,), generator=generator)
    gallery_labels = torch.randint(0, 5, (40,), generator=generator)  # class 5 is missing
    ks = (1, 2, 5, 10, 40, 60)
    recall = retrieval.recall_at_k_from_similarity(
        similarity, query_labels, gallery_labels, ks, chunk_size=chunk_size
    )
    assert recall == pytest.approx(sorted_recall(similarity, query_labels, gallery_labels, ks))
    neighbours = retrieval.nearest_neighbours_from_similarity(similarity, 9, chunk_size=chunk_size)
    expected = torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, :9]
    assert torch.equal(neighbours, expected)


def test_feature_recall_chunked_equals_unchunked_and_reference():
    generator = torch.Generator().manual_seed(0)
    queries, gallery = (
        torch.randn(37, 16, generator=generator),
        torch.randn(90, 16, generator=generator),
    )
    query_labels = torch.randint(0, 8, (37,), generator=generator)
    gallery_labels = torch.randint(0, 8, (90,), generator=generator)
    ks = retrieval.DEFAULT_KS
    whole = retrieval.recall_at_k(queries, query_labels, gallery, gallery_labels, chunk_size=1000)
    chunked = retrieval.recall_at_k(queries, query_labels, gallery, gallery_labels, chunk_size=4)
    assert whole == chunked
    reference = sorted_recall(
        retrieval.cosine_similarity(queries, gallery), query_labels, gallery_labels, ks
    )
    assert whole == pytest.approx(reference)
    assert 0.0 < whole[1] < whole[50] <= 1.0
    assert torch.equal(
        retrieval.nearest_neighbours(queries, gallery, 6, chunk_size=5),
        retrieval.nearest_neighbours(queries, gallery, 6),
    )


def test_center_and_normalize_example():
    feats = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0]])
    # Mean (2, 2/3); centred rows (-1, -2/3), (1, -2/3), (0, 4/3); norms √13/3, √13/3, 4/3.
    root13 = math.sqrt(13)
    expected = torch.tensor([[-3 / root13, -2 / root13], [3 / root13, -2 / root13], [0.0, 1.0]])
    torch.testing.assert_close(retrieval.center_and_normalize(feats), expected)


def test_mean_over_windows_example():
    windows = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [0.0, 5.0]])
    ids = ["b", "a", "b", "a"]
    # L2 per window: (.6, .8), (1, 0), (0, 1), (0, 1) → b = (.3, .9), a = (.5, .5).
    feats, order = retrieval.mean_over_windows(windows, ids)
    assert order.tolist() == ["b", "a"]
    torch.testing.assert_close(feats, torch.tensor([[0.3, 0.9], [0.5, 0.5]]))
    raw, _ = retrieval.mean_over_windows(windows, ids, normalize_windows=False)
    torch.testing.assert_close(raw, torch.tensor([[1.5, 3.0], [0.5, 2.5]]))


def test_video_features_per_protocol():
    windows = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [0.0, 5.0], [2.0, 0.0]])
    ids = np.array([10, 11, 10, 11, 12])
    pcl, pcl_ids = retrieval.video_features(windows, ids, "pcl")
    torch.testing.assert_close(pcl, torch.tensor([[1.5, 3.0], [0.5, 2.5], [2.0, 0.0]]))
    assert pcl_ids.tolist() == [10, 11, 12]
    coclr, _ = retrieval.video_features(windows, ids, "coclr")
    pooled, _ = retrieval.mean_over_windows(windows, ids)
    torch.testing.assert_close(coclr, retrieval.center_and_normalize(pooled))
    torch.testing.assert_close(torch.linalg.norm(coclr, dim=1), torch.ones(3))
    assert retrieval.get_protocol("full").center
    with pytest.raises(ConfigError, match="coclr, full, pcl"):
        retrieval.video_features(windows, ids, "knn")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: retrieval.recall_at_k(torch.zeros(0, 4), [], torch.ones(2, 4), [0, 1]),
            "query_feats must be a non-empty",
        ),
        (
            lambda: retrieval.recall_at_k(torch.ones(1, 4), [0], torch.ones(2, 3), [0, 1]),
            "differ in width",
        ),
        (
            lambda: retrieval.recall_at_k(torch.ones(1, 4), [0, 1], torch.ones(2, 4), [0, 1]),
            "one label per item",
        ),
        (
            lambda: retrieval.recall_at_k(torch.ones(1, 4), [-1], torch.ones(2, 4), [0, 1]),
            "negative class ids",
        ),
        (
            lambda: retrieval.recall_at_k(torch.ones(1, 4), [0], torch.ones(2, 4), [0, 1], ks=(0,)),
            "positive integers",
        ),
        (
            lambda: retrieval.recall_at_k(
                torch.full((1, 4), math.nan), [0], torch.ones(2, 4), [0, 1]
            ),
            "NaN",
        ),
        (lambda: retrieval.recall_at_k_from_similarity(torch.zeros(2, 0), [0, 1], []), "non-empty"),
        (lambda: retrieval.nearest_neighbours(torch.ones(1, 4), torch.ones(2, 4), k=0), "k must"),
        (lambda: retrieval.mean_over_windows(torch.ones(3, 2), [0, 1]), "one id per window"),
    ],
)
def test_bad_inputs_raise_user_error(call, message):
    with pytest.raises(UserError, match=message):
        call()


@pytest.mark.gpu
def test_cuda_retrieval_equals_cpu():
    generator = torch.Generator().manual_seed(1)
    queries, gallery = (
        torch.randn(50, 8, generator=generator),
        torch.randn(300, 8, generator=generator),
    )
    query_labels = torch.randint(0, 5, (50,), generator=generator)
    gallery_labels = torch.randint(0, 5, (300,), generator=generator)
    cpu = retrieval.recall_at_k(queries, query_labels, gallery, gallery_labels, chunk_size=16)
    cuda = retrieval.recall_at_k(
        queries.cuda(), query_labels.cuda(), gallery.cuda(), gallery_labels.cuda(), chunk_size=16
    )
    assert cuda == pytest.approx(cpu)
    similarity = torch.randint(-2, 3, (50, 300), generator=generator).float()
    assert torch.equal(
        retrieval.nearest_neighbours_from_similarity(similarity.cuda(), 7).cpu(),
        retrieval.nearest_neighbours_from_similarity(similarity, 7),
    )
