"""sampling.py: fixed-size, seeded, class-stratified samples of a store's rows (what the app's map
and photo pickers show of a big store)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from vector_search.store.sampling import sample_rows

# the class of each row of a store of 2,000 photos in three unequal classes, rows interleaved
CLASSES = ["cat", "bus", "bus", "boat"] * 400 + ["cat"] * 400


def test_a_store_no_bigger_than_the_sample_is_taken_whole() -> None:
    assert sample_rows(CLASSES, 2000).tolist() == list(range(2000))
    assert sample_rows(CLASSES, 5000).tolist() == list(range(2000))


def test_a_sample_is_sorted_seeded_and_stratified() -> None:
    rows = sample_rows(CLASSES, 100)
    assert len(rows) == 100 == len(set(rows.tolist())) and rows.tolist() == sorted(rows.tolist())
    assert Counter(CLASSES[i] for i in rows) == {"cat": 40, "bus": 40, "boat": 20}  # 800 / 800 / 400 of 2,000
    np.testing.assert_array_equal(rows, sample_rows(CLASSES, 100))  # the same on every call
    assert not np.array_equal(rows, sample_rows(CLASSES, 100, seed=1))


def test_every_class_shows_when_the_sample_allows() -> None:
    classes = ["cat"] * 997 + ["bus", "boat", "cow"]
    rows = sample_rows(classes, 10)
    assert len(rows) == 10 and {classes[i] for i in rows} == {"cat", "bus", "boat", "cow"}
    assert len(sample_rows(classes, 2)) == 2  # fewer rows than classes: some classes miss out


def test_rows_marked_deleted_are_never_drawn() -> None:
    live = np.arange(2000) % 3 != 0
    rows = sample_rows(CLASSES, 50, live=live)
    assert len(rows) == 50 and live[rows].all()
    assert sample_rows(CLASSES, 5000, live=live).tolist() == np.flatnonzero(live).tolist()
