"""A user's own photo library on the page, without Streamlit: the filter row (what it offers, the
filters and minimum score it makes, what to say when nothing passes) and what the map colours
photos by when their folders are not classes (a flat folder)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vector_search.datasets.pascal import DatasetSummary
from vector_search.store.files import decode_paths
from vector_search.store.metadata import Facets, Filters
from vector_search.store.sampling import has_class_folders
from vector_search.store.store import Store

TOP = "(top folder)"  # how a page names the indexed folder itself, where a flat folder's photos sit
NO_DATE, NO_CAMERA = "no date", "unknown camera"


def sorted_by_class(summary: DatasetSummary) -> bool:
    """Whether a folder's photos are sorted into class folders (sampling.has_class_folders), before it is indexed."""
    return has_class_folders([name if name != "." else "" for name, paths in summary.classes.items() for _ in paths])


def day(seconds: int) -> dt.date:
    """A date taken (seconds since 1970, the camera's local time read as UTC: metadata.py) as its day."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).date()


def date_span(facets: Facets) -> tuple[dt.date, dt.date] | None:
    """The first and last day photos were taken on, or None when no photo has a date."""
    return None if facets.first is None or facets.last is None else (day(facets.first), day(facets.last))


@dataclass(frozen=True)
class FilterRow:
    """The filter row's values: a subfolder ("" for all), the days taken (None: any, photos with no
    date too), a camera ("" for any), and the score under which matches are hidden (0: none is)."""

    folder: str = ""
    days: tuple[dt.date, dt.date] | None = None
    camera: str = ""
    min_score: float = 0.0

    @classmethod
    def of(cls, facets: Facets, folder: str = "", days: Sequence[dt.date] = (), camera: str = "", min_score: float = 0.0) -> FilterRow:
        """The row as a page reads its widgets: a date range only counts once it narrows the photos'
        span (left whole, photos with no date stay in) and has both ends (a range being picked has one)."""
        span = date_span(facets)
        picked = tuple(days) if len(days) == 2 else None
        return cls(folder, None if picked == span else picked, camera, float(min_score))

    @property
    def filters(self) -> Filters | None:
        """The engine's filters (None: every photo may answer)."""
        after, before = (d.isoformat() for d in self.days) if self.days else (None, None)
        return Filters.of(self.folder, after, before, self.camera)

    @property
    def threshold(self) -> float | None:
        """The engine's min_score (None: keep every match)."""
        return self.min_score or None

    def nothing_found(self, scored: bool = True) -> str:
        """What a page says when no photo is left to show (`scored`: the answers had scores, so min_score hid some)."""
        if self.min_score and scored:
            among = " among the photos the filters leave" if self.filters else ""
            return f"No good match: no photo scores {self.min_score:.2f} or more{among}. Lower the minimum score to see weaker matches."
        return "No photo passes the filters."


def map_colours(store: Store, rows: np.ndarray, labelled: bool) -> tuple[str, list[str]]:
    """What a map colours the photos at `rows` by, and each one's value: its class when the folders
    are classes; else the first of its subfolder, the month it was taken, its camera, that tells the
    photos apart (a flat folder has no labels); else its subfolder all the same."""
    if labelled:
        return "class", [store.classes[int(i)] for i in rows]
    folders = [rel.rpartition("/")[0] or TOP for rel in decode_paths(store.column("path").take(rows))]
    months = [NO_DATE if t is None else day(t).strftime("%Y-%m") for t in store.column("taken").take(rows).to_pylist()]
    cameras = [c or NO_CAMERA for c in store.column("camera").take(rows).to_pylist()]
    for name, values in (("folder", folders), ("month taken", months), ("camera", cameras)):
        if len(set(values)) > 1:
            return name, values
    return "folder", folders
