"""A small built-in gallery of real photos, for trying the search without downloading a dataset.

The photos are the sample images scikit-image ships (`skimage.data`: Chelsea the cat, a cup of
coffee, an astronaut, a rocket...). `export_gallery` writes them once as
`<features_root>/gallery/photos/<label>/<name>.png`, a folder laid out like any dataset, which is then
indexed like one into its own store root, `<features_root>/gallery`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vector_search import fileio
from vector_search.errors import VectorSearchError

log = logging.getLogger(__name__)


class GalleryError(VectorSearchError, RuntimeError):
    """The gallery cannot be exported (scikit-image missing, folder not writable); one-line message."""


@dataclass(frozen=True)
class Photo:
    label: str  # the class folder: a plain English word, so the word model knows it
    name: str  # the skimage.data function (and the file's stem)
    description: str


PHOTOS = (
    Photo("cat", "chelsea", "Chelsea the cat"),
    Photo("coffee", "coffee", "a cup of coffee on a saucer"),
    Photo("astronaut", "astronaut", "astronaut Eileen Collins"),
    Photo("rocket", "rocket", "a rocket on its launch pad"),
    Photo("motorbike", "motorcycle", "a motorbike in a studio"),
    Photo("galaxy", "hubble_deep_field", "the Hubble deep field"),
    Photo("photographer", "camera", "a man with a camera (greyscale)"),
    Photo("coins", "coins", "old Greek coins (greyscale)"),
    Photo("moon", "moon", "the surface of the moon (greyscale)"),
)


def gallery_features_root(features_root: str | os.PathLike) -> Path:
    """The store root of the gallery: its own, beside the dataset's stores."""
    return Path(features_root) / "gallery"


def gallery_photos_dir(features_root: str | os.PathLike) -> Path:
    """The dataset folder the gallery photos are exported to."""
    return gallery_features_root(features_root) / "photos"


def photo_path(folder: str | os.PathLike, photo: Photo) -> Path:
    return Path(folder) / photo.label / f"{photo.name}.png"


def _pixels(name: str):
    """The photo as an (H, W) or (H, W, 3) uint8 array, read from scikit-image's bundled files."""
    try:
        from skimage import data
    except ImportError:
        raise GalleryError("the built-in gallery needs scikit-image: pip install scikit-image") from None
    if name == "motorcycle":
        return data.stereo_motorcycle()[0]  # (left, right, disparity)
    return getattr(data, name)()


def _intact(path: Path) -> bool:
    """Whether a saved PNG is whole: PNG holds a CRC-32 of each chunk, which PIL's verify checks."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # PIL raises many types on a damaged file
        return False


def export_gallery(folder: str | os.PathLike) -> Path:
    """Write the gallery photos under `folder` (those missing or damaged; each file atomically); returns it."""
    from PIL import Image

    folder = Path(folder)
    for photo in PHOTOS:
        path = photo_path(folder, photo)
        if path.is_file():
            if _intact(path):
                continue
            log.warning("the gallery photo %s is damaged: exporting it again", path)
        try:
            image = Image.fromarray(_pixels(photo.name)).convert("RGB")
            with fileio.atomic_path(path) as tmp:
                image.save(tmp, format="PNG")
        except GalleryError:
            raise
        except OSError as err:
            raise GalleryError(f"cannot write the gallery to {folder}: {err.strerror or err}") from None
        except Exception as err:  # a scikit-image without that sample, or a damaged install
            raise GalleryError(f"cannot export gallery photo {photo.name!r}: {type(err).__name__}: {err}") from None
    return folder


def description(path: str | os.PathLike) -> str | None:
    """What a gallery photo shows, given its path; None for any other file."""
    stem = Path(path).stem
    return next((p.description for p in PHOTOS if p.name == stem and Path(path).parent.name == p.label), None)
