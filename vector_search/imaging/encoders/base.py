"""The encoder interface every image encoder implements (a leaf: the registry in __init__ imports its members lazily)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from vector_search.errors import VectorSearchError

if TYPE_CHECKING:
    import keras
    from PIL import Image


class EncoderError(VectorSearchError, RuntimeError):
    """An encoder cannot be used (unknown name, missing or unreadable weights); one-line message."""


class EncoderInputError(VectorSearchError, ValueError):
    """A batch of pixels of the wrong shape for the encoder."""


class Encoder(ABC):
    """Turns RGB images into `dim`-d float32 embeddings. Safe to share between threads."""

    name: str
    dim: int
    input_shape: tuple[int, int, int]  # (H, W, 3) of what preprocess() returns
    # The smallest side preprocess() resizes a photo to: big JPEGs may be decoded at a reduced scale
    # as long as both sides stay at least this (images.load_image's min_side); None: full size.
    decode_side: int | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._infer: Any = None  # tf.function, built on first use

    @abstractmethod
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB PIL image -> (H, W, 3) float32 model input (numpy/Pillow only)."""

    @abstractmethod
    def _build_model(self) -> keras.Model:
        """Build the embedding model with its weights (imports TensorFlow); called once."""

    @abstractmethod
    def classifier(self) -> tuple[np.ndarray, np.ndarray] | None:
        """ImageNet head on top of embed(): W (dim, 1000), b (1000,); logits = emb @ W + b."""

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) preprocessed images -> (n, dim) float32 embeddings."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != self.input_shape:
            raise EncoderInputError(f"{self.name} expects a batch of shape (n, {', '.join(map(str, self.input_shape))}), got {batch.shape}")
        if len(batch) == 0:
            return np.empty((0, self.dim), np.float32)
        return self._inference()(batch).numpy()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) preprocessed images -> (n, 1000) ImageNet softmax probabilities."""
        head = self.classifier()
        if head is None:
            raise EncoderError(f"encoder {self.name} has no ImageNet classifier")
        logits = self.embed(batch) @ head[0] + head[1]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def _inference(self) -> Any:
        """The model as a traced tf.function (batch dimension free); built once, thread-safe."""
        if self._infer is None:
            with self._lock:
                if self._infer is None:
                    model = self._build_model()  # first, so bad weights fail before the TF import
                    import tensorflow as tf

                    spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
                    infer = tf.function(lambda x: model(x, training=False), input_signature=[spec])
                    infer.get_concrete_function()  # trace now, under the lock
                    self._infer = infer
        return self._infer
