"""Read a PyTorch legacy (non-zip) ``.pth`` state dict with numpy only: no torch, no arbitrary unpickling.

The legacy format is a sequence of pickles (magic number, protocol, system info, the state dict
with tensors as persistent storage ids, the list of storage keys) followed, per storage key, by an
int64 little-endian element count and the raw little-endian bytes.
"""

from __future__ import annotations

import collections
import os
import pickle
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from vector_search.errors import VectorSearchError

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class TorchFileError(VectorSearchError, ValueError):
    """A file that is not a readable legacy torch state dict."""


@dataclass
class _Storage:
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor whose storage bytes come after the pickles; resolved once they are read."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def resolve(self) -> np.ndarray:
        data = self.storage.data
        assert data is not None
        if 0 in self.shape:
            return np.zeros(self.shape, data.dtype)
        end = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        if self.offset < 0 or end >= data.size:
            raise TorchFileError("tensor view runs past its storage")
        strides = tuple(s * data.itemsize for s in self.stride)
        view = np.lib.stride_tricks.as_strided(data[self.offset :], self.shape, strides, writeable=False)
        return np.array(view, dtype=data.dtype.newbyteorder("="))


def _rebuild_tensor_v2(storage, offset, shape, stride, requires_grad=False, hooks=None, metadata=None) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class _Unpickler(pickle.Unpickler):
    """Allows only the few globals a state dict needs; storages come in as persistent ids."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return np.dtype(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, dtype, key, _location, numel, view = pid
        if kind != "storage" or view is not None or not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError(f"unsupported storage reference {pid!r}")
        return self.storages.setdefault(key, _Storage(dtype, int(numel)))


def _load_pickle(f: BinaryIO, storages: dict[str, _Storage] | None = None) -> Any:
    return _Unpickler(f, storages if storages is not None else {}).load()


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return the tensors of a legacy torch state dict as numpy arrays, keyed by name, in file order."""
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as f:
        if _load_pickle(f) != MAGIC:
            raise TorchFileError(f"{path}: not a legacy torch file (bad magic number; zip-format files are not supported)")
        if _load_pickle(f) != PROTOCOL:
            raise TorchFileError(f"{path}: unsupported torch legacy protocol")
        if not _load_pickle(f).get("little_endian", False):
            raise TorchFileError(f"{path}: big-endian torch files are not supported")
        state = _load_pickle(f, storages)
        for key in _load_pickle(f):
            storage = storages[key]
            numel = int(np.frombuffer(f.read(8), "<i8")[0])
            nbytes = numel * storage.dtype.itemsize
            raw = f.read(nbytes)
            if numel != storage.numel or len(raw) != nbytes:
                raise TorchFileError(f"{path}: storage {key} is truncated or inconsistent")
            storage.data = np.frombuffer(raw, storage.dtype)
    if not isinstance(state, dict):
        raise TorchFileError(f"{path}: does not hold a state dict")
    return {name: ref.resolve() for name, ref in state.items()}
