"""What an engine loaded from a store: ONE object, `Loaded`, holding the store and every part derived
from it (image index, joint model and its index, the 2-D map), each loaded on first use by a
`loaded_once` property (load_part). Indexing, training or a store saved by another process replaces
it whole, so a part added there never outlives its store.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence, TypeVar

import numpy as np

from vector_search.joint.tagging import sentence_tag_entries
from vector_search.search.calibration import KEPT, SAMPLE_WORDS, Calibration, sample_words
from vector_search.store import derived
from vector_search.store.folders import open_store
from vector_search.store.metadata import Facets
from vector_search.store.projection import StoreMap, store_map
from vector_search.store.sampling import Overview
from vector_search.store.spaces import ImageSpace, JointSpace, joint_name
from vector_search.store.store import Store

if TYPE_CHECKING:  # imported where used: a query that needs no model loads none
    from vector_search.imaging.encoders import Encoder
    from vector_search.joint import JointModel, TagVocabulary
    from vector_search.text.sentence_encoder import SentenceEncoder
    from vector_search.text.sentences import Collection
    from vector_search.text.words import WordVectors

T = TypeVar("T")
_MISSING = object()


def load_part(owner, name: str, make: Callable[[], T]) -> T:
    """`owner._parts[name]`, made by `make()` on first use, once, under a lock of that part's own:
    loads of different parts run side by side (a page's sections load theirs while another thread
    loads the next ones), two threads never make one part twice, and reads of a loaded part take
    no lock, so threads never queue behind a load."""
    value = owner._parts.get(name, _MISSING)
    if value is not _MISSING:
        return value
    with owner._lock:
        lock = owner._part_locks.setdefault(name, threading.RLock())
    with lock:
        if name not in owner._parts:
            owner._parts[name] = make()
        return owner._parts[name]


def loaded_once(method: Callable[[object], T]) -> T:
    """A read-only property computed on first use, once (load_part), kept in the owner's `_parts` dict."""
    name = method.__name__

    @functools.wraps(method)
    def getter(self) -> T:
        return load_part(self, name, lambda: method(self))

    return property(getter)  # type: ignore[return-value]


class Owner(Protocol):
    """What a `Loaded` asks of the engine that made it (vector_search.engine.Engine)."""

    features_root: Path
    encoder_name: str | None
    model_path: Path | None
    text: str

    @property
    def words(self) -> WordVectors: ...

    @property
    def sentences(self) -> SentenceEncoder: ...

    def joint_model_path(self) -> Path: ...

    def encoder_named(self, name: str) -> Encoder: ...

    def tag_vocabulary(self, text: str = "glove", classes: Sequence[str] = ()) -> TagVocabulary: ...


