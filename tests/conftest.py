"""Shared fixtures: the committed fixture photos (tests/fixtures: 12 real photos of 3 classes with
captions, a GloVe slice) for the quick loop, the real Pascal Sentences photos for the slow tests,
GloVe words, the Lite0 encoder, and an isolated models folder for every test.

Without Pascal Sentences a test that needs it is skipped with a message, except in CI (CI=true),
where it fails: CI must run the full suite."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from vector_search import config

if TYPE_CHECKING:
    from vector_search.imaging.encoders import Encoder
    from vector_search.text.words import WordVectors

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PHOTOS = FIXTURES / "dataset"  # cat, cup, rocket: 4 photos each (tests/fixtures/README.md)
CAT = PHOTOS / "cat" / "chelsea-1.jpg"  # one real photo, 256x170
GLOVE_SLICE = FIXTURES / "glove.slice.50d.txt"
PASCAL = config.pascal_root()
DATASET = PASCAL / "dataset"


def need_pascal() -> Path:
    """The Pascal Sentences photos folder; without it, skip the test (fail it in CI)."""
    if not DATASET.is_dir():
        message = f"Pascal Sentences not found at {DATASET}: set VECTOR_SEARCH_PASCAL"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return DATASET


@pytest.fixture(scope="session")
def pascal_dataset() -> Path:
    """The 1000 real Pascal Sentences photos (read-only)."""
    return need_pascal()


def copy_subset(dst: Path, classes: dict[str, int], source: Path | None = None) -> Path:
    """Copy the first n photos of each class of `source` (default: Pascal Sentences, which the test
    must need: see `pascal_dataset`) into dst/<class>/; returns dst."""
    source = source or need_pascal()
    for name, n in classes.items():
        (dst / name).mkdir(parents=True, exist_ok=True)
        photos = sorted((source / name).iterdir())
        assert len(photos) >= n, f"{source / name} has {len(photos)} photos, the test wants {n}"
        for photo in photos[:n]:
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


def copy_fixtures(dst: Path, classes: dict[str, int] | None = None) -> Path:
    """Copy the committed fixture photos (all, or the first n of some classes) and their captions
    into dst/dataset/<class>/ and dst/sentence/<class>/; returns the dataset folder."""
    classes = classes or {c.name: 4 for c in PHOTOS.iterdir()}
    dataset = copy_subset(dst / "dataset", classes, source=PHOTOS)
    for photo in dataset.glob("*/*"):
        (dst / "sentence" / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(FIXTURES / "sentence" / photo.parent.name / f"{photo.stem}.txt", dst / "sentence" / photo.parent.name)
    return dataset


@pytest.fixture
def fixture_dataset(tmp_path: Path) -> Path:
    """A writable folder of the 12 committed real photos (4 cats, 4 cups, 4 rockets), captions beside it."""
    return copy_fixtures(tmp_path / "fixtures")


@pytest.fixture
def small_dataset(tmp_path: Path, pascal_dataset: Path) -> Path:
    """A writable folder of 12 real Pascal photos: 4 cats, 4 buses, 4 boats (slow tests)."""
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


@pytest.fixture(autouse=True)
def no_warm_up_left() -> Iterator[None]:
    """The app's warm-up threads (app/state.py) end with the test that started them: one left running
    would load models, and log, during the next test."""
    yield
    for thread in threading.enumerate():
        if thread.name == "vector_search-warm-up":
            thread.join(300)
