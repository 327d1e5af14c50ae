"""Phone formats (imaging/images.py): HEIC and AVIF made from real JPEGs at test time decode
like their JPEG twins, EXIF orientation included, and index and search like them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import CAT, phone_format_copy
from PIL import Image

from vector_search.engine import Engine
from vector_search.imaging.images import IMAGE_EXTENSIONS, ImageError, find_images, load_image

FORMATS = (".heic", ".avif")


def test_phone_extensions_listed(tmp_path: Path) -> None:
    assert {".heic", ".heif", ".avif"} <= IMAGE_EXTENSIONS
    for suffix in (".HEIC", ".heif", ".avif"):
        phone_format_copy(CAT, tmp_path / f"x{suffix}")
    assert find_images(tmp_path)[0] == ["x.HEIC", "x.avif", "x.heif"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_decodes_like_its_jpeg_twin(tmp_path: Path, suffix: str) -> None:
    twin = phone_format_copy(CAT, tmp_path / f"x{suffix}")
    jpeg, phone = load_image(CAT), load_image(twin, min_side=256)
    assert phone.mode == "RGB" and phone.size == jpeg.size
    diff = np.abs(np.asarray(phone, np.float32) - np.asarray(jpeg, np.float32)).mean()
    assert diff < 4, diff  # lossy re-encoding at quality 90: a few levels of 255 on average


@pytest.mark.parametrize("suffix", FORMATS)
def test_exif_orientation_applied(tmp_path: Path, suffix: str) -> None:
    rotated = tmp_path / "rotated.jpg"
    with Image.open(CAT) as photo:
        exif = photo.getexif()
        exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
        photo.save(rotated, "JPEG", quality=95, exif=exif)
        upright = photo.transpose(Image.Transpose.ROTATE_270)
    out = load_image(phone_format_copy(rotated, tmp_path / f"rotated{suffix}"))
    assert out.size == upright.size == load_image(rotated).size
    diff = np.abs(np.asarray(out, np.float32) - np.asarray(upright.convert("RGB"), np.float32)).mean()
    assert diff < 6, diff  # turned the right way (the wrong way differs by ~60)


@pytest.mark.parametrize("suffix", FORMATS)
def test_damaged_phone_file_is_a_clear_error(tmp_path: Path, suffix: str) -> None:
    good = phone_format_copy(CAT, tmp_path / f"x{suffix}")
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageError, match="corrupt|not an image"):
        load_image(cut)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.mark.slow
def test_twin_folder_indexes_whole_and_each_phone_photo_finds_its_twin(tmp_path: Path, pascal_dataset: Path) -> None:
    """8 Pascal photos of 4 classes, each beside its HEIC or AVIF twin: nothing skipped, every
    phone photo within 0.02 cosine distance of its JPEG twin, and that twin its first answer."""
    folder = tmp_path / "photos"
    twins = []
    for i, cls in enumerate(["cat", "bus", "boat", "dog"] * 2):
        src = sorted((pascal_dataset / cls).iterdir())[i]
        (folder / cls).mkdir(parents=True, exist_ok=True)
        jpeg = folder / cls / src.name
        jpeg.write_bytes(src.read_bytes())
        twins.append((phone_format_copy(src, jpeg.with_suffix(FORMATS[i % 2])), jpeg))
    engine = Engine(tmp_path / "features")
    report = engine.index(folder)
    assert report.skipped == [] and len(report.added) == 16
    store = engine.store
    for phone, jpeg in twins:
        a, b = (store.vectors[store.find(str(p))] for p in (phone, jpeg))
        assert 1 - _cosine(a, b) < 0.02, (phone.name, 1 - _cosine(a, b))
        first = engine.similar_images(str(phone), k=1)[0]
        assert os.path.samefile(first.item, jpeg), (phone.name, first)
