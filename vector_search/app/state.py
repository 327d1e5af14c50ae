"""The app's state and policy, without Streamlit: what the page decides, tested on its own.

- `Settings` (the sidebar's values) and `Settings.allowed()`, the folder-root check of a server;
- `Engines` and `IndexedFolders`: what one server keeps for all its visitors (the page holds one
  of each in `st.cache_resource`);
- `ResultCache`: answers kept a short while (a minute), so a rerun that changes nothing does not
  search again; `Thumbnails`: the photos shown, made small once per server;
- `once_per_tick`: a ticked action box acts once, not on every rerun while it stays ticked;
- `Source`: the photos the walkthrough runs on, and the sample of them pickers offer;
- the joint methods the page trains (the CLI's, `joint.TRAINABLE`), and `message()`, an error as one line.
"""

from __future__ import annotations

import io
import logging
import math
import os
import threading
import time
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Hashable, MutableMapping, Sequence, TypeVar

from vector_search import config, serving
from vector_search.datasets import gallery
from vector_search.datasets.pascal import NOISY_EXAMPLE
from vector_search.engine import Engine
from vector_search.errors import VectorSearchError
from vector_search.imaging.images import ImageError, class_of, printable, thumbnail_uri
from vector_search.runtime.ort import cpu_threads
from vector_search.store.updates import UpdateReport

T = TypeVar("T")
log = logging.getLogger("vector_search.app")

TEXT_EXAMPLES = ("ocean", "street", "tree", "cat sofa", "cat + sofa - person", "2:dog + grass")
METHOD_LABELS = {  # the joint methods the page offers to train (joint.TRAINABLE), as the menu shows them
    "sentence": "sentence: whole sentences, in the sentence encoder's space (the default; captions too if any)",
    "blend": "blend: a class classifier blended with ConSE, in GloVe's space (`--text glove` without captions)",
    "captions": "captions: the blend, also learning from the photos' captions, in GloVe's space",
    "hybrid": "hybrid: the DeViSE-style network (epochs, loss curve)",
}


@dataclass(frozen=True)
class Settings:
    """The sidebar's values: the image folder, the encoder, results per query, the store's folder."""

    dataset: str
    encoder: str
    k: int
    features: str
    use_gallery: bool = False

    def allowed(self) -> Settings:
        """The settings with both folders checked against the server's root (serving.check_allowed:
        PathNotAllowedError naming the folder); on a laptop (no root) as typed (a NUL byte is refused anywhere)."""
        for folder in (self.dataset, self.features):
            serving.check_typed(folder)
        if config.serve_root() is None:
            return self
        dataset = serving.check_allowed(self.dataset, "dataset folder")
        features = serving.check_allowed(self.features, "feature store folder")
        return replace(self, dataset=str(dataset), features=str(features))


class Engines:
    """One engine per (store folder, encoder, joint model file, text space), shared by every visitor of a server.
    Its similar-words queries (one per rerun of the words section) scan the 400k words (tens of ms)
    rather than load the 140 MB word index (seconds, in the first page's way; bench/bench_word_scan.py)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: dict[tuple[str, str, str | None, str], Engine] = {}
        self._warmed: weakref.WeakSet = weakref.WeakSet()  # the engines' states (engine.Loaded) warmed up

    def get(self, features_root: str, encoder: str, model_path: str | None = None, text: str = "minilm") -> Engine:
        with self._lock:
            key = (features_root, encoder, model_path, text)
            if key not in self._engines:
                self._engines[key] = Engine(features_root, encoder_name=encoder, model_path=model_path, text=text, word_index="exact")
            return self._engines[key]

    def warm(self, engine: Engine) -> threading.Thread | None:
        """Start `warm_up(engine)` in a background thread, once per store state the engine answers
        from: the first page's later sections then find their parts loaded (or loading) while its
        first sections render. The thread, or None when this state is warm or warming already."""
        loaded = engine.current()
        with self._lock:
            if loaded in self._warmed:
                return None
            self._warmed.add(loaded)
        thread = threading.Thread(target=warm_up, args=(engine,), name="vector_search-warm-up", daemon=True)
        thread.start()
        return thread


def warm_up(engine: Engine) -> None:
    """Load what the first page's text search needs (the joint model, the joint index and its score
    calibration, the sentence encoder or, in GloVe's space, the word vectors), in the calling thread.
    The word vectors of section 4, the tag words and the map wait until their box is opened. A
    failure is left for the section that needs the part to report."""
    try:
        loaded = engine.current()
        _ = loaded.joint_space, loaded.text_scores  # (the joint model with them; the scores saved by `index` need no index)
        _ = engine.sentences if loaded.joint.text == "minilm" else loaded.collection
    except Exception:  # the section asking for it again shows the error on the page
        log.debug("warm-up of %s stopped", engine.features_root, exc_info=True)


def glove_model_path(engine: Engine) -> Path:
    """Where the page keeps the GloVe-space model it shows beside the default one: `joint-<encoder>-glove.npz`."""
    path = engine.joint_model_path()
    return path.with_name(f"{path.stem}-glove{path.suffix}")


class IndexedFolders:
    """The folders this server has indexed (or checked) into each store: (store, encoder, folder) ->
    its UpdateReport. A folder is indexed once per server, not once per visitor or rerun."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[tuple[str, str, str], UpdateReport] = {}

    def report(self, features_root: str, encoder: str, folder: str) -> UpdateReport | None:
        with self._lock:
            return self._reports.get((features_root, encoder, folder))

    def record(self, features_root: str, encoder: str, folder: str, report: UpdateReport) -> None:
        with self._lock:
            self._reports[(features_root, encoder, folder)] = report


