"""Find image files in a folder, decode them safely, and stream preprocessed batches.

Decoding never raises anything but `ImageError`, whose message says what is wrong
with the file, so one bad file can be reported and skipped.

Phone formats: HEIC/HEIF (iPhones) through pillow-heif (libheif + libde265), registered as a Pillow
plugin here; AVIF through Pillow's own plugin (libavif, Pillow >= 11.2). Both come out of
`load_image` exactly like a JPEG: RGB, EXIF orientation applied (libheif applies a HEIF's rotation
while decoding and resets its EXIF orientation to 1, so nothing turns twice).
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import stat
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError, features
from PIL.JpegImagePlugin import JpegImageFile

from vector_search.errors import VectorSearchError

pillow_heif.register_heif_opener()  # .heic/.heif: ~0.1 s at import, once
PHONE_EXTENSIONS = frozenset({".heic", ".heif", ".hif", *([".avif"] if features.check("avif") else [])})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", *PHONE_EXTENSIONS})
MAX_PIXELS = 50_000_000  # refuse decompression bombs: a 50-megapixel photo is already huge
MAX_BYTES = 100 * 2**20  # refuse to read files (or uploads) bigger than 100 MiB


class ImageError(VectorSearchError, ValueError):
    """A file that cannot be used as an image; the message says why."""


class DatasetNotFoundError(VectorSearchError, FileNotFoundError):
    """The dataset folder does not exist."""


def find_images(root: str | os.PathLike, within: Path | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Image files under `root`, recursively, as sorted paths relative to `root`.

    Hidden files and folders are skipped; symlinked folders are not followed (no loops). With
    `within` (a server's root), a file that is a link whose real path leaves it is skipped.
    Returns (paths, problems) where problems are (relative path, reason) for unreadable folders
    and skipped links.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"dataset folder not found: {root}")
    found: list[str] = []
    problems: list[tuple[str, str]] = []

    def on_error(err: OSError) -> None:
        rel = os.path.relpath(err.filename, root) if err.filename else "."
        problems.append((rel, f"cannot read folder: {err.strerror or err}"))

    for folder, dirs, files in os.walk(root, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        # One relpath per folder, plain string tests per file: at 1M files a Path and a relpath
        # per file took ~45 s of a re-index (bench/bench_scale.py update, docs/results.md).
        prefix = os.path.relpath(folder, root)
        prefix = "" if prefix == os.curdir else prefix + os.sep
        found.extend(prefix + name for name in files
                     if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS)
    if within is not None:  # (a stat per file, in server mode only)
        leaving = {rel for rel in found if outside(root / rel, within)}
        problems.extend((rel, f"a link to a file outside {within}: skipped (server mode)") for rel in sorted(leaving))
        found = [rel for rel in found if rel not in leaving]
    return sorted(found), problems


def outside(path: str | os.PathLike, root: Path) -> bool:
    """Whether `path`, links followed, leads out of `root` (or cannot be resolved)."""
    try:
        return not Path(os.path.realpath(path, strict=True)).is_relative_to(root)
    except (OSError, ValueError):
        return True


def printable(text: str) -> str:
    """`text` with the undecodable bytes of a file name shown as \\xNN, for people and pages: always valid UTF-8
    (a page or a terminal cannot show them as they are)."""
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:  # a surrogate that no file name decodes to
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def class_of(path: str | os.PathLike) -> str:
    """The class of an image: the name of the folder it sits in ("" for none), for a normalised path.
    String cuts, not pathlib: a store's class list is this over every row (0.02 s at 200k, 0.4 s with Path)."""
    return os.fspath(path).rpartition(os.sep)[0].rpartition(os.sep)[2]


