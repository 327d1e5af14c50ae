"""A user's own photo library in the walkthrough (#21): a flat folder (no class folders, no
captions) through every section, and the filter row (folder, days taken, camera, minimum score)
of image and text search. The logic (app/library.py, store/metadata.py's Facets) is tested on a
store in memory; the page with AppTest on real Pascal photos copied flat, dates and cameras
written into their EXIF."""

from __future__ import annotations

import calendar
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from test_app import grids, map_photos, ok, sections, start, texts
from test_filters import SHOTS, exif_copy

from vector_search.app.library import TOP, FilterRow, date_span, map_colours, sorted_by_class
from vector_search.datasets.pascal import DatasetSummary
from vector_search.store.files import Item
from vector_search.store.metadata import Facets, Filters
from vector_search.store.sampling import has_class_folders, trainable_classes
from vector_search.store.store import Store

DAY = 86400
JULY_1 = calendar.timegm((2024, 7, 1, 12, 0, 0))


def memory_store(rows: list[tuple[str, int | None, str | None]]) -> Store:
    """A store in memory of (relative path, date taken, camera) rows."""
    items = [Item(path, 1, 1, f"{i:064x}", taken, camera, 10, 10) for i, (path, taken, camera) in enumerate(rows)]
    return Store("/nowhere", "efficientnet-lite0", "/photos", items, np.eye(len(rows), 4, dtype=np.float32))


def test_folders_are_classes_when_every_photo_sits_in_one_of_several() -> None:
    assert has_class_folders(["cat"] * 5 + ["dog"] * 5)
    assert not has_class_folders([""] * 20)  # a flat folder
    assert not has_class_folders([""] * 10 + ["trip"] * 10)  # photos at the top: a library, its subfolders no labels
    assert not has_class_folders(["2024"] * 30)  # one folder
    assert has_class_folders(["cat", "dog", "bus"]) and not trainable_classes(["cat", "dog", "bus"])  # too few to learn from
    assert trainable_classes(["cat"] * 5 + ["dog"] * 5) and not trainable_classes([""] * 10 + ["trip"] * 10)
    assert sorted_by_class(DatasetSummary("/p", {"cat": ["cat/a.jpg"] * 5, "dog": ["dog/b.jpg"] * 5}))
    assert not sorted_by_class(DatasetSummary("/p", {".": ["a.jpg"] * 5, "dog": ["dog/b.jpg"] * 5}))


def test_facets_offer_the_subfolders_their_parents_the_dates_and_cameras() -> None:
    store = memory_store([("a.jpg", JULY_1, "Apple iPhone 12"), ("2024/07/b.jpg", JULY_1 + 3 * DAY, None),
                          ("2024/08/c.jpg", None, "Canon EOS 80D"), ("trip/d.jpg", JULY_1 - DAY, "Apple iPhone 12")])
    facets = Facets.of(store)
    assert facets.folders == ["2024", "2024/07", "2024/08", "trip"]
    assert (facets.first, facets.last) == (JULY_1 - DAY, JULY_1 + 3 * DAY)
    assert facets.cameras == ["Apple iPhone 12", "Canon EOS 80D"]
    assert date_span(facets) == (dt.date(2024, 6, 30), dt.date(2024, 7, 4))
    assert date_span(Facets.of(memory_store([("a.jpg", None, None)]))) is None


def test_the_filter_row_makes_the_engines_filters() -> None:
    facets = Facets(["trip"], JULY_1 - DAY, JULY_1 + 3 * DAY, ["Canon EOS 80D"])
    untouched = FilterRow.of(facets, "", (dt.date(2024, 6, 30), dt.date(2024, 7, 4)), "", 0.0)
    assert untouched.filters is None and untouched.threshold is None  # the whole span: undated photos stay in
    assert FilterRow.of(facets, "", (dt.date(2024, 6, 30),)).filters is None  # a range being picked (one end)
    row = FilterRow.of(facets, "trip", (dt.date(2024, 7, 1), dt.date(2024, 7, 2)), "canon", 0.9)
    assert row.filters == Filters.of("trip", "2024-07-01", "2024-07-02", "canon") and row.threshold == 0.9
    assert row.nothing_found().startswith("No good match: no photo scores 0.90 or more among the photos the filters leave")
    assert row.nothing_found(scored=False) == "No photo passes the filters."
    assert FilterRow(min_score=0.5).nothing_found() == "No good match: no photo scores 0.50 or more. Lower the minimum score to see weaker matches."


def test_the_map_of_a_flat_folder_is_coloured_by_what_tells_its_photos_apart() -> None:
    rows = np.arange(3)
    folders = memory_store([("a.jpg", JULY_1, "X"), ("trip/b.jpg", JULY_1, "X"), ("trip/c.jpg", JULY_1, "X")])
    assert map_colours(folders, rows, labelled=False) == ("folder", [TOP, "trip", "trip"])
    months = memory_store([("a.jpg", JULY_1, "X"), ("b.jpg", JULY_1 + 40 * DAY, "X"), ("c.jpg", None, "X")])
    assert map_colours(months, rows, labelled=False) == ("month taken", ["2024-07", "2024-08", "no date"])
    cameras = memory_store([("a.jpg", None, "X"), ("b.jpg", None, None), ("c.jpg", None, "Y")])
    assert map_colours(cameras, rows, labelled=False) == ("camera", ["X", "unknown camera", "Y"])
    alike = memory_store([("a.jpg", None, None), ("b.jpg", None, None), ("c.jpg", None, None)])
    assert map_colours(alike, rows, labelled=False) == ("folder", [TOP] * 3)
    labelled = memory_store([("cat/a.jpg", None, None), ("dog/b.jpg", JULY_1, None), ("dog/c.jpg", None, None)])
    assert map_colours(labelled, rows[1:], labelled=True) == ("class", ["dog", "dog"])


