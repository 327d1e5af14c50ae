"""The metrics on tiny hand-made cases whose answers are known, and `vector-search evaluate` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vector_search import evaluate as ev
from vector_search.index import build_index, exact_index


def angles(*degrees: float) -> np.ndarray:
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


# --- the per-ranking functions ---------------------------------------------------------------------


def test_precision_at_k_known_values() -> None:
    assert ev.precision_at_k(np.array([1, 1, 1, 0]), 3) == 1.0
    assert ev.precision_at_k(np.array([0, 1, 0, 1]), 2) == 0.5
    assert ev.precision_at_k(np.array([0, 0, 1, 1]), 2) == 0.0
    with pytest.raises(ValueError):
        ev.precision_at_k(np.array([1]), 0)


def test_average_precision_known_values() -> None:
    assert ev.average_precision(np.array([1, 1, 0, 0])) == 1.0  # perfect
    assert ev.average_precision(np.array([0, 1, 0, 1])) == pytest.approx((1 / 2 + 2 / 4) / 2)  # = 0.5
    assert ev.average_precision(np.array([0, 0, 1, 1])) == pytest.approx((1 / 3 + 2 / 4) / 2)  # reversed
    assert ev.average_precision(np.array([0, 0, 0])) == 0.0


def test_vectorised_forms_match_the_per_row_functions() -> None:
    rel = np.random.default_rng(0).random((50, 30)) < 0.3
    rel[0] = False  # a row with no relevant item
    assert np.allclose(ev.average_precisions(rel), [ev.average_precision(r) for r in rel])
    for k in (1, 5, 30):
        assert np.allclose(ev.precisions_at_k(rel, k), [ev.precision_at_k(r, k) for r in rel])


def test_ranked_relevance_agrees_with_cosine_rankings() -> None:
    rng = np.random.default_rng(1)
    q, x = rng.normal(size=(7, 5)), rng.normal(size=(20, 5))
    ql, xl = rng.integers(0, 3, 7), rng.integers(0, 3, 20)
    assert np.array_equal(ev.ranked_relevance(q, ql, x, xl), xl[ev.cosine_rankings(q, x)] == ql[:, None])


# --- image -> image, text -> image, tags -------------------------------------------------------------


def test_image_retrieval_perfect_clusters() -> None:
    vectors = angles(0, 1, 2, 90, 91, 92)
    labels = ["a", "a", "a", "b", "b", "b"]
    figures = ev.image_retrieval(vectors, labels, k=2)
    assert figures["precision_at_k"] == 1.0 and figures["map"] == 1.0 and figures["queries"] == 6


def test_image_retrieval_interleaved_known_value() -> None:
    # 0 deg (a), 10 (b), 90 (a), 100 (b): each query's own row is left out of its ranking.
    # 0: [b a b] AP 1/2; 10: [a a b] AP 1/3; 90: [b b a] AP 1/3; 100: [a b a] AP 1/2.
    figures = ev.image_retrieval(angles(0, 10, 90, 100), ["a", "b", "a", "b"], k=1)
    assert figures["precision_at_k"] == 0.0
    assert figures["map"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 3 + 1 / 2) / 4)


def test_mean_precision_at_k_matches_text_to_image() -> None:
    items = angles(0, 5, 10, 80, 85, 90)
    labels = ["a", "a", "a", "b", "b", "b"]
    queries = angles(5, 85)
    figures = ev.text_to_image(queries, ["a", "b"], items, labels, k=3)
    assert figures["per_class"] == {"a": 1.0, "b": 1.0} and figures["mean_precision_at_k"] == 1.0
    assert ev.mean_precision_at_k(queries, np.array(["a", "b"]), items, np.array(labels), 3) == 1.0
    wrong = ev.text_to_image(angles(85, 5), ["a", "b"], items, labels, k=3)  # queries swapped
    assert wrong["mean_precision_at_k"] == 0.0


def test_tag_accuracy_any_word_of_the_class_counts() -> None:
    tags = [["dining", "room", "chair"], ["dog", "cat", "pet"], ["tree", "sky", "grass"]]
    figures = ev.tag_accuracy(tags, ["dining_table", "cat", "bird"], ks=(1, 5))
    assert figures["top1"] == pytest.approx(1 / 3)  # "dining" of dining_table
    assert figures["top5"] == pytest.approx(2 / 3)  # + cat at rank 2


# --- index recall ------------------------------------------------------------------------------------


def test_recall_of_an_index_against_itself_is_one() -> None:
    vectors = np.random.default_rng(2).normal(size=(200, 16)).astype(np.float32)
    assert ev.index_recall(exact_index(vectors), vectors, k=10) == 1.0
    assert ev.index_recall(build_index(vectors, "annoy"), vectors, k=10) == 1.0  # search_k >= n: exhaustive
    assert ev.index_recall(exact_index(vectors), vectors, k=5, queries=[0, 3, 7], leave_out_self=False) == 1.0


class FarthestFirst:
    """A deliberately wrong index: returns the k FARTHEST rows."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def search_many(self, queries: np.ndarray, k: int):
        sims = ev.normalize(queries) @ ev.normalize(self.vectors).T
        ids = np.argsort(sims, axis=1)[:, :k]
        return ids, 1 - np.take_along_axis(sims, ids, 1)


def test_recall_of_a_wrong_index_is_zero() -> None:
    vectors = angles(*range(0, 180, 5))  # 36 distinct directions
    assert ev.index_recall(FarthestFirst(vectors), vectors, k=3) == 0.0


# --- end to end --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_command_on_a_small_real_subset(
    tmp_path: Path, pascal_dataset: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import ROOT, copy_subset

    from vector_search.cli import main

    dataset = copy_subset(tmp_path / "photos", {"cat": 10, "bus": 10, "boat": 10, "horse": 10, "car": 10})
    store = tmp_path / "features"
    monkeypatch.setenv("VECTOR_SEARCH_FEATURES", str(ROOT / "features"))  # the cached word index
    code = main(["evaluate", str(dataset), "--store", str(store), "--holdout-classes", "cat,bus", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    figures = json.loads(out)
    assert figures["photos"] == 50 and figures["holdout_classes"] == ["bus", "cat"] and figures["seed"] == 0
    lite0 = figures["image_to_image"]["efficientnet-lite0"]
    assert 0.2 < lite0["precision_at_k"] <= 1.0 and 0 < lite0["map"] <= 1.0  # 5 classes: chance is 0.2
    assert "unavailable" in figures["image_to_image"]["vgg16"] or "map" in figures["image_to_image"]["vgg16"]
    assert set(figures["joint"]) == {"blend", "hybrid"}
    for row in figures["joint"].values():
        assert set(row["text_to_image"]["per_class"]) == {"boat", "bus", "car", "cat", "horse"}
        assert set(row["zero_shot"]["per_class"]) == {"bus", "cat"}
        assert 0 <= row["tags"]["top1"] <= row["tags"]["top5"] <= 1
    for name in ("image", "joint", "words"):
        assert 0.5 < figures["index_recall"][name]["recall_at_10"] <= 1.0
    assert figures["index_recall"]["words"]["kind"] == "hnsw"
