"""What a photo says of itself (date taken, camera, size), read at indexing into the item tables,
and the filters that narrow a search by it: a subfolder, a date range, a camera.

Reading opens the file's header only (Pillow decodes no pixels): about a millisecond a photo.
Dates are EXIF DateTimeOriginal (else DateTime), a camera's local time with no zone, kept as
seconds since 1970 read as UTC; --after/--before dates are read the same way, so they compare.
"""

from __future__ import annotations

import calendar
import os
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vector_search.errors import VectorSearchError

EXIF_IFD, DATE_TAKEN, DATE_TIME, MAKE, MODEL, ORIENTATION = 0x8769, 0x9003, 0x0132, 0x010F, 0x0110, 0x0112
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m")


class FilterError(VectorSearchError, ValueError):
    """A filter that cannot be read (a date that is not a date)."""


@dataclass(frozen=True)
class PhotoInfo:
    """What a photo file says of itself; None for what it does not say (or a file that is not a photo)."""

    taken: int | None = None  # seconds since 1970, the camera's local time read as UTC
    camera: str | None = None  # "Make Model", e.g. "Apple iPhone 15"
    width: int | None = None  # as displayed (EXIF orientation applied)
    height: int | None = None


def read_photo_info(path: str | os.PathLike) -> PhotoInfo:
    """The date taken, camera and displayed size of a photo, from its header (never raises)."""
    from PIL import Image

    import vector_search.imaging.images  # noqa: F401  (registers the HEIC plugin)

    try:
        with Image.open(path) as image:
            exif = image.getexif()
            width, height = image.size
            if exif.get(ORIENTATION) in (5, 6, 7, 8):
                width, height = height, width
            taken = _exif_seconds(exif.get_ifd(EXIF_IFD).get(DATE_TAKEN) or exif.get(DATE_TIME))
            make, model = (str(exif.get(tag) or "").strip("\0 ") for tag in (MAKE, MODEL))
            camera = model if make and model.lower().startswith(make.lower()) else f"{make} {model}".strip()
            return PhotoInfo(taken, camera or None, width, height)
    except Exception:  # not a photo, damaged, unreadable: indexing reports it when decoding
        return PhotoInfo()


def _exif_seconds(value: object) -> int | None:
    """"2024:07:14 18:03:22" -> seconds since 1970 (as UTC); None if absent or not a date."""
    try:
        return calendar.timegm(time.strptime(str(value).strip("\0 ")[:19], "%Y:%m:%d %H:%M:%S"))
    except (ValueError, OverflowError):
        return None


def parse_date(text: str, end: bool = False) -> int:
    """A date given by a person (2024-07-14, 2024-07-14T18:00, 2024-07) as seconds since 1970 (UTC);
    `end`: the end of that day or month (for --before), else its start."""
    for fmt in DATE_FORMATS:
        try:
            parsed = time.strptime(text.strip(), fmt)
        except ValueError:
            continue
        seconds = calendar.timegm(parsed)
        if end and fmt == "%Y-%m":
            days = calendar.monthrange(parsed.tm_year, parsed.tm_mon)[1]
            return seconds + days * 86400 - 1
        return seconds + 86399 if end and fmt == "%Y-%m-%d" else seconds
    raise FilterError(f"not a date: {text!r} (give 2024-07-14, 2024-07 or 2024-07-14T18:00)")


@dataclass(frozen=True)
class Filters:
    """Which photos a search may answer: under a subfolder of the indexed folder, taken between two
    dates (inclusive; photos with no date are left out once a date is asked), by a camera whose
    "Make Model" contains `camera` (any case)."""

    folder: str | None = None
    after: int | None = None
    before: int | None = None
    camera: str | None = None

    @classmethod
    def of(cls, folder: str | None = None, after: str | None = None, before: str | None = None, camera: str | None = None) -> "Filters | None":
        """Filters from text as people type it (None for no filter at all)."""
        folder = (folder or "").strip().strip("/" + os.sep) or None
        if folder and ".." in folder.split("/"):
            raise FilterError(f"the folder to search in must be a subfolder of the indexed folder, not {folder!r}")
        made = cls(folder, parse_date(after) if after else None, parse_date(before, end=True) if before else None, (camera or "").strip() or None)
        return None if made == cls() else made

    def allowed(self, store) -> np.ndarray:  # store: store.Store
        """Which rows of `store` pass (bool, one per row; deleted rows never do)."""
        mask = np.ones(len(store), bool) if store.live is None else store.live.copy()
        if self.folder:
            mask &= _array(pc.starts_with(store.column("path"), self.folder.replace(os.sep, "/") + "/"))
        if self.after is not None or self.before is not None:
            taken = store.column("taken")
            known = _array(pc.is_valid(taken))
            values = np.asarray(pc.fill_null(taken, 0).combine_chunks().to_numpy(zero_copy_only=False), np.int64)
            mask &= known & (values >= (self.after if self.after is not None else -(2**62))) & (values <= (self.before if self.before is not None else 2**62))
        if self.camera:
            mask &= _array(pc.fill_null(pc.match_substring(store.column("camera"), self.camera, ignore_case=True), False))
        return mask


MAX_FOLDERS = 500  # subfolders a page offers to filter by (the fullest, when a library has more)


@dataclass(frozen=True)
class Facets:
    """What a store's live photos can be filtered by, as a page offers it: the subfolders holding
    photos (with their parents: "2024" and "2024/07"), the range of dates taken, the cameras."""

    folders: list[str]  # relative to the indexed folder, "/"-separated, sorted
    first: int | None  # earliest and latest date taken (seconds, as Filters.after/before); None: no dates
    last: int | None
    cameras: list[str]  # sorted

    @classmethod
    def of(cls, store) -> "Facets":  # store: store.Store
        """Read once per store from its item columns (Arrow: no Python object per row)."""
        live = None if store.live is None else pa.array(store.live)

        def column(name: str):
            values = store.column(name)
            return values if live is None else values.filter(live)

        paths = column("path")
        parents = pc.replace_substring_regex(paths.filter(pc.match_substring(paths, "/")), pattern="/[^/]*$", replacement="")
        counts: dict[str, int] = {}
        for entry in pc.value_counts(parents).to_pylist() if len(parents) else []:
            parts = entry["values"].decode("utf-8", "surrogateescape").split("/")
            for depth in range(1, len(parts) + 1):  # a photo in 2024/07 is under 2024 too
                counts["/".join(parts[:depth])] = counts.get("/".join(parts[:depth]), 0) + entry["counts"]
        folders = sorted(sorted(counts, key=counts.__getitem__, reverse=True)[:MAX_FOLDERS])
        taken = pc.min_max(column("taken")).as_py()
        cameras = sorted(c for c in pc.unique(column("camera")).to_pylist() if c)
        return cls(folders, taken["min"], taken["max"], cameras)


def _array(booleans) -> np.ndarray:
    """An Arrow boolean column (chunked) as a numpy bool array."""
    return np.asarray(booleans.combine_chunks().to_numpy(zero_copy_only=False), bool) if len(booleans) else np.zeros(0, bool)
