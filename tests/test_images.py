"""images.py: finding, decoding (good and bad files) and streaming batches of real photos."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CAT, PHOTOS
from PIL import Image

from vector_search.imaging.images import ImageError, class_of, find_images, iter_batches, load_image, thumbnail


def test_find_images_recursive_sorted_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    shutil.copy(CAT, tmp_path / "a" / "deep" / "x.JPG")
    shutil.copy(CAT, tmp_path / "a" / "y.png")
    shutil.copy(CAT, tmp_path / "a" / ".secret.jpg")
    shutil.copy(CAT, tmp_path / ".hidden" / "z.jpg")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    paths, problems = find_images(tmp_path)
    assert paths == [os.path.join("a", "deep", "x.JPG"), os.path.join("a", "y.png")]
    assert problems == []
    assert class_of(paths[0]) == "deep"


def test_find_images_on_the_fixtures() -> None:
    paths, problems = find_images(PHOTOS)
    assert len(paths) == 12 and problems == [] and {class_of(p) for p in paths} == {"cat", "cup", "rocket"}


@pytest.mark.slow
def test_find_images_on_pascal(pascal_dataset: Path) -> None:
    paths, _ = find_images(pascal_dataset)
    assert len(paths) == 1000
    assert len({class_of(p) for p in paths}) == 20


def test_find_images_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    os.symlink("self.jpg", tmp_path / "d" / "self.jpg")  # a file symlink pointing at itself
    paths, _ = find_images(tmp_path)
    assert paths == [os.path.join("d", "self.jpg")]
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / paths[0])


def test_find_images_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        find_images(tmp_path / "nope")


def test_load_real_photo() -> None:
    image = load_image(CAT)
    assert image.mode == "RGB" and image.size == (256, 170)


def _save(image: Image.Image, path: Path, **kw) -> Path:
    image.save(path, **kw)
    return path


@pytest.mark.parametrize(
    "mode, fmt",
    [("L", "PNG"), ("P", "GIF"), ("RGBA", "PNG"), ("LA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "BMP")],
)
def test_modes_become_rgb(tmp_path: Path, mode: str, fmt: str) -> None:
    photo = Image.open(CAT).convert("RGB")
    if mode == "I;16":
        array = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
        image = Image.fromarray(array)  # 16-bit grayscale
    else:
        image = photo.convert(mode)
    path = _save(image, tmp_path / f"x.{fmt.lower()}", format=fmt)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == photo.size
    gray = np.asarray(out.convert("L"), dtype=np.float32)
    reference = np.asarray(photo.convert("L"), dtype=np.float32)
    if mode not in ("1", "RGBA", "LA"):  # 16-bit must be scaled, not clipped to white
        assert abs(gray.mean() - reference.mean()) < 12


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    out = load_image(_save(image, tmp_path / "clear.png"))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_exif_rotation_applied(tmp_path: Path) -> None:
    photo = Image.open(CAT)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = _save(photo, tmp_path / "rotated.jpg", exif=exif)
    assert load_image(path).size == (photo.height, photo.width)


def test_bad_files_give_clear_reasons(tmp_path: Path) -> None:
    data = (CAT).read_bytes()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.jpg").write_text("hello, I am not a JPEG")
    cases = {
        "empty.jpg": "not an image",
        "truncated.jpg": "corrupt",
        "text.jpg": "not an image",
        "missing.jpg": "not found",
    }
    for name, reason in cases.items():
        with pytest.raises(ImageError, match=reason):
            load_image(tmp_path / name)
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_decompression_bomb_refused(tmp_path: Path) -> None:
    path = _save(Image.new("1", (20000, 20000)), tmp_path / "bomb.png")
    with pytest.raises(ImageError, match="too large"):
        load_image(path)


def test_upload_decoded_from_memory() -> None:
    assert load_image(io.BytesIO((CAT).read_bytes())).mode == "RGB"
    with pytest.raises(ImageError):
        load_image(io.BytesIO(b"\x89PNG garbage"))


def test_iter_batches_streams_and_reports(tmp_path: Path) -> None:
    good = sorted(PHOTOS.glob("*/*.jpg"))[:5]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"junk")
    paths = [good[0], bad, *good[1:]]

    def preprocess(image: Image.Image) -> np.ndarray:
        return np.asarray(image.resize((16, 16)), dtype=np.float32)

    batches = list(iter_batches(paths, preprocess, batch_size=2))
    assert [len(b.indices) + len(b.errors) for b in batches] == [2, 2, 2]
    assert [i for b in batches for i in b.indices] == [0, 2, 3, 4, 5]
    assert [e for b in batches for e in b.errors] == [(1, "not an image (unrecognised or empty file)")]
    assert batches[0].array.shape == (1, 16, 16, 3)
    assert batches[1].array.shape == (2, 16, 16, 3)


@pytest.mark.parametrize("width", [60, 100])  # 60: the 256x170 photo is decoded at half scale first (draft)
def test_a_thumbnail_is_the_photo_resized_to_the_width_shown(width: int) -> None:
    small = Image.open(io.BytesIO(thumbnail(CAT, width)))
    full = load_image(CAT)
    assert small.format == "JPEG" and small.width == width and small.height == round(full.height * width / full.width)
    resized = full.resize(small.size, Image.Resampling.BILINEAR)
    assert np.abs(np.asarray(small, np.float32) - np.asarray(resized, np.float32)).mean() < 8  # the same picture
    assert Image.open(io.BytesIO(thumbnail(CAT, 1000))).size == full.size  # never enlarged


def test_a_thumbnail_of_a_bad_file_is_an_image_error(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    with pytest.raises(ImageError, match="not an image"):
        thumbnail(tmp_path / "bad.jpg", 100)
