"""The engine: the one object the CLI, the app and the evaluation ask for answers.

It loads lazily (no TensorFlow until a model must run), caches what it loaded, and is
safe to share read-only between threads once loaded.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Sequence, TypeVar

import numpy as np

from . import config, query
from . import index as nn
from .images import load_image
from .store import Store, file_sha256, open_store, update_store

log = logging.getLogger(__name__)
T = TypeVar("T")
_MISSING = object()
STALE_MARGIN = 8  # extra hits fetched so files deleted since indexing can be dropped


@dataclass(frozen=True)
class Result:
    """One answer: an item (image path or word) and its cosine distance to the query."""

    item: str
    distance: float


def _loaded_once(method: Callable[["Engine"], T]) -> T:
    """A read-only property computed on first use, once, under the engine's lock."""
    name = method.__name__

    @functools.wraps(method)
    def getter(self: "Engine") -> T:
        value = self._loaded.get(name, _MISSING)  # loaded: no lock, threads never queue behind a load
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = method(self)
            return self._loaded[name]  # type: ignore[return-value]

    return property(getter)  # type: ignore[return-value]


ImageQuery = str | os.PathLike | IO[bytes]


class Engine:
    """Similar images, similar words, tags and text search over one feature store."""

    def __init__(
        self,
        store_root: str | os.PathLike | None = None,
        encoder: str | None = None,
        words: str | os.PathLike | None = None,
        encoder_weights: str | os.PathLike | None = None,
        model: str | os.PathLike | None = None,
    ) -> None:
        self.store_root = Path(store_root if store_root is not None else config.features_root())
        self.encoder_name = encoder
        self.words_source = words
        self.encoder_weights = encoder_weights
        self.model_path = Path(model) if model else None  # None: models/joint-<encoder>.npz if trained
        self._lock = threading.RLock()
        self._loaded: dict[str, object] = {}

    # --- what gets loaded ------------------------------------------------------------------------

    @_loaded_once
    def store(self) -> Store:
        store = open_store(self.store_root, self.encoder_name)
        self.encoder_name = store.encoder
        return store

    @_loaded_once
    def encoder(self):  # -> encoders.Encoder
        from .encoders import DEFAULT_ENCODER, get_encoder

        return get_encoder(self.encoder_name or DEFAULT_ENCODER, weights=self.encoder_weights)

    @_loaded_once
    def images(self) -> "ImageSpace":
        return ImageSpace.of(self.store)

    @_loaded_once
    def words(self):  # -> words.WordVectors
        from .words import load_words

        return load_words(self.words_source)

    @_loaded_once
    def joint(self):  # -> joint.JointModel
        """The trained joint model if there is one, else ConSE (open vocabulary, no training)."""
        from . import joint

        path = self.joint_model_path()
        if self.model_path is not None or path.exists():
            return joint.JointModel.load(path, encoder=self.store.encoder, words=self.words)
        classifier = self.encoder.classifier()
        if classifier is None:
            raise joint.ModelNotFoundError(f"{self.store.encoder} has no ImageNet classifier: train a joint model first")
        return joint.conse_model(classifier, self.words, self.store.encoder)

    @_loaded_once
    def joint_space(self) -> "JointSpace":
        return JointSpace.of(self.store, self.joint)

    @_loaded_once
    def collection(self):  # -> sentences.Collection
        """What text queries are weighed against: the photos' joint vectors and the class names."""
        from .sentences import Collection

        return Collection.of(self.joint_space.vectors, self.store.classes, self.words)

    @_loaded_once
    def tag_vocabulary(self):  # -> joint.TagVocabulary
        from .joint import tag_vocabulary

        return tag_vocabulary(self.words)

    def joint_model_path(self) -> Path:
        from .encoders import DEFAULT_ENCODER

        return self.model_path or config.models_root() / f"joint-{self.encoder_name or DEFAULT_ENCODER}.npz"

    # --- indexing --------------------------------------------------------------------------------

    def index(self, dataset: str | os.PathLike, progress=None, rebuild: bool = False):
        """Index (or update; `rebuild`: redo) a dataset folder and its Annoy index; returns the UpdateReport."""
        store, report = update_store(
            dataset, self.store_root, self.encoder_name, self.encoder, progress, rebuild=rebuild
        )
        with self._lock:
            self._forget("store", "images", "joint", "joint_space", "collection", "_image_map")
            self._loaded["store"] = store
        self.images  # build and save the index now, not at the first query
        return report

    def train(
        self,
        epochs: int = 50,
        holdout_classes: Sequence[str] = (),
        method: str | None = None,
        seed: int = 0,
        progress: Callable[[int, dict], None] | None = None,
        captions: str | os.PathLike | bool = True,
    ):  # -> joint.JointModel
        """Train a joint model on the store's cached features, save it, and use it from now on.

        `holdout_classes` are left out entirely (for zero-shot evaluation); 20% of the rest is
        held out as a stratified test split recorded in the model, with all its captions.
        `progress(epoch, logs)` is called after each epoch of the hybrid. `captions`: a captions
        folder, True to use `<dataset>/../sentence` if there is one, False for none. Without a
        `method`, "captions" (joint/captions.py) when there are captions, else the default blend.
        """
        from . import joint

        store = self.store
        found = self.captions(captions) if method in (None, "captions") else None
        method = method or ("captions" if found else joint.DEFAULT_METHOD)
        unknown = sorted(set(holdout_classes) - set(store.classes))
        if unknown:
            raise ValueError(f"unknown class(es) to hold out: {', '.join(unknown)}; classes are {', '.join(sorted(set(store.classes)))}")
        model = joint.train(
            store.vectors,
            store.classes,
            self.words,
            method=method,
            encoder=store.encoder,
            imagenet_classifier=self.encoder.classifier(),
            exclude_classes=holdout_classes,
            seed=seed,
            epochs=epochs,
            items=[item.path for item in store.items],
            captions=found,
            progress=progress,
        )
        path = self.joint_model_path()
        model.save(path)
        with self._lock:
            self.model_path = path
            self._forget("joint", "joint_space", "collection")
        return model

    def captions(self, folder: str | os.PathLike | bool = True) -> list[list[str]] | None:
        """Each indexed photo's captions from `folder` (True: `<dataset>/../sentence` if it exists,
        False: none); None when there is no folder or no photo has a caption."""
        from .datasets import default_captions_dir, read_captions

        store = self.store
        root = default_captions_dir(store.dataset) if folder is True else (Path(folder) if folder else None)
        if root is None:
            return None
        found, problems = read_captions(root, [item.path for item in store.items])
        for problem in problems:
            log.warning("caption file skipped: %s", problem)
        return found if any(found) else None

    def _forget(self, *names: str) -> None:
        for name in names:
            self._loaded.pop(name, None)

    # --- image queries ---------------------------------------------------------------------------

    def image_vector(self, image: ImageQuery) -> tuple[np.ndarray, int | None]:
        """The feature vector of an image file or upload, and its store position if it is indexed.

        A file whose saved vector is still current (same size and mtime as when indexed, or
        the same content as an indexed file) reuses it: no model runs.
        """
        store = self.store
        position = None
        if isinstance(image, (str, os.PathLike)):
            position = store.find(image)
            try:
                st = os.stat(image)
                if position is not None and store.items[position].matches(st):
                    return store.vectors[position], position
                same = store.find_content(file_sha256(image))
                if same is not None:
                    return store.vectors[same], position
            except OSError:
                pass  # load_image below says what is wrong with the file
        return self._embed(image), position

    def _embed(self, image: ImageQuery) -> np.ndarray:
        pixels = self.encoder.preprocess(load_image(image))
        return self.encoder.embed(pixels[None])[0]

    def _results(self, ids: np.ndarray, distances: np.ndarray, k: int, exclude: int | None = None) -> list[Result]:
        """The first k hits as Results, skipping `exclude` and files deleted since indexing."""
        paths = self.store.paths
        hits = (Result(paths[i], float(d)) for i, d in zip(ids, distances) if i != exclude)
        return [r for r in hits if os.path.exists(r.item)][:k]

    def similar_images(self, image: ImageQuery, k: int = 10, reweight: str | None = None) -> list[Result]:
        """The k indexed images nearest to an image (the image itself excluded if indexed).

        `reweight` names an ImageNet class ("siamese cat"): every feature is multiplied by that
        class's classifier weight first, so the search looks at what makes that class.
        """
        vector, position = self.image_vector(image)
        wanted = k + 1 + STALE_MARGIN
        if reweight is None:
            ids, distances = self.images.index.search(self.images.project(vector), wanted)
        else:
            weights = self.class_weights(reweight)
            ranked = nn.exact_index(query.reweight(self.store.vectors, weights))
            ids, distances = ranked.search(query.reweight(vector, weights), wanted)
        return self._results(ids, distances, k, exclude=position)

    def class_weights(self, class_name: str) -> np.ndarray:
        """Per-feature weights of the ImageNet class called `class_name` (see query.class_weights)."""
        from .imagenet import find_class

        classifier = self.encoder.classifier()
        if classifier is None:
            raise ValueError(f"{self.encoder.name} has no ImageNet classifier to re-weight with")
        return query.class_weights(classifier[0], find_class(class_name))

    def tags(self, image: ImageQuery, k: int = 5) -> list[Result]:
        """The k words nearest to an image in the joint space (filtered by joint.is_tag_word)."""
        from .joint import tags

        joint_vector = self.joint.tag_vectors(self.image_vector(image)[0][None])
        return [Result(word, d) for word, d in tags(joint_vector, self.tag_vocabulary, k)[0]]

    def image_map(self) -> np.ndarray:
        """A 2-D map (t-SNE) of the image vectors, row i for store item i; computed once per store."""
        return self._image_map

    @_loaded_once
    def _image_map(self) -> np.ndarray:
        from .projection import project_2d

        store = self.store
        points = store.load_array("map", method="tsne")
        if points is None:
            points = project_2d(store.vectors, method="tsne").astype(np.float32)
            store.save_array("map", points, method="tsne")
        return points

    # --- word queries ----------------------------------------------------------------------------

    def similar_words(self, text: str, k: int = 10) -> list[Result]:
        """The k words nearest to a word or phrase (its own words excluded)."""
        return [Result(word, float(d)) for word, d in self.words.similar_words(text, k)]

    def text_query(self, text: str) -> query.QueryVector:
        """A text query's vector, its words weighed against this collection (query.py, sentences.py)."""
        return query.query_vector(text, self.words, self.collection)

    def search_text(self, text: str, k: int = 10) -> tuple[list[Result], query.QueryVector]:
        """Images for a text query, and the parsed query (which words counted, and how much)."""
        parsed = self.text_query(text)
        ids, distances = self.joint_space.index.search(parsed.vector, k + STALE_MARGIN)
        return self._results(ids, distances, k), parsed

    def search(self, text: str, k: int = 10) -> list[Result]:
        """Images for a text query: a word, a phrase, a sentence or weighted terms (see query.py)."""
        return self.search_text(text, k)[0]