# --- the page on a flat folder of real photos ------------------------------------------------------


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> tuple[Path, dict[str, str]]:
    """20 real Pascal photos copied flat, no captions: 5 cats (Canon, 2021) and 5 dogs (no EXIF) at the
    top, 5 buses (iPhone 12, 2022) and 5 boats (iPhone 15 Pro, 2023) in trip/; and each one's class."""
    folder = tmp_path_factory.mktemp("library") / "photos"
    (folder / "trip").mkdir(parents=True)
    truth = {}
    for cls, shot in SHOTS.items():
        for photo in sorted((pascal_dataset / cls).iterdir())[:5]:
            rel = f"trip/{photo.name}" if cls in ("bus", "boat") else photo.name
            exif_copy(photo, folder / rel, *shot)
            truth[rel] = cls
    return folder, truth


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, library: tuple[Path, dict[str, str]], tmp_path: Path):
    return start(monkeypatch, library[0], tmp_path / "features")


def shown(captions: list[str]) -> list[str]:
    """A flat folder's result captions are '<path under the folder> · <distance>'."""
    return [c.split(" · ")[0] for c in captions]


@pytest.mark.slow
def test_a_flat_folder_renders_every_section_and_text_search_answers(page, library: tuple[Path, dict[str, str]]) -> None:
    at, truth = page, library[1]
    assert not at.error, [e.value for e in at.error]
    found = sections(at)
    assert list(found) == ["1", "2", "3", "4", "5", "6", "7", "8"]

    s1 = found["1"]  # no classes: the photos, their folders, a few of them by path
    metrics = {m.label: m.value for m in s1 if m.type == "metric"}
    assert metrics == {"Images": "20", "Folders": "2", "Photos at the top": "10"}
    assert "not sorted into class folders" in texts(s1)
    assert set(grids(s1)[0]) <= set(truth) and len(grids(s1)[0]) == 8
    assert "20 vectors of 1280 numbers" in texts(found["2"])

    query, plain, weighted = grids(found["3"])  # the picker lists the photos, no class asked
    assert query == [f"query: {sorted(truth)[0]}"] and len(plain) == len(weighted) == 8
    assert set(shown(plain)) <= set(truth) - {sorted(truth)[0]}
    assert set(at.selectbox(key="search_photo").options) == set(truth)

    assert "nothing to train on" in texts(found["5"], "info")  # untrained, nothing offered to train
    assert not [n for n in found["5"] if n.type == "checkbox"]
    assert "**Tags:**" in texts(found["6"])

    assert len(grids(found["7"])[0]) == 8  # text search answers: "ocean", then the classes by name
    for word in ("dog", "bus", "boat"):
        at.text_input(key="text_query").input(word)
        ok(at.run())
        top = shown(grids(sections(at)["7"])[0])[:3]
        assert [truth[p] for p in top].count(word) >= 2, (word, top)

    chart = next(n for n in sections(at)["8"] if n.type == "vega_lite_chart")  # coloured by folder, every photo
    assert '"folder"' in chart.proto.spec and sorted(map_photos(chart)) == sorted(truth)


@pytest.mark.slow
def test_the_filter_row_narrows_searches_and_says_no_good_match(page, library: tuple[Path, dict[str, str]]) -> None:
    at, truth = page, library[1]
    assert at.selectbox(key="text_in").options == ["(all)", "trip"]
    assert at.selectbox(key="text_camera").options == ["(any)", "Apple iPhone 12", "Apple iPhone 15 Pro", "Canon EOS 80D"]
    assert at.date_input(key="text_days").value == (dt.date(2021, 5, 1), dt.date(2023, 3, 15))

    at.text_input(key="text_query").input("cat")
    at.selectbox(key="text_in").set_value("trip")  # a folder: only its photos, k of them still
    ok(at.run())
    found = shown(grids(sections(at)["7"])[0])
    assert len(found) == 8 and all(p.startswith("trip/") for p in found), found

    at.selectbox(key="text_in").set_value("")
    at.selectbox(key="text_camera").set_value("Canon EOS 80D")
    ok(at.run())
    assert {truth[p] for p in shown(grids(sections(at)["7"])[0])} == {"cat"}

    at.selectbox(key="text_camera").set_value("")
    at.date_input(key="text_days").set_value((dt.date(2022, 1, 1), dt.date(2022, 12, 31)))  # undated dogs never pass
    ok(at.run())
    assert {truth[p] for p in shown(grids(sections(at)["7"])[0])} == {"bus"}

    at.date_input(key="text_days").set_value((dt.date(2021, 5, 1), dt.date(2023, 3, 15)))
    at.text_input(key="text_query").input("piano")  # in no photo: its best matches are weak
    at.slider(key="text_min_score").set_value(0.9)
    ok(at.run())
    s7 = sections(at)["7"]
    assert not grids(s7) and "No good match" in texts(s7, "info")
    at.text_input(key="text_query").input("bus")  # a thing the photos show passes the same minimum
    ok(at.run())
    assert {truth[p] for p in shown(grids(sections(at)["7"])[0])[:3]} == {"bus"}

    at.selectbox(key="search_in").set_value("trip")  # image search: the same row
    ok(at.run())
    _, plain, weighted = grids(sections(at)["3"])
    assert plain and weighted and all(p.startswith("trip/") for p in shown(plain) + shown(weighted))
