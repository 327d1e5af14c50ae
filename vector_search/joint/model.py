"""The saved joint model: its arrays and sidecar, how it runs, and the checks that refuse a model
used with other features or word vectors than it was made for.

A model is one `<name>.npz` (arrays only, never pickled): its weights and its metadata (method,
encoder, word vectors, classes, split, settings, history, a hash of the weights) as the JSON
member `__meta__`, replaced as one file; `<name>.json` beside it repeats the metadata for people.
Inference is plain numpy, whatever the method.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vector_search import fileio
from vector_search.joint import methods
from vector_search.joint.errors import ModelMismatchError, ModelNotFoundError
from vector_search.joint.tagging import TagVocabulary, merge_tags, tags
from vector_search.text.sentence_encoder import IDENTITY
from vector_search.text.words import WordVectors

FORMAT = "vector_search.joint"
FORMAT_VERSION = 1
META = "__meta__"  # the npz member holding the metadata (JSON, UTF-8 bytes)


@dataclass
class JointModel:
    """A trained (or, for ConSE, assembled) map from image features to the word space.

    `meta` is the JSON sidecar; `arrays` holds every weight (numpy only). It may be given as a function
    making them (the untrained ConSE: the classifier read, the prompt bank encoded), called at first use
    only: a text query, which maps no photo, never makes them (`arrays_made` says whether they were).
    """

    meta: dict[str, Any]
    source: dict[str, np.ndarray] | Callable[[], dict[str, np.ndarray]] = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Every weight, made once on first use when the model was given a function making them."""
        if callable(self.source):
            with self._lock:
                if callable(self.source):
                    self.source = self.source()
        return self.source  # type: ignore[return-value]

    @property
    def arrays_made(self) -> bool:
        return not callable(self.source)

    @property
    def method(self) -> str:
        return self.meta["method"]

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    @property
    def text(self) -> str:
        """The text space the model maps into: "minilm" (the sentence encoder) or "glove" (word vectors)."""
        return self.meta.get("text", "glove")

    @property
    def fingerprint(self) -> str:
        """What the model computes: its weights' hash once saved, else a hash of its settings (ConSE)."""
        settings = json.dumps(self.meta, sort_keys=True).encode()
        return self.meta.get("weights_sha256") or hashlib.sha256(settings).hexdigest()[:16]

    def transform(self, features: np.ndarray) -> np.ndarray:
        """(n, feature dim) image features -> (n, word dim) unit joint vectors."""
        return methods.get(self.method).transform(self.arrays, self.meta, self._checked(features))

    def _checked(self, features: np.ndarray) -> np.ndarray:
        features = np.atleast_2d(np.asarray(features, np.float32))
        if features.shape[1] != self.meta["feature_dim"]:
            raise ModelMismatchError(
                f"joint model expects {self.meta['feature_dim']}-d features of {self.meta['encoder']}, got {features.shape[1]}-d"
            )
        return features

    def tag_vectors(self, features: np.ndarray) -> np.ndarray:
        """The vectors a photo's tags are read from: its joint vectors, except for a method that
        names others (the captions method tags with the blend's: captions add context for search,
        the tags name the photo's thing)."""
        tags = methods.get(self.method).tags
        return self.transform(features) if tags is None else tags(self.arrays, self.meta, self._checked(features))

    def tags(self, features: np.ndarray, vocabulary: TagVocabulary, k: int = 5) -> list[list[tuple[str, float]]]:
        """Each photo's k tags as (word, cosine distance): the nearest words to its tag vectors; for a
        method that names what the image encoder sees (the sentence method's ImageNet ConSE), where
        that view disagrees with the tag vector, its last tagging.OPEN_TAGS are the view's (tagging.merge_tags)."""
        features = self._checked(features)
        vectors = self.tag_vectors(features)
        own = tags(vectors, vocabulary, k)
        view = methods.get(self.method).encoder_view
        if view is None:
            return own
        seen = view(self.arrays, self.meta, features)
        return merge_tags(own, tags(seen, vocabulary, k), k, np.sum(vectors * seen, axis=1))

    def check(self, encoder: str | None = None, words: WordVectors | None = None) -> None:
        """Raise ModelMismatchError unless the model was made for this encoder and these word vectors
        (or, in the sentence space, this sentence encoder)."""
        if encoder is not None and encoder != self.meta["encoder"]:
            raise ModelMismatchError(
                f"joint model was trained on {self.meta['encoder']} features, not {encoder}: retrain it with this encoder"
            )
        if self.text == "minilm":
            if self.meta["words"] != IDENTITY:
                raise ModelMismatchError(f"joint model was trained with another sentence encoder ({self.meta['words']}): retrain it")
        elif words is not None:
            mine, theirs = self.meta["words"], words_identity(words)
            if mine != theirs:
                other = f"{words.name} ({words.dim}-d)" if mine["name"] != words.name else "other vectors of that name"
                raise ModelMismatchError(
                    f"joint model was trained with word vectors {mine['name']} ({mine['dim']}-d), "
                    f"not {other}: retrain it with these word vectors"
                )

    def save(self, path: str | Path) -> None:
        """Write `path`: ONE .npz holding the arrays and the metadata (as `__meta__`, JSON), so a
        crash at any moment leaves the old model or the new one, never a mix. The .json sidecar
        beside it repeats the metadata for people and tools; loading never needs it."""
        path = Path(path)
        meta = dict(self.meta, format=FORMAT, format_version=FORMAT_VERSION, weights_sha256=_weights_sha256(self.arrays))
        with fileio.atomic_paths(path, sidecar(path)) as (arrays, readable):
            fileio.write_npz(arrays, **self.arrays, **{META: np.frombuffer(fileio.json_bytes(meta), np.uint8)})
            readable.write_bytes(fileio.json_bytes(meta))

    @classmethod
    def load(cls, path: str | Path, encoder: str | None = None, words: WordVectors | None = None) -> "JointModel":
        """Load a saved model, checking it against `encoder` and `words` when given."""
        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(f"no joint model at {path}: train one first (`vector-search train`)")
        try:
            arrays = fileio.load_npz(path)  # (a zip: every member's CRC-32 is checked as it is read)
            meta = json.loads(arrays.pop(META).tobytes()) if META in arrays else fileio.load_json(sidecar(path))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ModelMismatchError(f"{path} is damaged ({type(err).__name__}: {err}): retrain it (`vector-search train`)") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ModelMismatchError(f"{path} is not a version-{FORMAT_VERSION} joint model: retrain it")
        if meta.get("weights_sha256") not in (_weights_sha256(arrays), _sha256(path)):  # (the second: a model saved before __meta__)
            raise ModelMismatchError(f"{path} holds other weights than its metadata says (damaged): retrain it")
        model = cls(meta, arrays)
        if meta.get("method") not in methods.METHODS:
            raise ModelMismatchError(f"{path} names joint method {meta.get('method')!r}, not one of {', '.join(methods.METHODS)}")
        model.check(encoder, words)
        return model


def words_identity(words: WordVectors) -> dict[str, Any]:
    """What a saved model records of its word vectors, to refuse others."""
    return {"name": words.name, "dim": words.dim, "fingerprint": words.fingerprint}


def sidecar(path: str | Path) -> Path:
    """The JSON sidecar of a model file: `models/joint.npz` -> `models/joint.json`."""
    return Path(path).with_suffix(".json")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return fileio.sha256_of(f)


def _weights_sha256(arrays: dict[str, np.ndarray]) -> str:
    """A hash of the weights themselves (names, dtypes, shapes, bytes): what the model computes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()