class Loaded:
    """The store an engine answers from, and every part derived from it, each loaded on first use.

    Never patched: when the store or the joint model changes the engine makes a new one, so a part
    added here (a `loaded_once` property) is refreshed with the store without anyone listing it.
    A query reads one `Loaded` throughout, so a re-index in another thread never mixes two stores.
    """

    def __init__(self, engine: Owner, store: Store | None = None) -> None:
        self.engine = engine
        self._lock = threading.RLock()
        self._part_locks: dict[str, threading.RLock] = {}
        self._parts: dict[str, object] = {} if store is None else {"store": store}

    @contextlib.contextmanager
    def loading(self, *names: str) -> Iterator[None]:
        """Load the parts `names` not loaded yet in a thread while the block runs (a text query's index
        is read while its sentence encoder opens: both mostly outside the GIL); at the block's end wait
        for them, a load's error raised here as it would be without the thread."""
        missing = [name for name in names if name not in self._parts]
        if not missing:
            yield
            return
        with ThreadPoolExecutor(1, thread_name_prefix="load") as pool:
            done = pool.submit(lambda: [getattr(self, name) for name in missing])
            yield
            done.result()

    @loaded_once
    def store(self) -> Store:
        return open_store(self.engine.features_root, self.engine.encoder_name)

    def saved_since(self) -> bool:
        """Whether another process saved the store since it was loaded here."""
        store = self._parts.get("store")
        return isinstance(store, Store) and store.changed_on_disk()

    @loaded_once
    def images(self) -> ImageSpace:
        return ImageSpace.of(self.store)

    @loaded_once
    def joint(self) -> JointModel:
        """The trained joint model if there is one, else ConSE in the sentence space (open vocabulary, no training)."""
        from vector_search import joint

        engine, encoder = self.engine, self.store.encoder
        path = engine.joint_model_path()
        if engine.model_path is not None or path.exists() or joint.sidecar(path).exists():  # (a sidecar alone: its model went)
            trained = joint.JointModel.load(path, encoder=encoder)
            if trained.text != "minilm":  # checked against the word vectors it was trained with (the sentence space needs none)
                trained.check(words=engine.words)
            return trained
        model = engine.encoder_named(encoder)

        def classifier() -> tuple[np.ndarray, np.ndarray]:  # read when a photo is mapped (index, tag, similar), never by a text query
            weights = model.classifier()
            if weights is None:
                raise joint.ModelNotFoundError(f"{encoder} has no ImageNet classifier: train a joint model first")
            return weights

        if engine.text == "minilm":  # (GloVe is not loaded: the sentence ConSE does not use it)
            return joint.conse_model(classifier, None, encoder, sentences=lambda: engine.sentences, dim=model.dim)
        return joint.conse_model(classifier, engine.words, encoder, dim=model.dim)

    @loaded_once
    def joint_space(self) -> JointSpace:
        return JointSpace.of(self.store, self.joint)

    @loaded_once
    def image_scores(self) -> Calibration:
        """Distances of random photo pairs: what scores similar photos. Saved in the store beside the
        image index (made by `index`: 0.05-0.1 s at every first similar-photos query otherwise)."""
        return self._saved_calibration("images.scores", KEPT, lambda: Calibration.of_rows(self.images.vectors, live=self.store.live))

    @loaded_once
    def text_scores(self) -> Calibration:
        """Best-photo distances of random tag words, encoded as queries are: what scores text search.
        Saved in the store with the joint files (made by `index`: seconds at 1M, and the tag words)."""

        def make() -> Calibration:
            if self.joint.text != "minilm":  # GloVe: a tag word's vector is the query's
                return Calibration.of_best(self.joint_space.vectors, self.engine.tag_vocabulary().units, live=self.store.live)
            # The sentence tags are embedded as prompts ("a photo of a cat"); a query is encoded bare ("cat"). The words
            # only, and a bank of their own: not the tag vocabulary's vectors nor every text ever embedded (51 MiB a process).
            words = self.engine.sentences.encode_cached(sample_words(sentence_tag_entries(self.engine.words)), bank="calibration")
            return Calibration.of_best(self.joint_space.vectors, words, live=self.store.live)

        return self._saved_calibration(f"{joint_name(self.joint)}.scores", SAMPLE_WORDS, make, model=self.joint.fingerprint)

    def _saved_calibration(self, name: str, most: int, make: Callable[[], Calibration], **meta: object) -> Calibration:
        """The calibration saved in the store as `name` (at most `most` values) for this store state and
        `meta`, else `make()`'s, saved there."""
        store, key = self.store, {"fingerprint": self.store.fingerprint}
        saved = derived.load_array(store.directory, name, key, most, fewer=True, **meta)
        if saved is not None and len(saved):
            return Calibration(saved)
        calibration = make()
        derived.save_array(store.directory, name, calibration.null, key, **meta)
        return calibration

    @loaded_once
    def collection(self) -> Collection:
        """What text queries are weighed against: the photos' joint vectors and the class names."""
        from vector_search.text.sentences import Collection

        return Collection.of(self.joint_space.vectors, self.store.classes, self.engine.words)

    @loaded_once
    def image_map(self) -> StoreMap:
        """A 2-D map (t-SNE) of a sample of the image vectors (projection.store_map); saved in the store."""
        return store_map(self.store)

    @loaded_once
    def overview(self) -> Overview:
        """The store's classes and a sample of its photos, for pages (never all N per rerun)."""
        return Overview.of(self.store)

    @loaded_once
    def facets(self) -> Facets:
        """What the store's photos can be filtered by (subfolders, dates taken, cameras), for a page's filter row."""
        return Facets.of(self.store)
