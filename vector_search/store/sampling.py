"""Fixed-size, seeded samples of a store's rows, so pages that list or plot photos stay the same
size whether the store holds a thousand photos or a million.

A sample is stratified by class (each class gets its share of the sample, at least one row), drawn
with a seeded generator (the same store gives the same sample on every run and in every process),
and returned in row order. A store no bigger than the sample size is taken whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from vector_search.store.store import Store

PICKER_SAMPLE = 1000  # photos offered in a page's photo pickers
MIN_CLASS_PHOTOS = 5  # photos a class folder has on average, at least, for the folders to be classes


def has_class_folders(classes: Sequence[str]) -> bool:
    """Whether a store's photos are labelled by their folders (`classes`: each row's folder name,
    "" at the top): every photo in a subfolder, and at least two of them. Otherwise a flat folder:
    a photo library, with no labels."""
    names = set(classes)
    return "" not in names and len(names) > 1


def trainable_classes(classes: Sequence[str]) -> bool:
    """Whether a classifier can learn the folders as classes: class folders (has_class_folders)
    with MIN_CLASS_PHOTOS photos each on average (what the 80/20 split of training needs)."""
    return has_class_folders(classes) and len(set(classes)) <= len(classes) / MIN_CLASS_PHOTOS


def sample_rows(classes: Sequence[str], size: int, seed: int = 0, live: np.ndarray | None = None) -> np.ndarray:
    """Row numbers (sorted, int64) of a seeded sample of at most `size` rows, stratified by class.

    `classes` gives each row's class; `live` (a bool array, None: every row) the rows that may be
    drawn. Every row when there are no more than `size`.
    """
    rows = np.arange(len(classes)) if live is None else np.flatnonzero(live)
    if len(rows) <= size:
        return rows
    labels = np.asarray(classes)[rows]
    order = np.argsort(labels, kind="stable")  # rows grouped by class
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    quotas = _quotas(counts, size)
    rng = np.random.default_rng(seed)
    picked = [rng.choice(order[s : s + c], q, replace=False) for s, c, q in zip(starts, counts, quotas)]
    return np.sort(rows[np.concatenate(picked)])


def _quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Each class's share of `size` rows: proportional to its count (the remainders go to the
    classes furthest below their share), at least one per class when size allows, at most its count."""
    exact = counts * (size / counts.sum())
    quotas = np.minimum(np.floor(exact).astype(np.int64), counts)
    if size >= len(counts):
        quotas = np.maximum(quotas, 1)  # every class shows up
    while (total := quotas.sum()) != size:  # a few steps: at most one per class
        gap = exact - quotas
        if total > size:
            quotas[np.argmin(np.where(quotas > 1, gap, np.inf))] -= 1
        else:
            quotas[np.argmax(np.where(quotas < counts, gap, -np.inf))] += 1
    return quotas


@dataclass(frozen=True)
class Overview:
    """What a page lists from a store, computed once per loaded store: its distinct classes and a
    sample of its photos (row numbers) for pickers, never a list of all N photos per rerun, and
    whether its folders are classes (has_class_folders)."""

    classes: list[str]
    photos: np.ndarray
    labelled: bool = True

    @classmethod
    def of(cls, store: Store, size: int | None = None) -> Overview:
        """`size` photos at most (None: PICKER_SAMPLE); rows marked deleted (a sharded store's
        `live`) are never offered."""
        classes = store.classes
        photos = sample_rows(classes, PICKER_SAMPLE if size is None else size, live=store.live)
        return cls(sorted(set(classes)), photos, has_class_folders(classes))
