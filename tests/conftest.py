"""Shared fixtures: the real Pascal Sentences photos and small real subsets of them, GloVe words,
the Lite0 encoder, and an isolated models folder for every test."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vector_search import config

if TYPE_CHECKING:
    from vector_search.imaging.encoders import Encoder
    from vector_search.text.words import WordVectors

ROOT = Path(__file__).resolve().parents[1]
PASCAL = config.pascal_root()
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


def phone_format_copy(src: Path, dst: Path) -> Path:
    """`src` (a JPEG) re-encoded as HEIC or AVIF, by `dst`'s suffix, its EXIF kept (fast encoder
    settings: a Pascal photo takes ~0.1-0.4 s); returns dst."""
    import pillow_heif  # noqa: F401  (imaging.images registers it; imported here for a clear error)
    from PIL import Image

    import vector_search.imaging.images  # noqa: F401  (registers the HEIF plugin)

    with Image.open(src) as image:
        exif = {"exif": image.info["exif"]} if image.info.get("exif") else {}
        if dst.suffix.lower() == ".avif":
            image.save(dst, "AVIF", quality=90, speed=10, **exif)
        else:
            image.save(dst, "HEIF", quality=90, enc_params={"preset": "ultrafast"}, **exif)
    return dst


@pytest.fixture
def small_dataset(tmp_path: Path, pascal_dataset: Path) -> Path:
    """A writable folder of 12 real photos: 4 cats, 4 buses, 4 boats."""
    return copy_subset(tmp_path / "photos", {"cat": 4, "bus": 4, "boat": 4})


@pytest.fixture(scope="session")
def tmp_glove(tmp_path_factory: pytest.TempPathFactory) -> WordVectors:
    """The packaged GloVe 6B 50-d, its cache built once per session in a temp folder (~1 s).

    No word index is built there: the slow tests that need the 400k-word HNSW index (a minute to
    build) use the user's cache (config.cache_root()), where it is built once (test_words, test_app,
    test_fuzz); the quick loop never builds it.
    """
    from vector_search.text.words import load_words

    return load_words(cache_dir=tmp_path_factory.mktemp("glove"))


@pytest.fixture(scope="session")
def lite0() -> Encoder:
    """The real EfficientNet-Lite0 encoder (weights converted once into the user's cache folder, config.cache_root()/encoders), shared."""
    from vector_search.imaging.encoders import get_encoder

    return get_encoder("efficientnet-lite0")


@pytest.fixture(autouse=True)
def models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Trained joint models go to a fresh folder, never the project's models/ (untrained: ConSE)."""
    monkeypatch.setenv("VECTOR_SEARCH_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"
