"""Draft-mode JPEG decoding (images.load_image's min_side) and the overlapped indexing pipeline,
on real photos (Pascal's, and the committed cat) and on the same photos re-encoded at phone size (4000x3000)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import CAT, copy_subset
from PIL import Image

from vector_search.imaging.images import find_images, load_image
from vector_search.store.updates import update_store

PHOTOS = ["cat/2008_000116.jpg", "bus/2008_000032.jpg", "boat/2008_000195.jpg"]


def _phone_copy(src: Path, dst: Path) -> Path:
    """`src` re-encoded at phone size (4000x3000, or 3000x4000 if portrait), Pillow quality 90."""
    with Image.open(src) as image:
        size = (4000, 3000) if image.width >= image.height else (3000, 4000)
        image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(dst, "JPEG", quality=90)
    return dst


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.slow
def test_pascal_photos_decode_exactly_as_before(pascal_dataset: Path) -> None:
    """No Pascal photo is twice Lite0's 256 in both sides, so all 1000 decode to the same pixels:
    same vectors, leave-one-out P@10 unchanged."""
    for rel in find_images(pascal_dataset)[0]:
        full, drafted = load_image(pascal_dataset / rel), load_image(pascal_dataset / rel, min_side=256)
        assert drafted.size == full.size, rel
        assert np.array_equal(np.asarray(drafted), np.asarray(full)), rel


def test_draft_only_at_twice_the_side(tmp_path: Path) -> None:
    """A 4000x3000 JPEG decodes at 1/8 (500x375: short side still >= 256), at 1/2 for 1000; with 1600
    it would fall below, so it decodes at full size; MPOs are reduced too, PNGs never."""
    phone = _phone_copy(CAT, tmp_path / "phone.jpg")
    assert load_image(phone, min_side=256).size == (500, 375)
    assert load_image(phone, min_side=224).size == (500, 375)
    assert load_image(phone, min_side=1000).size == (2000, 1500)  # 1/4 would leave 750 < 1000
    assert load_image(phone, min_side=1600).size == (4000, 3000)
    png, mpo = tmp_path / "phone.png", tmp_path / "phone.mpo"  # MPO: the JPEG pair some cameras write
    Image.open(phone).save(png)
    Image.open(phone).save(mpo, "MPO", save_all=True, append_images=[Image.open(phone)])
    assert load_image(png, min_side=256).size == (4000, 3000)
    assert load_image(mpo, min_side=256).size == (500, 375)


def test_draft_respects_exif_rotation(tmp_path: Path) -> None:
    phone = _phone_copy(CAT, tmp_path / "phone.jpg")
    rotated = tmp_path / "rotated.jpg"
    with Image.open(phone) as image:
        exif = image.getexif()
        exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
        image.save(rotated, "JPEG", quality=90, exif=exif)
    assert load_image(rotated, min_side=256).size == (375, 500)


@pytest.mark.slow
def test_phone_photo_embeds_like_its_full_decode(tmp_path: Path, pascal_dataset: Path, lite0) -> None:
    """Measured on 20 phone-size Pascal photos: cosine 0.9973-0.9993 between draft and full
    decoding (forcing a reduction below the resize size gives ~0.95), so 0.995 is a tight bound."""
    phones = [_phone_copy(pascal_dataset / p, tmp_path / f"{i}.jpg") for i, p in enumerate(PHOTOS)]
    full = lite0.embed(np.stack([lite0.preprocess(load_image(p)) for p in phones]))
    drafted_images = [load_image(p, min_side=lite0.decode_side) for p in phones]
    assert all(max(image.size) == 500 for image in drafted_images)  # decoded at 1/8, not 4000 wide
    drafted = lite0.embed(np.stack([lite0.preprocess(image) for image in drafted_images]))
    assert _cosine(full, drafted).min() >= 0.995


@pytest.mark.slow
def test_overlapped_indexing_matches_sequential_and_skips_bad(tmp_path: Path, pascal_dataset: Path, lite0) -> None:
    """update_store (decoding in threads one batch ahead of the model) gives the vectors of a plain
    decode-then-embed loop, phone photos included, and still skips a bad file with its reason."""
    folder = copy_subset(tmp_path / "photos", {"cat": 3, "bus": 3})
    _phone_copy(pascal_dataset / PHOTOS[2], folder / "bus" / "phone.jpg")
    (folder / "cat" / "broken.jpg").write_bytes(b"not a jpeg at all")
    store, report = update_store(folder, tmp_path / "store", encoder=lite0, batch_size=3)
    assert report.skipped == [(os.path.join("cat", "broken.jpg"), "not an image (unrecognised or empty file)")]
    assert len(store) == 7
    sequential = lite0.embed(np.stack([lite0.preprocess(load_image(p, min_side=lite0.decode_side)) for p in store.paths]))
    np.testing.assert_allclose(store.vectors, sequential, atol=1e-5)