class ResultCache:
    """Answers by key, each kept `ttl` seconds, at most `max_entries` (the least recently used go
    first). Thread-safe; an answer is computed outside the lock (two visitors may both compute it)."""

    def __init__(self, max_entries: int = 32, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries, self.ttl, self.clock = max_entries, ttl, clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self.ttl:
                self._entries.move_to_end(key)
                return entry[1]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value


class Thumbnails:
    """Small JPEGs of the photos a page shows, each made once per server (per file version and
    width: images.thumbnail), so a rerun sends the browser a few KB per photo and decodes nothing."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._cache = ResultCache(max_entries, ttl=math.inf)
        # A grid's new photos are decoded side by side (Pillow releases the GIL): 8 new results took 11-24 ms one by one.
        self._pool = ThreadPoolExecutor(cpu_threads(), thread_name_prefix="vector_search-thumbnail")

    def many(self, photos: Sequence[str | bytes], width: int) -> list[str | bytes]:
        """`of` each photo, in order, the ones not made yet made side by side."""
        return list(self._pool.map(lambda photo: self.of(photo, width), photos))

    def of(self, photo: str | bytes, width: int) -> str | bytes:
        """A photo's thumbnail `width` pixels wide as a data: URI (sent with the page: the browser fetches
        nothing); an upload (bytes) as it is, and a file that cannot be read or decoded as its path (the
        page then says what is wrong with it)."""
        if isinstance(photo, bytes):
            return photo
        try:
            info = os.stat(photo)
            return self._cache.get((photo, width, info.st_mtime_ns, info.st_size), lambda: thumbnail_uri(photo, width))
        except (OSError, ImageError):
            return photo


def once_per_tick(session: MutableMapping[str, object], ticked: bool, memo: str, run: tuple) -> bool:
    """Whether a ticked action box acts now: once per tick (or per change of `run`), not on every
    rerun while it stays ticked. The caller records `session[memo] = run` when done; unticking forgets it."""
    if not ticked:
        session.pop(memo, None)
        return False
    return session.get(memo) != run


def message(err: BaseException) -> str:
    """An exception as one line for the page: the library's errors and file errors say it all;
    anything else is a bug, named by its type."""
    if isinstance(err, (VectorSearchError, OSError)):
        return printable(str(err))
    return printable(f"{type(err).__name__}: {err}")


def trainable_methods(has_captions: bool) -> list[str]:
    """The joint methods the page offers (the CLI's trainable ones; captions only where there are
    captions), the one `vector-search train` fits by default first."""
    from vector_search.joint import TRAINABLE, default_method

    methods = [m for m in TRAINABLE if m != "captions" or has_captions]
    first = default_method(has_captions)
    return [first, *(m for m in methods if m != first)]


def as_query(photo: str | bytes) -> str | io.BytesIO:
    """A picked photo as the engine takes it: a path, or an upload's bytes as a file in memory."""
    return io.BytesIO(photo) if isinstance(photo, bytes) else photo


@dataclass(frozen=True)
class Source:
    """The photos the walkthrough runs on (the dataset folder, or the built-in gallery) and their engine."""

    folder: str
    engine: Engine

    @property
    def key(self) -> tuple[str, str, str | None]:
        """What the source is, for caches and one-shot actions: (folder, store folder, encoder)."""
        return self.folder, str(self.engine.features_root), self.engine.encoder_name

    def default_photo(self) -> str:
        """The photo pickers start on: the noisy bottle of Pascal Sentences, the gallery's cat, else the first."""
        candidates = [os.path.join(self.folder, NOISY_EXAMPLE)]
        candidates += [str(gallery.photo_path(self.folder, p)) for p in gallery.PHOTOS]
        store = self.engine.store
        found = (i for i in map(store.find, candidates) if i is not None)  # a lookup, not a scan of all paths
        return store.path(next(found, 0))  # (one row's path: not all N)

    def photo_choices(self) -> list[str]:
        """The photos pickers offer: a fixed sample of the store (all of a small one), with the default."""
        store, overview = self.engine.store, self.engine.current().overview
        rows = set(overview.photos.tolist())
        rows.add(store.find(self.default_photo()) or 0)
        return [store.path(i) for i in sorted(rows)]

    def caption(self, path: str) -> str:
        """How a photo is named under it in a grid: its class when the folders are classes, else its path under the folder."""
        return printable(class_of(path)) if self.engine.current().overview.labelled else self.label(path)

    def label(self, path: str) -> str:
        """A photo's path under the folder, as a page can show it (undecodable bytes as \\xNN): a cut,
        not os.path.relpath, since pickers label a thousand photos on every rerun."""
        prefix = os.path.join(self.folder, "")
        return printable(path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, self.folder))