def _file_kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a named pipe", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}
    return next((name for test, name in kinds.items() if test(mode)), "a special file")


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open a path for binary reading only if it is a regular file (symlinks followed).

    Opened non-blocking and checked on the open descriptor, so a named pipe or a device
    (e.g. a symlink to /dev/zero) given as an image is refused at once instead of hanging
    or reading forever. Raises OSError from open, or ImageError for a non-regular file.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _file_kind(mode)
            raise ImageError("is a folder, not a file" if kind == "a folder" else f"not a regular file ({kind})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _bounded(source: BinaryIO) -> BinaryIO:
    """`source` itself if at most MAX_BYTES remain in it, else ImageError; unseekable streams are
    read into memory up to the limit."""
    try:
        start = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(start)
        remaining = end - start
    except (AttributeError, OSError, ValueError):
        data = source.read(MAX_BYTES + 1)
        remaining, source = len(data), io.BytesIO(data)
    if remaining > MAX_BYTES:
        raise ImageError(f"file too large (over {MAX_BYTES // 2**20} MiB)")
    return source


def load_image(source: str | os.PathLike | BinaryIO, max_pixels: int = MAX_PIXELS, min_side: int | None = None) -> Image.Image:
    """Decode an image file (or file object) to an RGB Pillow image, EXIF rotation applied.

    `min_side`: a JPEG at least twice that size in both dimensions is decoded at 1/2, 1/4 or 1/8
    scale (libjpeg's DCT scaling: decode + resize of a 12 MP photo ~9x faster, bench/bench_decode.py)
    while both sides stay >= min_side,
    so an encoder that resizes the short side to min_side never upsamples; smaller photos (all of
    Pascal's) decode exactly as with None, the full size. HEIC and AVIF have no such reduced decode
    (HEVC and AV1 have no DCT scaling; libheif decodes a photo's tiles on several threads):
    they decode at full size: at 4000x3000 HEIC took 35x and AVIF 20x JPEG's draft decode
    (bench/bench_phone_formats.py).
    Grayscale, palette, alpha (composited on white), 16-bit and CMYK images are converted.
    Files and file objects over MAX_BYTES and images over `max_pixels` are refused; so is
    anything that is not a regular file (folders, named pipes, devices).
    Raises ImageError with a clear reason for anything that is not a usable image.
    """
    try:
        opened = open_regular(source) if isinstance(source, (str, os.PathLike)) else None
        with opened or contextlib.nullcontext():
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(_bounded(opened or source)) as image:
                    if image.width * image.height > max_pixels:
                        raise ImageError(
                            f"image too large ({image.width}x{image.height} pixels, limit {max_pixels // 10**6} MP)"
                        )
                    if min_side and isinstance(image, JpegImageFile) and min(image.size) >= 2 * min_side:  # MPO too
                        image.draft(image.mode, (min_side, min_side))
                    image.load()
                    return to_rgb(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not a file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image too large (decompression bomb limit {max_pixels // 10**6} MP)") from None
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised or empty file)") from None
    except OSError as err:
        if err.errno is not None:  # symlink loops, I/O errors, names too long...
            raise ImageError(f"cannot read file: {err.strerror or err}") from None
        raise ImageError(f"corrupt image: {err}") from None
    except Exception as err:  # Pillow plugins raise many types on malformed data
        raise ImageError(f"corrupt image: {type(err).__name__}: {err}") from None


def thumbnail(source: str | os.PathLike | BinaryIO, width: int, quality: int = 90) -> bytes:
    """A JPEG of the image `width` pixels wide (its own width if smaller), as a page shows it: a
    big JPEG is decoded at a reduced scale first (load_image's draft), so this costs a fraction of a
    full decode and resize. Raises ImageError as load_image does."""
    picture = load_image(source, min_side=width)
    if picture.width > width:
        picture = picture.resize((width, max(1, round(picture.height * width / picture.width))), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def thumbnail_uri(source: str | os.PathLike | BinaryIO, width: int) -> str:
    """`thumbnail` as a data: URI: a page shows it with no request of its own (a chart's tooltip; the
    app's grids, where 8 photos fetched after each text query took a browser 70-180 ms)."""
    return "data:image/jpeg;base64," + base64.b64encode(thumbnail(source, width)).decode("ascii")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float32)
        peak = float(values.max(initial=0.0))
        full_scale = 65535.0 if peak > 255 else 255.0 if peak > 1 else 1.0  # 16-bit, 8-bit or [0, 1] floats
        gray = np.clip(values * (255.0 / full_scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def preprocessed(path: str | os.PathLike, preprocess: Callable[[Image.Image], np.ndarray], min_side: int | None = None) -> np.ndarray | str:
    """One file as the encoder's input (load_image, then `preprocess`), or the reason it cannot be:
    the one decoding step of every embedder (local threads, Ray tasks), so they agree file for file."""
    try:
        return preprocess(load_image(path, min_side=min_side))
    except ImageError as err:
        return str(err)


@dataclass
class Batch:
    """Preprocessed images from one slice of the input list, and the files that failed."""

    indices: list[int]  # positions (in the input list) of the rows of `array`
    array: np.ndarray | None  # (len(indices), H, W, 3) float32, None when every file failed
    errors: list[tuple[int, str]] = field(default_factory=list)  # (position, reason)


def iter_batches(
    paths: Sequence[str | os.PathLike],
    preprocess: Callable[[Image.Image], np.ndarray],
    batch_size: int = 32,
    workers: int = 2,
    min_side: int | None = None,
) -> Iterator[Batch]:
    """Decode and preprocess `paths` in batches, streaming: at most two batches live at once.

    Decoding runs on a small thread pool (Pillow releases the GIL) one batch ahead of the caller,
    so the next batch decodes while the caller runs the model on this one. `min_side`: see load_image.
    """

    def load(i: int) -> tuple[int, np.ndarray | str]:
        return i, preprocessed(paths[i], preprocess, min_side)

    def collect(futures: list[Future]) -> Batch:
        batch = Batch([], None)
        rows = []
        for future in futures:
            i, result = future.result()
            if isinstance(result, str):
                batch.errors.append((i, result))
            else:
                batch.indices.append(i)
                rows.append(result)
        if rows:
            batch.array = np.stack(rows)
        return batch

    starts = range(0, len(paths), batch_size)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[Future] | None = None
        for start in starts:
            submitted = [pool.submit(load, i) for i in range(start, min(start + batch_size, len(paths)))]
            if pending is not None:
                yield collect(pending)
            pending = submitted
        if pending is not None:
            yield collect(pending)
