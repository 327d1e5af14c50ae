"""VGG16 (Keras applications) cut at fc2: the 4096-d embedding of the classic semantic-search demo, on TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

from vector_search.imaging.encoders.base import Encoder, EncoderError

if TYPE_CHECKING:
    import keras

SIZE = 224
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"


class VGG16Encoder(Encoder):
    """VGG16 fc2 features (4096-d). ~138M parameters: a few images per second on two cores."""

    name = "vgg16"
    dim = 4096
    input_shape = (SIZE, SIZE, 3)
    decode_side = SIZE

    def __init__(self, weights: str | Path | None = None, cache_dir: str | Path | None = None, threads: int | None = None) -> None:
        """`weights`: None (Keras' ImageNet weights, downloaded once), a .h5 path, or "random"."""
        super().__init__(cache_dir, threads)
        self._source = weights
        self._head: tuple[np.ndarray, np.ndarray] | None = None

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Bilinear resize to 224x224 (no crop), then Keras "caffe" mode: RGB -> BGR minus the ImageNet means."""
        image = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.float32)[..., ::-1] - CAFFE_BGR_MEAN

    def _keras_weights(self) -> str | None:
        if self._source is None:
            return "imagenet"
        if self._source == "random":
            return None
        path = Path(self._source)
        if not path.is_file():
            raise EncoderError(f"VGG16 weights not found: {path}")
        return str(path)

    def keras_model(self) -> keras.Model:
        weights = self._keras_weights()
        import keras

        try:
            full = keras.applications.VGG16(weights=weights, include_top=True)
        except Exception as e:  # Keras raises bare Exception on download failures
            if weights == "imagenet":
                raise EncoderError(
                    "VGG16 ImageNet weights could not be downloaded; run once online "
                    f"or pass --weights /path/to/{WEIGHTS_FILE}"
                ) from e
            raise EncoderError(f"cannot load VGG16 weights {weights}: {' '.join(str(e).split())}") from e
        kernel, bias = full.get_layer("predictions").get_weights()
        self._head = (kernel.astype(np.float32), bias.astype(np.float32))
        return keras.Model(full.input, full.get_layer("fc2").output, name="vgg16_fc2")

    def _load(self) -> Callable[[np.ndarray], np.ndarray]:
        return self.keras_function()  # the classic way, on TensorFlow (see the package's docstring)

    def classifier(self) -> tuple[np.ndarray, np.ndarray]:
        self._model()  # builds the model, which sets the head
        assert self._head is not None
        return self._head
