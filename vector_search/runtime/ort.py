"""ONNX Runtime: one way to open an inference session, and a cache of models exported to ONNX once.

Inference never needs TensorFlow: a model built in Keras is exported once (`keras_to_onnx`, a
one-time step that imports TensorFlow and tf2onnx), cached in the user's cache folder under a
name keyed by its weights (`cache_name`), and every later process only opens the .onnx file
(onnxruntime imports in ~0.03 s and opens a session in ~0.05 s; TensorFlow takes 3-7 s).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from vector_search import fileio
from vector_search.errors import VectorSearchError

if TYPE_CHECKING:
    import keras
    import onnxruntime

log = logging.getLogger(__name__)

OPSET = 17  # what tf2onnx 1.17 exports our Keras 3 models to; part of every cache key
_export_lock = threading.Lock()  # one export at a time per process (each builds a whole model)


class ModelFileError(VectorSearchError, RuntimeError):
    """An exported model cannot be built or opened; the message says which and why."""


def cpu_threads() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def open_session(path: str | os.PathLike, threads: int | None = None) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session on `path` running each call on `threads` intra-op threads
    (default: cpu_threads()); its run() is safe to call from several threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle threads sleep instead of spinning: on a machine other work shares, spinning cost 10-25%
    # (Lite0 batch 32, 2 threads, load ~12 on 2 cores: 11-19 photos/s spinning, 15-21 not).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: warnings about unused initialisers would hide our output
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def file_key(path: str | os.PathLike) -> str:
    """What identifies a weights file without reading it: its resolved path, size and mtime (a
    rewritten or replaced file gets a new key, hence a new export)."""
    path = Path(path).resolve()
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def cache_name(stem: str, *keys: str) -> str:
    """`<stem>-<digest of the keys and the opset>.onnx`: the file name of one export of one set of weights."""
    digest = hashlib.sha256("\n".join((*keys, f"opset{OPSET}")).encode()).hexdigest()[:16]
    return f"{stem}-{digest}.onnx"


def cached_session(path: Path, export: Callable[[Path], None], threads: int | None = None) -> onnxruntime.InferenceSession:
    """A session on the .onnx at `path`, made by `export(tmp)` first if missing, damaged or unreadable.

    `export` writes the model to the temporary path it is given (renamed to `path` when complete,
    so a reader never sees half a file); its time is logged. Errors from `export` propagate unchanged.
    """
    if fileio.intact(path):  # its checksum first: onnxruntime never reads a damaged file
        try:
            return open_session(path, threads)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            log.warning("the cached %s cannot be opened (%s): exporting it again", path.name, str(e).splitlines()[0])
    elif path.exists():
        log.warning("the cached %s is damaged (or from an older version): exporting it again", path)
    with _export_lock:
        if not fileio.intact(path) or not _opens(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            with fileio.checked_path(path) as tmp:  # with PATH.crc32, checked before every open
                export(tmp)
            log.info("exported %s to ONNX in %.1f s (once; cached at %s)", path.stem.rsplit("-", 1)[0], time.perf_counter() - start, path)
    try:
        return open_session(path, threads)
    except Exception as e:
        raise ModelFileError(f"cannot open the exported model {path}: {str(e).splitlines()[0]}") from e


def _opens(path: Path) -> bool:
    try:
        open_session(path, 1)
        return True
    except Exception:
        return False


def keras_to_onnx(model: keras.Model, path: Path, input_shapes: Sequence[tuple[int | None, ...]] | None = None) -> None:
    """Write a Keras model as ONNX (float32 inputs with a free batch dimension) to `path`.

    Imports TensorFlow and tf2onnx: the one-time export step, never inference."""
    import tensorflow as tf
    import tf2onnx

    shapes = input_shapes or [tuple(t.shape) for t in model.inputs]
    spec = [tf.TensorSpec((None, *shape[1:]), tf.float32, name=f"input_{i}") for i, shape in enumerate(shapes)]
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    except Exception as e:  # tf2onnx raises many types on graphs it cannot convert
        raise ModelFileError(f"cannot export {model.name} to ONNX: {type(e).__name__}: {e}") from e
    path.write_bytes(proto.SerializeToString())