@dataclass(frozen=True)
class ImageSpace:
    """Image vectors as searched: L2-normalised, then centred on the collection's mean.

    Centring removes the direction every photo shares; measured on Pascal Sentences it lifts
    leave-one-out precision@10 from 0.537 to 0.564 (see `vector-search evaluate`).
    """

    mean: np.ndarray
    vectors: np.ndarray
    index: nn.Index

    def project(self, vectors: np.ndarray) -> np.ndarray:
        return nn.normalize(vectors) - self.mean

    @classmethod
    def of(cls, store: Store) -> "ImageSpace":
        """The space of a store, with its saved Annoy index (built and saved when missing or stale)."""
        units = nn.normalize(store.vectors)
        mean = units.mean(axis=0) if len(units) else np.zeros(units.shape[1], np.float32)
        vectors = units - mean
        index = nn.load_or_build(store.directory / "images.ann", vectors, f"{store.fingerprint}-centred")
        return cls(mean, vectors, index)


@dataclass(frozen=True)
class JointSpace:
    """The joint (word-space) vectors of a store's images under one joint model, and their index."""

    vectors: np.ndarray
    index: nn.Index

    @classmethod
    def of(cls, store: Store, model) -> "JointSpace":
        """Cached in the store, keyed by the model; recomputed (numpy only) when either changes."""
        key = model.fingerprint
        name = "joint"
        vectors = store.load_array(name, model=key)
        if vectors is None:
            vectors = model.transform(store.vectors) if len(store) else np.zeros((0, model.meta["words"]["dim"]), np.float32)
            store.save_array(name, vectors, model=key)
        return cls(vectors, nn.load_or_build(store.directory / "joint.ann", vectors, f"{store.fingerprint}-{key}"))
