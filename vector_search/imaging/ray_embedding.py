"""The embedding step on Ray Data: the vectors of embedding.local_embedder, computed by a pool of
actors on a local Ray or on a cluster (`vector-search index FOLDER --ray [ADDRESS]`).

    paths -> decode + preprocess (tasks: images.preprocessed, as the local path, so a bad file
             gives the same reason) -> map_batches(_EncoderActor: holds the encoder) -> the driver

The driver yields `Embedded` batches as they come, so update_store stores, checkpoints and
indexes as usual, and an interrupted run resumes from its last checkpoint. Files are read by path
on the workers: on a cluster every node must see the dataset at the same path (a shared folder)
and have this package installed. Ray is an optional extra (`pip install -e .[ray]`), imported
only here, only when used.
"""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Any, Iterator

import numpy as np

from vector_search.errors import VectorSearchError
from vector_search.imaging.embedding import Embedded, Embedder

DECODE_CPUS = 0.5  # decoding tasks: a spare CPU runs two, each decoding one batch
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20  # a local Ray reserves 30% of RAM by default; batches stream through far less


class RayNotInstalledError(VectorSearchError, ImportError):
    """--ray without the optional extra."""


class RayPipelineError(VectorSearchError, RuntimeError):
    """A task or actor of the pipeline failed; the message is the worker's own error."""


def import_ray() -> Any:
    """The `ray` module (with ray.data), or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the pipeline's half of the extra)
    except ImportError:
        raise RayNotInstalledError("Ray is not installed: pip install -e .[ray]") from None
    return ray


def ray_embedder(
    encoder_name: str,
    address: str | None = None,
    batch_size: int = 32,
    weights: str | os.PathLike | None = None,
    actors: int | None = None,
    threads: int | None = None,
) -> Embedder:
    """An Embedder that runs on Ray: joins the cluster at `address` (None: starts a local Ray,
    shut down at the end; a Ray already initialised in this process is used as it is).

    `actors` (default: spare_cpus) each hold one encoder (`weights` as get_encoder, a path every
    node can read) and run ONNX Runtime on `threads` threads (default: see _EncoderActor).
    Ray starts only when some file must be embedded: an unchanged folder never starts it.
    """
    import_ray()  # fail now, before the folder is scanned

    def embed(paths: list[str]) -> Iterator[Embedded]:
        ray = import_ray()
        started = connect(ray, address)
        try:
            ds = _pipeline(ray, paths, encoder_name, batch_size, weights, actors or spare_cpus(ray), threads)
            for out in ds.iter_batches(batch_size=None, batch_format="numpy"):  # in order of completion
                yield _embedded(out)
        except ray.exceptions.RayError as err:  # e.g. a worker without the package or the weights
            raise RayPipelineError(f"the Ray pipeline failed: {_worker_error(err)}") from err
        finally:
            if started:
                ray.shutdown()

    return embed


def connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at `address`, or start a small quiet local Ray; False if this process
    already had Ray initialised (then it is left running)."""
    if ray.is_initialized():
        return False
    local = {"object_store_memory": LOCAL_OBJECT_STORE_BYTES} if not address else {}
    ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, **local)
    for name in ("ray", "ray.data"):  # errors still raise; the progress callback shows progress
        logging.getLogger(name).setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    return True


def spare_cpus(ray: Any) -> int:
    """One actor per CPU of the cluster but one CPU per node, at least one actor: the decoding tasks
    need a free CPU, or they never run and the pipeline hangs (two 1-CPU actors on a 2-core node
    did, ray-project/ray#44687)."""
    nodes = [node for node in ray.nodes() if node["Alive"]]
    cpus = sum(int(node["Resources"].get("CPU", 0)) for node in nodes)
    return max(1, cpus - len(nodes))


def _pipeline(ray: Any, paths: list[str], encoder_name: str, batch_size: int, weights: Any, actors: int, threads: int | None) -> Any:
    """The Ray dataset of (i, vector, error) rows for `paths`, not yet run."""
    rows = [{"i": i, "path": os.fspath(path)} for i, path in enumerate(paths)]
    blocks = max(1, math.ceil(len(rows) / batch_size))  # one decoding task per batch: they stream
    decoded = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        _decode, fn_kwargs={"encoder_name": encoder_name}, batch_size=batch_size, batch_format="numpy",
        num_cpus=DECODE_CPUS,  # not 1 as the actors: Ray would fuse decoding into them, no overlap
    )
    return decoded.map_batches(
        _EncoderActor,
        fn_constructor_kwargs={"encoder_name": encoder_name, "weights": None if weights is None else os.fspath(weights), "threads": threads},
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=1,
        batch_size=batch_size,
        batch_format="numpy",
    )


def _decode(batch: dict[str, np.ndarray], encoder_name: str) -> dict[str, np.ndarray]:
    """Decode + preprocess one batch of paths (a Ray task): pixels, or an error per file."""
    from vector_search.imaging.encoders import get_encoder
    from vector_search.imaging.images import preprocessed

    encoder = get_encoder(encoder_name)  # cheap: preprocessing needs no weights
    pixels = np.zeros((len(batch["path"]), *encoder.input_shape), np.float32)
    errors = []
    for row, path in enumerate(batch["path"]):
        result = preprocessed(str(path), encoder.preprocess, encoder.decode_side)
        if isinstance(result, str):
            errors.append(result)
        else:
            pixels[row] = result
            errors.append("")
    return {"i": batch["i"], "pixels": pixels, "error": np.array(errors, dtype=object)}


class _EncoderActor:
    """A Ray actor holding one encoder; embeds the decoded rows of each batch (none for the failed)."""

    def __init__(self, encoder_name: str, weights: str | None, threads: int | None) -> None:
        from vector_search.imaging.encoders import get_encoder

        # By default use the node's cores the other actors leave (2 on a 2-core node: decoding is
        # light beside inference).
        cores = os.cpu_count() or 1
        self.encoder = get_encoder(encoder_name, weights, threads=threads or max(1, cores // max(1, cores - 1)))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = np.array([not error for error in batch["error"]], dtype=bool)
        vectors = np.zeros((len(ok), self.encoder.dim), np.float32)
        if ok.any():
            vectors[ok] = self.encoder.embed(batch["pixels"][ok])
        return {"i": batch["i"], "vector": vectors, "error": batch["error"]}


def _embedded(out: dict[str, np.ndarray]) -> Embedded:
    """One result batch as update_store takes it."""
    ok = np.array([not error for error in out["error"]], dtype=bool)
    errors = [(int(i), str(error)) for i, error in zip(out["i"][~ok], out["error"][~ok])]
    return Embedded([int(i) for i in out["i"][ok]], out["vector"][ok] if ok.any() else None, errors)


def _worker_error(err: BaseException) -> str:
    """The worker's own exception in a Ray error, whose text is a remote traceback (the first
    exception of a chain comes first; Ray Data wraps it in a UserCodeException) and hints."""
    for line in str(err).splitlines():
        found = re.match(r"\s*([\w.]+(?:Error|Exception)): (.+)", line)
        if found:
            return f"{found[1].rsplit('.', 1)[-1]}: {found[2]}"
    return f"{type(err).__name__}: {err}".splitlines()[0]
