"""The encoder interface every image encoder implements (a leaf: the registry in __init__ imports its members lazily)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from vector_search import config
from vector_search.errors import VectorSearchError
from vector_search.runtime.ort import cache_name, cached_session, keras_to_onnx

if TYPE_CHECKING:
    import keras
    from PIL import Image


class EncoderError(VectorSearchError, RuntimeError):
    """An encoder cannot be used (unknown name, missing or unreadable weights); one-line message."""


class EncoderInputError(VectorSearchError, ValueError):
    """A batch of pixels of the wrong shape for the encoder."""


class Encoder(ABC):
    """Turns RGB images into `dim`-d float32 embeddings. Safe to share between threads.

    A member says how to preprocess a photo, how to build its Keras model (`keras_model`: exported
    to ONNX once, also the TensorFlow path of the benchmarks) and what identifies its weights
    (`weights_key`: changed weights are exported again); inference is the same for all but VGG16.
    """

    name: str
    dim: int
    input_shape: tuple[int, int, int]  # (H, W, 3) of what preprocess() returns
    # The smallest side preprocess() resizes a photo to: big JPEGs may be decoded at a reduced scale
    # as long as both sides stay at least this (images.load_image's min_side); None: full size.
    decode_side: int | None = None

    def __init__(self, cache_dir: str | Path | None = None, threads: int | None = None) -> None:
        """`cache_dir`: converted weights and ONNX exports (default: config.cache_root()/encoders);
        `threads`: inference threads per call (default: the cores this process may use)."""
        self.cache_dir = (Path(cache_dir) if cache_dir else config.cache_root() / "encoders").absolute()
        self.threads = threads
        self._lock = threading.Lock()
        self._run: Callable[[np.ndarray], np.ndarray] | None = None

    @abstractmethod
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB PIL image -> (H, W, 3) float32 model input (numpy/Pillow only)."""

    @abstractmethod
    def keras_model(self) -> keras.Model:
        """Build the embedding model with its weights in Keras (imports TensorFlow)."""

    @abstractmethod
    def classifier(self) -> tuple[np.ndarray, np.ndarray] | None:
        """ImageNet head on top of embed(): W (dim, 1000), b (1000,); logits = emb @ W + b."""

    def weights_key(self) -> str:
        """A string that changes whenever the weights do: it names the ONNX export (EncoderError if the weights are missing)."""
        raise NotImplementedError(f"{type(self).__name__} is not exported to ONNX")

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) preprocessed images -> (n, dim) float32 embeddings."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != self.input_shape:
            raise EncoderInputError(f"{self.name} expects a batch of shape (n, {', '.join(map(str, self.input_shape))}), got {batch.shape}")
        if len(batch) == 0:
            return np.empty((0, self.dim), np.float32)
        return self._model()(batch)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) preprocessed images -> (n, 1000) ImageNet softmax probabilities."""
        head = self.classifier()
        if head is None:
            raise EncoderError(f"encoder {self.name} has no ImageNet classifier")
        logits = self.embed(batch) @ head[0] + head[1]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def onnx_path(self) -> Path:
        """Where this encoder's export of its weights is cached."""
        return self.cache_dir / cache_name(self.name, self.weights_key())

    def load(self) -> None:
        """Load the model now (exporting it first if these weights never were): embed() does it on first use."""
        self._model()

    def _model(self) -> Callable[[np.ndarray], np.ndarray]:
        """The model as a function of a batch; loaded once, thread-safe."""
        if self._run is None:
            with self._lock:
                if self._run is None:
                    self._run = self._load()
        return self._run

    def keras_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """keras_model() on TensorFlow, as a traced tf.function with a free batch dimension: VGG16's
        inference, and the TensorFlow side of the benchmarks for the others."""
        model = self.keras_model()  # first, so bad weights fail before the TF import
        import tensorflow as tf

        if self.threads:
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        # autograph=False: nothing to convert, and autograph writes the code it makes to /tmp (read-only mode writes nothing)
        infer = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
        infer.get_concrete_function()  # trace now (under the encoder's lock when called by _load)
        return lambda batch: infer(batch).numpy()

    def _load(self) -> Callable[[np.ndarray], np.ndarray]:
        """An ONNX Runtime session on the export of keras_model(), made on the first use of these weights."""
        session = cached_session(self.onnx_path(), lambda path: keras_to_onnx(self.keras_model(), path), self.threads)
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]
