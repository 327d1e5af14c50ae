"""What every section of the page uses: the server-wide resources (held in `st.cache_resource`),
error guards, photo grids and the photo picker."""

from __future__ import annotations

import io
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from vector_search.app.library import FilterRow, date_span
from vector_search.app.state import Engines, IndexedFolders, ResultCache, Source, Thumbnails, message
from vector_search.datasets import gallery
from vector_search.datasets import pascal as datasets
from vector_search.engine import Engine, Result
from vector_search.imaging.images import IMAGE_EXTENSIONS, ImageError, load_image, thumbnail_uri

log = logging.getLogger("vector_search.app")

# The page's icon as a file: a str icon (an emoji) makes Streamlit load its emoji table, 0.05 s of every server's first page.
ICON = Path(__file__).resolve().parents[1] / "data" / "icon.png"

# Photo grids show square crops (CSS object-fit), so rows line up whatever the photos' shapes.
GRID_STYLE = """<style>
[class*="st-key-grid-"] [data-testid="stImageContainer"] img { aspect-ratio: 1 / 1; object-fit: cover; }
</style>"""


# --- server-wide resources: loaded once per server, shared by every visitor -------------------------


@st.cache_resource(show_spinner=False)
def engines() -> Engines:
    return Engines()


def engine(features_root: str, encoder: str) -> Engine:
    return engines().get(features_root, encoder)


@st.cache_resource(show_spinner=False)
def indexed() -> IndexedFolders:
    return IndexedFolders()


@st.cache_resource(show_spinner=False)
def results() -> ResultCache:
    """Image-search answers: a re-weighted search scans every vector (seconds at 200k photos); the
    minute they are kept drops photos deleted since from the answers soon enough."""
    return ResultCache(max_entries=32, ttl=60)


@st.cache_resource(show_spinner=False)
def thumbnails() -> Thumbnails:
    return Thumbnails()


def image(photo: str | bytes, caption: str, width: int, where: DeltaGenerator | None = None) -> None:
    """One photo (a path or an upload's bytes), shown `width` pixels wide from its thumbnail."""
    (where or st).image(thumbnails().of(photo, width), caption=caption, width=width)


@st.cache_resource(show_spinner="Exporting the gallery photos…")
def export_gallery(features_root: str) -> str:
    return str(gallery.export_gallery(gallery.gallery_photos_dir(features_root)))


@st.cache_resource(show_spinner=False, ttl=30)
def summarize(folder: str) -> datasets.DatasetSummary | None:
    """The folder's images by class; None when there is no such folder. A shared resource (read
    only), not cached data: cached data is unpickled on every call, all N paths of a big folder."""
    try:
        return datasets.summarize(folder)
    except FileNotFoundError:
        return None


@st.cache_data(show_spinner="Making thumbnails…", max_entries=4)
def thumbnail_uris(paths: tuple[str, ...]) -> list[str]:
    return [thumbnail_uri(p, 64) for p in paths]


# --- page helpers -----------------------------------------------------------------------------------


def lazy(label: str, key: str) -> tuple[DeltaGenerator, bool]:
    """An expander, closed on the first page, and whether it is open: the caller draws (and loads)
    what is inside only while it is, so the word vectors, the tag words or the map load when a
    visitor first opens their section, not with the first page (opening it reruns the section)."""
    box = st.expander(label, key=key, on_change="rerun")
    return box, bool(box.open)


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Turn any error inside into a message on the page (and a traceback in the server log)."""
    try:
        yield
    except Exception as err:  # Streamlit's own control flow (rerun, stop) is not an Exception
        log.exception("%s failed", what)
        st.error(f"{what}: {message(err)}")


def photo_grid(key: str, paths: list[str], captions: list[str], width: int = 150) -> None:
    """Photos in rows of square crops, each with its caption."""
    with st.container(key=f"grid-{key}"):
        st.image(thumbnails().many(paths, width), caption=captions, width=width)


def grid(key: str, found: list[Result], source: Source, width: int = 150, empty: str = "No results.") -> None:
    """Result photos named by source.caption (class, or path in a flat folder) with their distance; `empty` said when there are none."""
    if not found:
        st.info(empty)
        return
    photo_grid(key, [r.item for r in found], [f"{source.caption(r.item)} · {r.distance:.3f}" for r in found], width)


def filter_row(source: Source, key: str, scored: bool = True) -> FilterRow:
    """The filter row of a search: a subfolder, the days taken, a camera (each offered when the
    store's photos have some: engine facets) and, when the answers are `scored`, a minimum score."""
    facets = source.engine.current().facets
    span = date_span(facets)
    shown = [bool(facets.folders), span is not None, bool(facets.cameras), scored]
    if not any(shown):
        return FilterRow()
    columns = iter(st.columns(sum(shown)))
    folder = next(columns).selectbox("In folder", ["", *facets.folders], format_func=lambda f: f or "(all)",
                                     key=f"{key}_in") if shown[0] else ""
    days = next(columns).date_input("Taken between", span, min_value=span[0], max_value=span[1], key=f"{key}_days") if span else ()
    camera = next(columns).selectbox("Camera", ["", *facets.cameras], format_func=lambda c: c or "(any)",
                                     key=f"{key}_camera") if shown[2] else ""
    min_score = next(columns).slider("Minimum score", 0.0, 1.0, 0.0, 0.05, key=f"{key}_min_score",
                                     help="Hide weaker matches (0: show all). A score is the share of random pairs (text search: of "
                                          "random words' best photos) that are farther: 0.9 keeps good matches only.") if scored else 0.0
    return FilterRow.of(facets, folder, days, camera, min_score)


def photo_picker(source: Source, key: str) -> tuple[str | bytes, str] | None:
    """A dataset photo (path) or an uploaded one (bytes, decoded in memory), and its label.

    None (with a message) when the upload is not a usable image.
    """
    paths = source.photo_choices()
    total = len(source.engine.store)
    left, right = st.columns([3, 2])
    choice = left.selectbox(
        "A photo from the dataset" if len(paths) >= total else f"A photo from the dataset ({len(paths):,} of {total:,})",
        paths,
        index=paths.index(source.default_photo()),
        format_func=source.label,
        key=f"{key}_photo",
    )
    upload = right.file_uploader("…or your own photo", type=sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS), key=f"{key}_upload")
    if upload is not None:
        data = upload.getvalue()
        try:
            load_image(io.BytesIO(data))  # check it decodes, in memory; the upload is never written to disk
        except ImageError as err:
            st.error(f"{upload.name}: {err}")
            return None
        return data, f"your photo ({upload.name})"
    return choice, source.label(choice)


def picked_photo(source: Source, key: str, caption: str = "{}") -> tuple[str | bytes, DeltaGenerator] | None:
    """The photo picker, and the picked photo shown on the left (`caption` formats its label); the
    photo and the column on its right. None (with a message) when the upload is not a usable image."""
    picked = photo_picker(source, key)
    if picked is None:
        return None
    photo, label = picked
    left, right = st.columns([1, 2])
    image(photo, caption.format(label), 220, left)
    return photo, right
