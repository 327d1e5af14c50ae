"""The engine: the one object the CLI, the app, the HTTP API and the evaluation ask for answers.

It loads lazily (no TensorFlow until a model must run), caches what it loaded, and is safe to
share read-only between threads once loaded.

What is loaded from the store lives in ONE object, `Loaded`: the store and every part derived
from it (image index, joint model and its index, the 2-D map). Indexing, training or a store
saved by another process replaces it whole, so a part added there never outlives its store;
what does not depend on the store (encoders, word vectors) stays on the engine.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from vector_search import config, fileio
from vector_search.answers import Result
from vector_search.engine.loaded import Loaded, load_part, loaded_once
from vector_search.errors import VectorSearchError
from vector_search.imaging.images import load_image
from vector_search.store import locks
from vector_search.store.folders import store_dir, store_encoders
from vector_search.store.metadata import Filters
from vector_search.store.projection import StoreMap
from vector_search.store.ranking import ranked, reweighted
from vector_search.store.sampling import trainable_classes
from vector_search.store.spaces import ImageSpace, JointSpace
from vector_search.store.store import Store
from vector_search.store.updates import Progress, UpdateReport, file_sha256, update_store
from vector_search.text import query
from vector_search.text.words import DEFAULT_INDEX_KIND

if TYPE_CHECKING:  # imported where used: a query that needs no model loads none
    from vector_search.imaging.embedding import Embedder
    from vector_search.imaging.encoders import Encoder
    from vector_search.joint import JointModel, TagVocabulary
    from vector_search.text.sentence_encoder import SentenceEncoder
    from vector_search.text.words import WordVectors


T = TypeVar("T")
class EngineError(VectorSearchError, ValueError):
    """A request the engine cannot serve as asked (unknown class to hold out, no classifier, ...)."""


ImageQuery = str | os.PathLike | IO[bytes]
ClassChoice = int | str  # an ImageNet class id (0-999), or a name that must name one class


class Engine:
    """Similar images, similar words, tags and text search over one feature store.

    Arguments name what they hold: `encoder_name` (None: the encoder of the only store under
    `features_root`, else the default), `words_path` (a glove.*.txt; None: the packaged GloVe),
    `encoder_weights` and `model_path` (files; None: the defaults). `word_queries` is how many
    similar-words queries the engine will answer, when known (the CLI knows): a few are answered
    by an exact scan of the vocabulary, with no index to build or load; None (a server, the app:
    many) uses the word index (see words.WordVectors.index_kind_for). `text` is the text space of the
    untrained model and of `train` ("minilm", the sentence encoder's; "glove"). `word_index` names the word index kind outright ("exact": always a scan,
    as the app's page does, so that it never waits for the 140 MB index)."""

    loaded_type: type[Loaded] = Loaded  # a subclass adds derived parts (see tests/test_engine.py)

    def __init__(
        self,
        features_root: str | os.PathLike | None = None,
        encoder_name: str | None = None,
        words_path: str | os.PathLike | None = None,
        encoder_weights: str | os.PathLike | None = None,
        model_path: str | os.PathLike | None = None,
        word_queries: int | None = None,
        text: str = "minilm",
        word_index: str | None = None,
    ) -> None:
        self.features_root = Path(features_root if features_root is not None else config.features_root())
        self.encoder_name = encoder_name
        self.words_path = words_path
        self.encoder_weights = encoder_weights
        self.model_path = Path(model_path) if model_path else None  # None: models/joint-<encoder>.npz if trained
        self.word_queries = word_queries
        self.text = text
        self.word_index = word_index
        self._lock = threading.RLock()
        self._part_locks: dict[str, threading.RLock] = {}
        self._parts: dict[str, object] = {}  # what does not depend on the store: encoders, words
        self.loaded = self.loaded_type(self)

    # --- what gets loaded ------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self.current().store

    @property
    def images(self) -> ImageSpace:
        return self.current().images

    @property
    def joint(self) -> JointModel:
        return self.current().joint

    @property
    def joint_space(self) -> JointSpace:
        return self.current().joint_space

    def image_map(self) -> StoreMap:
        """A 2-D map (t-SNE) of (a sample of) the image vectors; computed once per store."""
        return self.current().image_map

    def encoder_in_use(self) -> str:
        """`encoder_name`, else that of the only store under features_root, else the default (never what was loaded before)."""
        from vector_search.imaging.encoders import DEFAULT_ENCODER

        if self.encoder_name:
            return self.encoder_name
        found = store_encoders(self.features_root)
        return found[0] if len(found) == 1 else DEFAULT_ENCODER

    @property
    def encoder(self) -> Encoder:
        return self.encoder_named(self.encoder_in_use())


    def encoder_named(self, name: str) -> Encoder:
        """The image encoder `name`, loaded once per engine (the weights take seconds to load)."""
        from vector_search.imaging.encoders import get_encoder

        return load_part(self, f"encoder:{name}", lambda: get_encoder(name, weights=self.encoder_weights))

    @loaded_once
    def words(self) -> WordVectors:
        from vector_search.text.words import load_words

        return load_words(self.words_path)

    @loaded_once
    def sentences(self) -> SentenceEncoder:
        from vector_search.text.sentence_encoder import sentence_encoder

        return sentence_encoder()

    def tag_vocabulary(self, text: str = "glove", classes: Sequence[str] = ()) -> TagVocabulary:
        """The tags of a text space ("minilm", with a model's `classes`; "glove"), built once (joint/tagging.py)."""
        from vector_search.joint import tagging

        if text == "minilm":
            return load_part(self, f"tags:minilm:{sorted(classes)}", lambda: tagging.sentence_tag_vocabulary(self.words, self.sentences, classes))
        return load_part(self, "tags:glove", lambda: tagging.tag_vocabulary(self.words))

    def joint_model_path(self) -> Path:
        """`model_path`, else models/joint-<encoder>.npz for the encoder in use."""
        return self.model_path or config.models_root() / f"joint-{self.encoder_in_use()}.npz"

    # --- indexing --------------------------------------------------------------------------------

    def index(
        self, dataset: str | os.PathLike, progress: Progress | None = None, rebuild: bool = False, wait: bool = True,
        index_kind: str | None = None, embedder: Embedder | None = None, train: bool = True,
    ) -> UpdateReport:
        """Index (or update; `rebuild`: redo) a folder and its image index (`index_kind`: recorded, see spaces.py) with `embedder`
        (default: local; embedding.py); returns the UpdateReport. Holds the store's writer lock (`wait=False`: LockBusyError at once
        if taken). `train`: with class folders and no joint model yet, train the default one (seconds; said in the report's notes)."""
        name = self.encoder_in_use()
        directory = store_dir(self.features_root, name)
        with locks.writer_lock(directory, f"the feature store {directory}", wait):
            store, report = update_store(dataset, self.features_root, name, self.encoder_named(name), progress,
                                         rebuild=rebuild, index_kind=index_kind, embedder=embedder)
            self._replace_loaded(store, build_index=True)
        if train and not config.read_only() and not self.joint_model_path().exists() and trainable_classes(store.classes):
            model = self.train(wait=wait)
            report.notes.append(f"trained the default joint model ({model.method}) on the class folders in {model.meta['train_seconds']} s")
        else:
            self.index_joint(report.notes)
        return report

    def train(
        self, epochs: int = 50, holdout_classes: Sequence[str] = (), method: str | None = None, seed: int = 0,
        progress: Callable[[int, dict], None] | None = None, wait: bool = True, captions: str | os.PathLike | bool = True,
        text: str | None = None,
    ) -> JointModel:
        """Train a joint model on the store's cached features, save it, and use it from now on.

        `holdout_classes` are left out entirely (for zero-shot evaluation); 20% of the rest is
        held out as a stratified test split recorded in the model, with all its captions.
        `progress(epoch, logs)` is called after each epoch of the hybrid. Holds the model's writer
        lock (`wait` as in index()). `captions`: as datasets.store_captions. Without a `method`: for
        `text` (default: the engine's) "minilm" "sentence" (joint/sentence.py, captions if any), for
        "glove" "captions" (joint/captions.py) if there are captions, else the blend."""
        from vector_search import joint
        from vector_search.datasets.pascal import store_captions

        store = self.store
        found = store_captions(store, captions) if method in (None, "captions", "sentence") else None
        method = method or joint.default_method(bool(found), text or self.text)
        if unknown := sorted(set(holdout_classes) - set(store.classes)):
            raise EngineError(f"unknown class(es) to hold out: {', '.join(unknown)}; classes are {', '.join(sorted(set(store.classes)))}")
        path = self.joint_model_path()
        with locks.writer_lock(path, f"the joint model {path}", wait):
            fileio.remove_temporaries(path, joint.sidecar(path))  # left by a save that was killed
            model = joint.train(
                store.vectors, store.classes, self.words, method=method, encoder=store.encoder,
                imagenet_classifier=self.encoder_named(store.encoder).classifier(), exclude_classes=holdout_classes,
                seed=seed, epochs=epochs, items=[item.path for item in store.items], captions=found, progress=progress,
                sentences=self.sentences if method == joint.SENTENCE_METHOD else None,
            )
            model.save(path)
        self._replace_loaded(store)
        self.index_joint()
        return model

    def index_joint(self, notes: list[str] | None = None) -> None:
        """Build (or extend with the rows added since) the joint index of the model in use and its score
        calibration, so that the first text query builds nothing (minutes at 1M); with no joint model
        to use, say why in `notes`."""
        loaded = self.current()
        if not len(loaded.store):
            return
        try:
            model = loaded.joint
        except VectorSearchError as err:  # none (no classifier), or a broken one: the index stands, the text query says it
            if notes is not None:
                notes.append(f"no joint index: {err}")
            return
        loaded._parts["joint_space"] = JointSpace.of(loaded.store, model, merge=True)
        loaded.text_scores  # noqa: B018  (made and saved now: the first query reads it)

    def _replace_loaded(self, store: Store, build_index: bool = False) -> None:
        """Answer from `store` from now on, its derived parts recomputed when first used (`build_index`: the image index now)."""
        loaded = self.loaded_type(self, store)
        if build_index:  # an IVF index also takes in its fresh rows (segments.py); its scores' calibration saved with it
            loaded._parts["images"] = ImageSpace.of(store, merge=True)
            if len(store):
                loaded.image_scores  # noqa: B018
        with self._lock:
            self.loaded = loaded

    def current(self) -> Loaded:
        """The state to answer from: the loaded one, or a fresh one (loaded whole on first use) if
        another process saved the store since (`index` while the app serves). A query reads one
        state throughout, never two stores; until a save lands, answers come from the last one."""
        loaded = self.loaded
        if not loaded.saved_since():
            return loaded
        with self._lock:
            if self.loaded is loaded:
                self.loaded = self.loaded_type(self)
            return self.loaded

    # --- image queries ---------------------------------------------------------------------------

    def image_vector(self, image: ImageQuery, loaded: Loaded | None = None) -> tuple[np.ndarray, int | None]:
        """The feature vector of an image file or upload, and its store position if it is indexed.

        A file whose saved vector is still current (same size and mtime as when indexed, or
        the same content as an indexed file) reuses it: no model runs."""
        store = (loaded or self.current()).store
        position = None
        if isinstance(image, (str, os.PathLike)):
            position = store.find(image)
            try:
                st = os.stat(image)
                if position is not None and store.item(position).matches(st) and np.isfinite(store.vectors[position]).all():
                    return store.vectors[position], position
                same = store.find_content(file_sha256(image))
                if same is not None and np.isfinite(store.vectors[same]).all():  # (not finite: damaged, embedded below)
                    return store.vectors[same], position
            except OSError:
                pass  # load_image below says what is wrong with the file
        encoder = self.encoder_named(store.encoder)
        pixels = encoder.preprocess(load_image(image, min_side=encoder.decode_side))  # decoded as when indexing
        return encoder.embed(pixels[None])[0], position

    def similar_images(self, image: ImageQuery, k: int = 10, reweight: ClassChoice | None = None, filters: Filters | None = None,
                       min_score: float | None = None) -> list[Result]:
        """The k indexed images nearest to an image (itself excluded) passing `filters`, scored (`min_score` drops weaker ones).

        `reweight` picks an ImageNet class, by id (517) or by a name of one class ("siamese cat"):
        every feature is multiplied by that class's classifier weight first, so the search looks
        at what makes that class (an exact scan of its own metric: no score).
        """
        loaded = self.current()
        vector, position = self.image_vector(image, loaded)
        if reweight is None:
            return ranked(loaded.store, loaded.images, loaded.images.project(vector), k, filters, position, loaded.image_scores, min_score)
        weights = self.class_weights(reweight, loaded.store.encoder)
        return reweighted(loaded.store, loaded.images, vector, weights, k, filters, exclude=position)

    def class_weights(self, choice: ClassChoice, encoder_name: str | None = None) -> np.ndarray:
        """Per-feature weights of one ImageNet class, by id or name (query.class_weights, imagenet.class_id),
        for the encoder in use (or `encoder_name`)."""
        from vector_search.imaging.imagenet import class_id

        encoder = self.encoder_named(encoder_name or self.encoder_in_use())
        classifier = encoder.classifier()
        if classifier is None:
            raise EngineError(f"{encoder.name} has no ImageNet classifier to re-weight with")
        return query.class_weights(classifier[0], class_id(choice))

    def photos(self, filters: Filters | None = None, among: Iterable[T] | None = None) -> Iterator[str | T]:
        """The indexed photos passing `filters` (all: None), in store order; `among` given, those of its paths that are
        indexed photos passing them, in its order (what is not a path passes through, for the caller to report)."""
        store = self.store
        allowed = filters.allowed(store) if filters is not None else np.ones(len(store), bool) if store.live is None else store.live
        if among is None:
            return (store.path(int(i)) for i in np.flatnonzero(allowed))
        return (p for p in among if not isinstance(p, (str, os.PathLike)) or ((row := store.find(p)) is not None and allowed[row]))

    def tags(self, image: ImageQuery, k: int = 5) -> list[Result]:
        """The k words nearest to an image in the joint space (filtered by joint.is_tag_word)."""
        loaded = self.current()
        features = self.image_vector(image, loaded)[0][None]
        return [Result(word, d) for word, d in loaded.joint.tags(features, self.tag_vocabulary(loaded.joint.text, loaded.joint.classes), k)[0]]

    # --- word queries ----------------------------------------------------------------------------

    def similar_words(self, text: str, k: int = 10) -> list[Result]:
        """The k words nearest to a word or phrase (its own words excluded)."""
        words = self.words
        kind = self.word_index or (DEFAULT_INDEX_KIND if self.word_queries is None else words.index_kind_for(self.word_queries))
        return [Result(word, float(d)) for word, d in words.similar_words(text, k, kind=kind)]

    def search_text(self, text: str, k: int = 10, filters: Filters | None = None, min_score: float | None = None) -> tuple[list[Result], query.QueryVector]:
        """Images for a text query that pass `filters`, with scores (`min_score` drops weaker ones), and the query as parsed:
        in the sentence space each term encoded whole, in GloVe's its words weighed (query.py, sentences.py)."""
        loaded = self.current()
        minilm = loaded.joint.text == "minilm"
        with loaded.loading("joint_space", "text_scores"):  # read while the query is encoded (the first: its encoder opened)
            parsed = query.sentence_query_vector(text, self.sentences) if minilm else query.query_vector(text, self.words, loaded.collection)
        return ranked(loaded.store, loaded.joint_space, parsed.vector, k, filters, None, loaded.text_scores, min_score), parsed

    def search(self, text: str, k: int = 10, filters: Filters | None = None, min_score: float | None = None) -> list[Result]:
        """Images for a text query: a word, a phrase, a sentence or weighted terms (see query.py)."""
        return self.search_text(text, k, filters, min_score)[0]
