"""Shared fixtures: the real Pascal Sentences photos and small real subsets of them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PASCAL = Path(os.environ.get("VECTOR_SEARCH_PASCAL", ROOT.parent / "shared" / "pascal_sentences"))
DATASET = PASCAL / "dataset"


@pytest.fixture(scope="session")
def pascal_dataset() -> Path:
    """The 1000 real Pascal Sentences photos (read-only)."""
    if not DATASET.is_dir():
        pytest.fail(f"Pascal Sentences not found at {DATASET}: set VECTOR_SEARCH_PASCAL")
    return DATASET


def copy_subset(dst: Path, classes: dict[str, int]) -> Path:
    """Copy the first n photos of each class into dst/<class>/; returns dst."""
    for name, n in classes.items():
        (dst / name).mkdir(parents=True, exist_ok=True)
        for photo in sorted((DATASET / name).iterdir())[:n]:
            shutil.copy2(photo, dst / name / photo.name)
    return dst


@pytest.fixture
def small_dataset(tmp_path: Path, pascal_dataset: Path) -> Path:
    """A writable folder of 12 real photos: 4 cats, 4 buses, 4 boats."""
    return copy_subset(tmp_path / "photos", {"cat": 4, "bus": 4, "boat": 4})
