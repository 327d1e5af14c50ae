"""The metrics on tiny hand-made cases whose answers are known, and `vector-search evaluate` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vector_search.evaluation import evaluate as ev
from vector_search.evaluation import recall
from vector_search.search.index import build_index, exact_index


def angles(*degrees: float) -> np.ndarray:
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


# --- the metrics over rankings ----------------------------------------------------------------------


def test_ranked_relevance_known_rankings() -> None:
    items, labels = angles(0, 30, 60, 90), np.array(["a", "b", "a", "b"])
    # 10 deg: items at 10, 20, 50, 80 deg away -> a b a b; 50 deg: 60, 30, 90, 0 -> a b b a
    got = ev.ranked_relevance(angles(10, 50), ["a", "b"], items * 100, labels)  # lengths do not matter
    assert got.tolist() == [[True, False, True, False], [False, True, True, False]]
    # ties keep item order: both items at 0 deg are equally near, the first one ranks first
    tied = ev.ranked_relevance(angles(0), ["y"], angles(0, 0, 90), ["x", "y", "z"])
    assert tied.tolist() == [[False, True, False]]


def test_ranked_relevance_leave_one_out_drops_the_query_itself() -> None:
    # 0 deg (a), 10 (b), 90 (a), 100 (b); each row ranks the 3 others
    got = ev.ranked_relevance(angles(0, 10, 90, 100), list("abab"), angles(0, 10, 90, 100), list("abab"), leave_one_out=True)
    assert got.tolist() == [
        [False, True, False],  # 0: 10 (b), 90 (a), 100 (b)
        [False, False, True],  # 10: 0 (a), 90 (a), 100 (b)
        [False, False, True],  # 90: 100 (b), 10 (b), 0 (a)
        [False, True, False],  # 100: 90 (a), 10 (b), 0 (a)
    ]
    with pytest.raises(ValueError, match="queries to be the items"):
        ev.ranked_relevance(angles(0), ["a"], angles(0, 10), ["a", "b"], leave_one_out=True)


def test_precisions_at_k_known_values() -> None:
    rel = np.array([[1, 1, 1, 0], [0, 1, 0, 1], [0, 0, 1, 1]], bool)
    assert ev.precisions_at_k(rel, 2).tolist() == [1.0, 0.5, 0.0]
    assert ev.precisions_at_k(rel, 3).tolist() == [1.0, 1 / 3, 1 / 3]
    assert ev.precisions_at_k(rel, 10).tolist() == [0.3, 0.2, 0.2]  # ranks past the end count as misses
    with pytest.raises(ValueError, match="at least 1"):
        ev.precisions_at_k(rel, 0)


def test_average_precisions_known_values() -> None:
    rel = np.array([[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0]], bool)
    expected = [
        1.0,  # perfect
        (1 / 2 + 2 / 4) / 2,  # hits at ranks 2 and 4
        (1 / 3 + 2 / 4) / 2,  # reversed
        (1 / 1 + 2 / 3) / 2,
        0.0,  # no hit
    ]
    assert ev.average_precisions(rel).tolist() == pytest.approx(expected, abs=1e-12)


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


def test_text_to_image_known_values() -> None:
    items = angles(0, 5, 10, 80, 85, 90)
    labels = ["a", "a", "a", "b", "b", "b"]
    queries = angles(5, 85)
    figures = ev.text_to_image(queries, ["a", "b"], items, labels, k=3)
    assert figures["per_class"] == {"a": 1.0, "b": 1.0} and figures["mean_precision_at_k"] == 1.0 and figures["items"] == 6
    # k=4: 5 deg ranks 5, 0, 10, then 80 (75 deg away) before 85 (80 deg): 3 of 4; 85 deg likewise
    assert ev.text_to_image(queries, ["a", "b"], items, labels, k=4)["per_class"] == {"a": 0.75, "b": 0.75}
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
    assert recall.index_recall(exact_index(vectors), vectors, k=10) == 1.0
    assert recall.index_recall(build_index(vectors, "annoy"), vectors, k=10) == 1.0  # search_k >= n: exhaustive
    assert recall.index_recall(exact_index(vectors), vectors, k=5, queries=[0, 3, 7], leave_out_self=False) == 1.0


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
    assert recall.index_recall(FarthestFirst(vectors), vectors, k=3) == 0.0


# --- end to end --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_image_search_on_all_pascal_photos_keeps_the_measured_precision(tmp_path: Path, pascal_dataset: Path, lite0) -> None:
    """Lite0 on ONNX Runtime, the whole pipeline on the 1000 Pascal photos: leave-one-out P@10 and mAP of
    image search are the figures measured with the Keras model (0.564 / 0.413, ENCODER_FIGURES)."""
    from vector_search.imaging.encoders import ENCODER_FIGURES
    from vector_search.store.spaces import ImageSpace
    from vector_search.store.updates import update_store

    store, report = update_store(pascal_dataset, tmp_path / "features", encoder=lite0)
    assert len(store) == 1000 and not report.skipped
    figures = ev.image_retrieval(ImageSpace.of(store).vectors, np.asarray(store.classes))
    measured = ENCODER_FIGURES["efficientnet-lite0"]
    assert abs(figures["precision_at_k"] - measured["p_at_10"]) < 0.0015 and abs(figures["map"] - measured["map"]) < 0.0015


@pytest.mark.slow
def test_evaluate_command_on_a_small_real_subset(tmp_path: Path, pascal_dataset: Path, capsys: pytest.CaptureFixture) -> None:
    from conftest import copy_subset

    from vector_search.cli import main

    dataset = copy_subset(tmp_path / "photos", {"cat": 10, "bus": 10, "boat": 10, "horse": 10, "car": 10})
    store = tmp_path / "features"
    code = main(["evaluate", str(dataset), "--features", str(store), "--holdout-classes", "cat,bus", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    figures = json.loads(out)
    assert figures["photos"] == 50 and figures["holdout_classes"] == ["bus", "cat"] and figures["seed"] == 0
    assert figures["split"]["test_photos"] == 10  # stratified 20%: 2 per class
    lite0 = figures["image_to_image"]["efficientnet-lite0"]
    assert lite0["queries"] == 50 and lite0["precision_at_k"] >= 0.6 and lite0["map"] >= 0.6  # 5 classes: chance is 0.2
    # no VGG16 store was made under this store root, so VGG16 is reported, not measured
    assert set(figures["image_to_image"]["vgg16"]) == {"unavailable"}
    assert set(figures["joint"]) == {"blend", "hybrid", "sentence"}  # no captions here: no captions method
    sentence = figures["joint"]["sentence"]  # the sentence encoder's space (#22)
    assert sentence["tags"]["photos"] == 10 and sentence["zero_shot"]["mean_precision_at_k"] >= 0.5
    assert set(figures["flat"]) == {"glove", "minilm"} and figures["flat"]["minilm"]["class_words_all_photos"] >= 0.5
    for row in figures["joint"].values():
        assert set(row["text_to_image"]["per_class"]) == {"boat", "bus", "car", "cat", "horse"}
        assert row["text_to_image"]["items"] == 10
        assert set(row["zero_shot"]["per_class"]) == {"bus", "cat"}
    blend = figures["joint"]["blend"]
    assert blend["tags"]["photos"] == 10 and blend["tags"]["top5"] >= 0.6
    # ImageNet's words find cats and buses never trained on; the hybrid snaps photos onto the trained classes
    assert blend["zero_shot"]["mean_precision_at_k"] >= 0.5 > figures["joint"]["hybrid"]["zero_shot"]["mean_precision_at_k"]
    # 50 rows: the image and joint Annoy indexes search exhaustively (search_k >= n), so they are exact
    assert figures["index_recall"]["image"]["recall_at_10"] == 1.0 and figures["index_recall"]["joint"]["recall_at_10"] == 1.0
    words = figures["index_recall"]["words"]
    assert words["kind"] == "hnsw" and words["queries"] == 1000 and words["recall_at_10"] >= 0.9



@pytest.mark.slow
def test_evaluate_on_a_flat_folder_reports_what_it_can_measure_without_labels(tmp_path: Path, pascal_dataset: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    """No class folders: no precision (said in one line), and the measurable figures: duplicates (a copy of a file, a
    photo re-saved), metadata, tags, index recall."""
    import shutil

    from PIL import Image

    from vector_search.cli import main

    flat = tmp_path / "photos"
    flat.mkdir()
    for cls in ("cat", "bus", "boat", "horse"):
        for photo in sorted((pascal_dataset / cls).iterdir())[:6]:
            shutil.copy2(photo, flat / f"{cls}-{photo.name}")
    first = sorted(flat.iterdir())
    shutil.copy2(first[0], flat / "copy.jpg")  # the same file twice
    with Image.open(first[1]) as image:  # the same photo re-saved (bench/measure_near_duplicates.py: 0.007-0.11 at q75)
        image.save(flat / "resaved.jpg", quality=90)
    assert main(["evaluate", str(flat), "--features", str(tmp_path / "features"), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["photos"] == 26 and figures["labelled"] is False and "image_to_image" not in figures
    duplicates = figures["duplicates"]
    assert duplicates["identical_files"] == 1 and duplicates["queries"] == 26
    assert duplicates["with_near_duplicate"] == pytest.approx(4 / 26)  # the two pairs, and nothing else
    assert figures["metadata"] == {"with_date": 0.0, "with_camera": 0.0, "cameras": 0}  # Pascal's copies carry no EXIF
    tags = figures["tags"]
    assert tags["model"] == "conse" and tags["photos"] == 26 and 5 <= tags["distinct"] <= 130 and len(tags["most_common"]) == 10
    assert figures["index_recall"]["image"]["recall_at_10"] == 1.0
    report = ev.format_report(figures)
    assert "not measurable" in report and "1 identical files" in report and "index recall@10" in report

def test_report_formats_every_figure() -> None:
    """The plain-text report (`vector-search evaluate` without --json), line by line, from known figures."""
    row = {"kind": "annoy", "params": {"trees": 10}, "queries": 50, "recall_at_10": 1.0}
    joint_row = {
        "text_to_image": {"mean_precision_at_k": 0.75, "per_class": {"cat": 0.5, "dog": 1.0}},
        "tags": {"top1": 0.5, "top5": 0.875},
        "zero_shot": {"mean_precision_at_k": 0.25, "per_class": {"cat": 0.3}},
    }
    figures = {
        "dataset": "/photos", "photos": 50, "classes": 2, "encoder": "efficientnet-lite0", "k": 10, "seed": 0,
        "split": {"test_photos": 10}, "holdout_classes": ["cat"],
        "image_to_image": {"efficientnet-lite0": {"precision_at_k": 0.8, "map": 0.5}, "vgg16": {"unavailable": "no weights"}},
        "joint": {"blend": joint_row}, "index_recall": {"image": row}, "seconds": {"total": 12.4},
    }
    assert ev.format_report(figures).splitlines() == [
        "/photos: 50 photos, 2 classes, encoder efficientnet-lite0",
        "split: stratified 80/20, seed 0 (10 test photos); zero-shot held out: cat",
        "",
        "image -> image (leave-one-out, exact cosine in the searched space, relevant = same class)",
        "  efficientnet-lite0   P@10 0.800   mAP 0.500",
        "  vgg16                unavailable: no weights",
        "",
        "joint space          text->image P@10 (test split)  tags top-1 / top-5 (test split)  zero-shot P@10",
        "  blend                   0.750                 0.500 / 0.875                   0.250",
        "  (tags: a hit if any word of the class name is among the tags)",
        "  blend per class: cat 0.5, dog 1.0",
        "  blend zero-shot: cat 0.3",
        "",
        "index recall@10 against exact search (queries = indexed rows, self left out)",
        "  image    annoy  trees=10                                 1.0000  (50 queries)",
        "",
        "12 s",
    ]


def test_report_adds_the_sentence_table_when_there_are_captions() -> None:
    row = {"kind": "annoy", "params": {"trees": 10}, "queries": 50, "recall_at_10": 1.0}
    joint_row = {
        "text_to_image": {"mean_precision_at_k": 0.75, "per_class": {"cat": 0.5}},
        "tags": {"top1": 0.5, "top5": 0.875},
        "zero_shot": {"mean_precision_at_k": 0.25, "per_class": {"cat": 0.3}},
        "sentences": {"captions": 40, "class_precision_at_10_all_photos": 0.6125, "recall_at_1": 0.125,
                      "recall_at_5": 0.5, "recall_at_10": 0.75, "median_rank": 5.5},
    }
    figures = {
        "dataset": "/photos", "photos": 50, "classes": 2, "encoder": "efficientnet-lite0", "k": 10, "seed": 0,
        "split": {"test_photos": 10}, "holdout_classes": ["cat"], "image_to_image": {},
        "joint": {"captions": joint_row}, "index_recall": {"image": row}, "seconds": {"total": 12.4},
    }
    lines = ev.format_report(figures).splitlines()
    at = lines.index("sentences: each caption of a held-out photo as a query (captions trained on by the captions method only)")
    assert lines[at + 1:at + 3] == [
        "  method             class-P@10    R@1    R@5   R@10  median rank",
        "  captions                0.613  0.125  0.500  0.750            6",
    ]
