"""The app's state and policy (vector_search.app.state), without Streamlit: the folder-root check,
one-shot action boxes, the short-lived result cache, what a server keeps for all its visitors,
the joint methods offered, and which photos the pickers offer (on a real indexed store)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
from pathlib import Path

import pytest
from conftest import CAT, PHOTOS, copy_subset
from PIL import Image

from vector_search import joint
from vector_search.app.state import (
    METHOD_LABELS,
    Engines,
    IndexedFolders,
    ResultCache,
    Settings,
    Source,
    Thumbnails,
    message,
    once_per_tick,
    trainable_methods,
)
from vector_search.cli import build_parser
from vector_search.datasets.pascal import NOISY_EXAMPLE
from vector_search.engine import Engine
from vector_search.errors import VectorSearchError
from vector_search.serving import PathNotAllowedError
from vector_search.store.updates import UpdateReport
from vector_search.text.sentences import WordWeight, word_shares


def test_settings_are_taken_as_typed_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VECTOR_SEARCH_ROOT", raising=False)
    settings = Settings("/etc", "efficientnet-lite0", 8, "../anywhere")
    assert settings.allowed() is settings


def test_behind_a_url_both_folders_must_lie_under_the_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    monkeypatch.setenv("VECTOR_SEARCH_ROOT", str(root))
    inside = Settings("photos", "efficientnet-lite0", 5, "features", use_gallery=True).allowed()
    assert inside == Settings(str(root / "photos"), "efficientnet-lite0", 5, str(root / "features"), use_gallery=True)
    with pytest.raises(PathNotAllowedError, match=f"the dataset folder must be under {root} on this server, not /etc"):
        Settings("/etc", "efficientnet-lite0", 5, "features").allowed()
    with pytest.raises(PathNotAllowedError, match="the feature store folder may not contain `..`"):
        Settings("photos", "efficientnet-lite0", 5, "../features").allowed()


def test_a_ticked_box_acts_once_per_tick_and_per_change_of_what_it_runs() -> None:
    session: dict[str, object] = {}
    assert not once_per_tick(session, False, "trained", ("blend",))
    assert once_per_tick(session, True, "trained", ("blend",))  # ticked: act...
    session["trained"] = ("blend",)  # ...and record it
    assert not once_per_tick(session, True, "trained", ("blend",))  # a rerun, still ticked: not again
    assert once_per_tick(session, True, "trained", ("hybrid",))  # the action changed: act again
    assert not once_per_tick(session, False, "trained", ("blend",)) and "trained" not in session  # unticked: forgotten
    assert once_per_tick(session, True, "trained", ("blend",))  # ticked anew: act


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_results_are_kept_for_their_time_to_live_and_the_least_recent_go_first() -> None:
    clock, calls = Clock(), []
    cache = ResultCache(max_entries=2, ttl=60, clock=clock)

    def answer(key: str) -> list[str]:
        calls.append(key)
        return [key.upper()]

    assert cache.get("a", lambda: answer("a")) == ["A"]
    clock.now = 59.0
    assert cache.get("a", lambda: answer("a")) == ["A"] and calls == ["a"]  # within the minute: kept
    clock.now = 60.0
    assert cache.get("a", lambda: answer("a")) == ["A"] and calls == ["a", "a"]  # a minute old: asked again
    cache.get(b"an upload's bytes", lambda: answer("b"))
    cache.get("a", lambda: answer("a"))  # "a" used last...
    cache.get("c", lambda: answer("c"))  # ...so the third entry pushes out the upload's
    assert calls == ["a", "a", "b", "c"]
    cache.get("a", lambda: answer("a"))
    cache.get(b"an upload's bytes", lambda: answer("b"))
    assert calls == ["a", "a", "b", "c", "b"]


def test_photos_are_shown_from_thumbnails_made_once_per_file_version(tmp_path: Path) -> None:
    photo = tmp_path / "cat.jpg"
    shutil.copy2(CAT, photo)
    thumbs = Thumbnails()
    first = thumbs.of(str(photo), 100)
    assert first.startswith("data:image/jpeg;base64,") and Image.open(io.BytesIO(base64.b64decode(first.split(",")[1]))).width == 100
    assert thumbs.of(str(photo), 100) is first  # a rerun: not decoded again
    other = tmp_path / "cup.jpg"
    shutil.copy2(next((PHOTOS / "cup").glob("*.jpg")), other)
    grid = thumbs.many([str(other), str(photo), b"an upload"], 100)  # a grid's photos, made side by side, in order
    assert grid[0] is thumbs.of(str(other), 100) and grid[1] is first and grid[2] == b"an upload"
    assert Image.open(io.BytesIO(base64.b64decode(thumbs.of(str(photo), 60).split(",")[1]))).width == 60  # another width, another
    os.utime(photo, ns=(1, 1))  # the file changed since
    assert thumbs.of(str(photo), 100) is not first
    assert thumbs.of(b"an upload", 100) == b"an upload"  # uploads are shown as they are
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    assert thumbs.of(str(tmp_path / "bad.jpg"), 100) == str(tmp_path / "bad.jpg")  # the page says what is wrong
    assert thumbs.of(str(tmp_path / "gone.jpg"), 100) == str(tmp_path / "gone.jpg")


def test_a_server_keeps_one_engine_per_store_and_encoder(tmp_path: Path) -> None:
    engines = Engines()
    got: list[Engine] = []
    threads = [threading.Thread(target=lambda: got.append(engines.get(str(tmp_path), "efficientnet-lite0"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(e) for e in got}) == 1  # visitors arriving together share one engine
    assert engines.get(str(tmp_path), "efficientnet-lite2") is not got[0]
    assert engines.get(str(tmp_path / "other"), "efficientnet-lite0") is not got[0]


def test_the_apps_engines_scan_the_words_and_never_load_the_word_index(tmp_path: Path) -> None:
    engine = Engines().get(str(tmp_path), "efficientnet-lite0")
    found = engine.similar_words("ocean", 5)
    assert [r.item for r in found] == [w for w, _ in engine.words.similar_words("ocean", 5, kind="exact")]
    assert "sea" in [r.item for r in found]
    assert set(engine.words._indexes) == {"exact"}  # the 400k-word HNSW index was never loaded


def test_a_photo_is_labelled_by_its_path_in_the_folder(tmp_path: Path) -> None:
    source = Source(str(tmp_path / "photos"), Engine(tmp_path / "features"))
    assert source.label(str(tmp_path / "photos" / "cat" / "1.jpg")) == "cat/1.jpg"
    assert source.label(str(tmp_path / "photos-2" / "cat" / "1.jpg")) == "../photos-2/cat/1.jpg"  # not a prefix match


def test_a_folder_is_indexed_once_per_server_and_store() -> None:
    indexed = IndexedFolders()
    report = UpdateReport(added=["photos/cat/1.jpg"], unchanged=1)
    assert indexed.report("features", "efficientnet-lite0", "photos") is None
    indexed.record("features", "efficientnet-lite0", "photos", report)
    assert indexed.report("features", "efficientnet-lite0", "photos") is report
    assert indexed.report("features", "efficientnet-lite2", "photos") is None  # another store: not yet
    assert indexed.report("features", "efficientnet-lite0", "other photos") is None


def test_the_page_trains_the_clis_methods_its_default_first() -> None:
    cli_choices = next(a.choices for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions if a.dest == "method")
    assert set(trainable_methods(True)) == {m for m in cli_choices if m != "conse"} == set(METHOD_LABELS)
    assert trainable_methods(True)[0] == joint.default_method(True) == joint.SENTENCE_METHOD
    assert joint.default_method(True, text="glove") == "captions"
    assert trainable_methods(False) == [joint.SENTENCE_METHOD, joint.DEFAULT_METHOD, "hybrid"]  # no captions: none offered


def test_an_error_is_one_line_and_a_bug_is_named_by_its_type() -> None:
    assert message(VectorSearchError("unknown word 'qq'")) == "unknown word 'qq'"
    assert message(FileNotFoundError(2, "No such file or directory", "x.jpg")) == "[Errno 2] No such file or directory: 'x.jpg'"
    assert message(KeyError("oops")) == "KeyError: 'oops'"


def test_the_words_that_counted_read_the_same_in_the_cli_and_the_app() -> None:
    words = [WordWeight("cat", 0.994), WordWeight("sun", 0.004), WordWeight("plane", 1.0, "aeroplane"), WordWeight("person", -0.05)]
    assert word_shares(words) == "cat 99%, sun 0%, plane 100% (as aeroplane), person -5%"
    assert word_shares(words, markdown=True) == "**cat** 99%, sun 0%, **plane** 100% (as aeroplane), person -5%"


# --- which photos the pickers offer, on a real indexed store ------------------------------------------


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> tuple[Path, Path]:
    """13 real photos (the noisy bottle among them) indexed once."""
    base = tmp_path_factory.mktemp("state")
    dataset = copy_subset(base / "photos", {"bottle": 3, "cat": 5, "bus": 5})
    assert (dataset / NOISY_EXAMPLE).is_file()
    Engine(base / "features").index(dataset)
    return dataset, base / "features"


@pytest.mark.slow
def test_pickers_start_on_the_noisy_bottle_and_offer_a_fixed_sample(indexed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from vector_search.store import sampling

    dataset, features = indexed
    source = Source(str(dataset), Engine(features))
    assert source.default_photo() == str(dataset / NOISY_EXAMPLE)
    assert source.label(source.default_photo()) == NOISY_EXAMPLE
    assert source.photo_choices() == source.engine.store.paths  # a small store is offered whole

    monkeypatch.setattr(sampling, "PICKER_SAMPLE", 6)
    sampled = Source(str(dataset), Engine(features))
    choices = sampled.photo_choices()
    assert str(dataset / NOISY_EXAMPLE) in choices and len(choices) in (6, 7)  # the sample, and the default
    assert {c.split("/")[-2] for c in choices} == {"bottle", "cat", "bus"}  # every class shows
    assert choices == sorted(choices, key=sampled.engine.store.paths.index)  # in store order
    assert Source(str(dataset), Engine(features)).photo_choices() == choices  # the same in a fresh engine


@pytest.mark.slow
def test_pickers_start_on_the_first_photo_without_the_noisy_bottle(tmp_path: Path, pascal_dataset: Path) -> None:
    dataset = copy_subset(tmp_path / "photos", {"dog": 2, "cat": 2})
    engine = Engine(tmp_path / "features")
    engine.index(dataset)
    assert Source(str(dataset), engine).default_photo() == engine.store.paths[0]


@pytest.mark.slow
def test_a_warm_up_loads_the_text_searchs_parts_once_per_store_state(indexed: tuple[Path, Path]) -> None:
    _, features = indexed
    engines = Engines()
    engine = engines.get(str(features), "efficientnet-lite0")
    thread = engines.warm(engine)
    assert thread is not None and engines.warm(engine) is None  # warming already: not twice
    thread.join(600)
    loaded = engine.current()
    assert {"joint", "joint_space", "text_scores"} <= set(loaded._parts) and "sentences" in engine._parts
    assert not any(key.startswith("tags:") for key in engine._parts)  # section 6's box loads them
    assert engines.warm(engine) is None  # this store state is warm
