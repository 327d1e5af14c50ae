"""The embedding step of indexing, as a plug: a list of image paths in, batches of vectors out.

`update_store` asks an `Embedder` for the vectors of the files it must embed. The local one
decodes in threads and runs the encoder in this process; another (Ray, on a cluster) only has
to yield the same `Embedded` batches.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from vector_search.imaging.images import iter_batches

if TYPE_CHECKING:
    from vector_search.imaging.encoders import Encoder


@dataclass
class Embedded:
    """Vectors of the files at `indices` (positions in the list asked for), row for row, and
    (position, reason) for the files that could not be decoded."""

    indices: list[int]
    vectors: np.ndarray | None  # (len(indices), dim) float32; None when no file of the batch decoded
    errors: list[tuple[int, str]]


Embedder = Callable[[list[str]], Iterator[Embedded]]


def local_embedder(encoder: Encoder, batch_size: int = 32) -> Embedder:
    """Decode in threads, one batch ahead, while `encoder` embeds the batch before (see iter_batches);
    the model loads while the first batch decodes."""

    def embed(paths: list[str]) -> Iterator[Embedded]:
        with ThreadPoolExecutor(1) as loader:
            loading = loader.submit(encoder.load)
            for batch in iter_batches(paths, encoder.preprocess, batch_size, min_side=encoder.decode_side):
                vectors = None
                if batch.array is not None:
                    loading.result()  # raises what the load raised (missing weights...)
                    vectors = encoder.embed(batch.array)
                yield Embedded(batch.indices, vectors, batch.errors)

    return embed
