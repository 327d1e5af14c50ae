"""The index of big stores: faiss IVF-PQ with exact re-rank, the fresh segment, the choice by size.

On real EfficientNet-lite0 vectors of Pascal photos and on mixtures of them (the recipe of
bench/bench_scale.py, a few thousand rows), against exact search.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from vector_search.search import segments
from vector_search.search.index import exact_index
from vector_search.search.ivf import build_ivf
from vector_search.search.rows import SpaceRows, chunked_mean
from vector_search.search.segments import SegmentedIndex, open_segmented
from vector_search.search.vectors import normalize
from vector_search.store import spaces

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_scale import mixtures  # noqa: E402


@pytest.fixture(scope="module")
def pascal_vectors(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path, lite0) -> np.ndarray:
    """The real Lite0 vectors of the 1000 Pascal photos (embedded once for the module)."""
    from vector_search.store.updates import update_store

    store, _ = update_store(pascal_dataset, tmp_path_factory.mktemp("pascal"), "efficientnet-lite0", lite0)
    return np.asarray(store.vectors, np.float32)


@pytest.fixture(scope="module")
def mixed(pascal_vectors: np.ndarray) -> np.ndarray:
    """4000 mixtures of 2-3 real vectors plus noise (bench_scale's recipe), as a memory-mapped-like array."""
    return mixtures(normalize(pascal_vectors), 4000, np.random.default_rng(7))


def recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(g, w)) / len(w) for g, w in zip(got, want)]))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["pascal", "mixed"])
def test_ivf_recall_against_exact_in_the_centred_space(which: str, pascal_vectors: np.ndarray, mixed: np.ndarray) -> None:
    source = pascal_vectors if which == "pascal" else mixed
    rows = SpaceRows(source, chunked_mean(source))
    centred = rows[:]
    index, exact = build_ivf(rows), exact_index(centred)
    queries = centred[::7]
    got, dist = index.search_many(queries, 10)
    want, want_dist = exact.search_many(queries, 10)
    assert recall(got, want) >= 0.95
    assert np.all(np.diff(dist, axis=1) >= 0)  # exact re-rank: sorted cosine distances ...
    hit = got[:, 0] == want[:, 0]
    assert np.allclose(dist[hit, 0], want_dist[hit, 0], atol=1e-5)  # ... equal to the exact ones


def test_fresh_rows_are_found_and_deleted_rows_never(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    source = normalize(rng.normal(size=(3000, 64)).astype(np.float32))
    path = tmp_path / "images.ivf"
    first = open_segmented(path, source[:2000], generation=1, centre=True)
    assert (first.covered, len(first)) == (2000, 2000)

    live = np.ones(3000, bool)
    live[[5, 2500]] = False
    grown = open_segmented(path, source, generation=1, live=live, centre=True)
    assert grown.covered == 2000 and len(grown.fresh) == 1000  # opened, not rebuilt: the fresh segment
    queries = grown.rows[[2500, 2600, 5, 6]]
    ids, dist = grown.search_many(queries, 5)
    assert ids[1, 0] == 2600 and dist[1, 0] < 1e-5  # a fresh row finds itself
    assert ids[3, 0] == 6
    assert not np.isin(ids, [5, 2500]).any()  # deleted rows, main or fresh, never come back
    want = exact_index(grown.rows[:][live]).search_many(queries, 5)[0]
    assert recall(np.flatnonzero(live)[want], ids) >= 0.9


def test_many_fresh_rows_are_scanned_in_blocks_with_the_same_answers(tmp_path: Path, monkeypatch) -> None:
    """An index run killed before its merge leaves many fresh rows: they are scanned block by block
    from the store (bounded memory), answering as the in-memory segment does."""
    source = normalize(np.random.default_rng(4).normal(size=(3000, 64)).astype(np.float32))
    path = tmp_path / "images.ivf"
    open_segmented(path, source[:1000], generation=1, centre=True)
    live = np.ones(3000, bool)
    live[[1500, 2999]] = False
    in_memory = open_segmented(path, source, generation=1, live=live, centre=True)
    monkeypatch.setattr(segments, "FRESH_IN_MEMORY", 300)
    scanned = open_segmented(path, source, generation=1, live=live, centre=True)
    assert isinstance(scanned.fresh, segments._Scan) and len(scanned.fresh) == 2000
    queries = in_memory.rows[[10, 1200, 1500, 2998]]
    want, got = in_memory.search_many(queries, 10), scanned.search_many(queries, 10)
    assert np.array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], atol=1e-6)
    assert got[0][1, 0] == 1200 and not np.isin(got[0], [1500, 2999]).any()


def test_merge_adds_fresh_rows_without_rebuilding_and_keeps_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    source = normalize(rng.normal(size=(2000 + segments.MERGE_AT, 32)).astype(np.float32))
    path = tmp_path / "images.ivf"
    open_segmented(path, source[:2000], generation=3, centre=True)
    mean = np.load(f"{path}.mean.npy")
    before = open_segmented(path, source, generation=3, centre=True)
    queries = before.rows[::50]
    want = before.search_many(queries, 10)
    merged = open_segmented(path, source, generation=3, centre=True, merge=True)
    assert merged.covered == len(source) and merged.fresh is None
    assert np.array_equal(np.load(f"{path}.mean.npy"), mean)  # merged into, not retrained/re-centred
    reopened = open_segmented(path, source, generation=3, centre=True)
    assert reopened.covered == len(source)
    got = reopened.search_many(queries, 10)
    assert recall(got[0], want[0]) >= 0.95
    assert np.array_equal(got[0][:, 0], np.arange(0, len(source), 50))  # every row still finds itself


def test_a_new_generation_rebuilds(tmp_path: Path) -> None:
    source = normalize(np.random.default_rng(2).normal(size=(1500, 16)).astype(np.float32))
    path = tmp_path / "images.ivf"
    open_segmented(path, source[:1000], generation=1)
    assert open_segmented(path, source, generation=1).covered == 1000
    assert open_segmented(path, source, generation=2).covered == 1500  # rows rewritten: built again


def test_segmented_answers_like_an_index(tmp_path: Path) -> None:
    source = normalize(np.random.default_rng(3).normal(size=(600, 16)).astype(np.float32))
    index = SegmentedIndex(build_ivf(SpaceRows(source[:500])), SpaceRows(source))
    ids, dist = index.search(source[550], 600)
    assert sorted(ids) == list(range(600)) and ids[0] == 550  # k >= n: every row, itself first
    assert np.all(np.diff(dist) >= 0)


class _Store:
    """What spaces.index_kind reads of a store: its length and its recorded kind."""

    def __init__(self, n: int, kind: str | None = None) -> None:
        self.n, self.index_kind = n, kind

    def __len__(self) -> int:
        return self.n


def test_kind_by_size_unless_recorded() -> None:
    assert spaces.index_kind(_Store(1000)) == "annoy"
    assert spaces.index_kind(_Store(spaces.ANNOY_MAX - 1)) == "annoy"
    assert spaces.index_kind(_Store(spaces.ANNOY_MAX)) == "ivf"
    assert spaces.index_kind(_Store(1000, "ivf")) == "ivf"
    assert spaces.index_kind(_Store(spaces.ANNOY_MAX * 10, "hnsw")) == "hnsw"
    assert spaces.index_kind(_Store(1, "ivf")) == spaces.index_kind(_Store(0, "ivf")) == "exact"  # nothing to train on


@pytest.mark.slow
def test_an_ivf_store_down_to_one_photo_still_indexes_and_answers(tmp_path: Path, small_dataset: Path) -> None:
    from vector_search.cli import main
    from vector_search.engine import Engine

    features_root = tmp_path / "features"
    assert main(["index", str(small_dataset), "--features", str(features_root), "--index", "ivf"]) == 0
    photos = sorted(small_dataset.rglob("*.jpg"))
    for gone in photos[1:]:
        gone.unlink()
    assert main(["index", str(small_dataset), "--features", str(features_root)]) == 0  # faiss cannot train on 1 row
    engine = Engine(features_root)
    assert engine.store.index_kind == "ivf" and len(engine.store) == 1
    assert [h.item for h in engine.similar_images(photos[0], k=3)] == []  # the only photo is the query


@pytest.mark.slow
def test_index_override_is_recorded_and_used(tmp_path: Path, small_dataset: Path) -> None:
    from vector_search.cli import main
    from vector_search.store.folders import open_store

    features_root = tmp_path / "features"
    assert main(["index", str(small_dataset), "--features", str(features_root), "--index", "ivf"]) == 0
    store = open_store(features_root)
    assert store.index_kind == "ivf" and (store.directory / "images.ivf").is_file()
    assert not (store.directory / "images.ann").exists()  # 12 photos would be Annoy by size
    cats = sorted((small_dataset / "cat").iterdir())
    (cats[0].parent / "extra.jpg").write_bytes(cats[0].read_bytes()[:-1] + b"\0")  # one more photo, then again
    assert main(["index", str(small_dataset), "--features", str(features_root)]) == 0  # no --index: the record stays
    engine_store = open_store(features_root)
    assert engine_store.index_kind == "ivf"
    from vector_search.engine import Engine

    engine = Engine(features_root)
    assert engine.images.index.kind == "ivf" and len(engine.images.index) == len(engine_store)
    hits = engine.similar_images(cats[1], k=3)
    assert len(hits) == 3 and all("/cat/" in h.item for h in hits[:2])


@pytest.mark.slow
def test_a_rebuild_keeps_the_recorded_index_kind(tmp_path: Path, small_dataset: Path) -> None:
    from vector_search.cli import main
    from vector_search.engine import Engine
    from vector_search.store.folders import open_store

    features_root = tmp_path / "features"
    assert main(["index", str(small_dataset), "--features", str(features_root), "--index", "hnsw"]) == 0
    before = open_store(features_root)
    Engine(features_root).index(small_dataset, rebuild=True)  # the app's "Regenerate the features"
    after = open_store(features_root)
    assert after.generation > before.generation and len(after) == len(before) == 12
    assert after.index_kind == "hnsw"  # None keeps the saved kind, a rebuild too


@pytest.mark.parametrize("centred", [True, False])
def test_rerank_cosines_equal_those_of_the_materialised_rows(centred: bool) -> None:
    source = np.abs(np.random.default_rng(4).normal(size=(300, 48))).astype(np.float32)
    source[7] = 0  # a zero row stays zero, as normalize leaves it
    rows = SpaceRows(source, chunked_mean(source) if centred else None)
    unit = normalize(np.random.default_rng(5).normal(size=48).astype(np.float32))
    ids = np.arange(0, 300, 3)
    assert np.allclose(rows.cosines(ids, unit), normalize(rows[ids]) @ unit, atol=1e-6)


@pytest.mark.slow
def test_joint_space_of_a_big_store_transforms_only_the_appended_rows(tmp_path: Path, lite0, tmp_glove, mixed: np.ndarray) -> None:
    from vector_search.joint import conse_model
    from vector_search.store.store import Item, Store

    def items(first: int, count: int) -> list[Item]:
        return [Item(f"mix/{i:05d}.jpg", i + 1, i, f"{i:064x}") for i in range(first, first + count)]

    model = conse_model(lite0.classifier(), tmp_glove, "efficientnet-lite0")
    store = Store(tmp_path / "store", "efficientnet-lite0", "/mixtures", items(0, 3000), mixed[:3000])
    store.save()
    store = store.append(items(0, 0), mixed[:0], index_kind="ivf")  # as `index --index ivf` records it
    first = spaces.JointSpace.of(store, model)
    assert first.index.covered == 3000 and np.allclose(first.vectors, model.transform(mixed[:3000]), atol=1e-6)

    name = spaces.joint_name(model)
    saved = np.load(store.directory / f"{name}.npy")
    saved[1] = saved[0]  # a mark (on a row the index's fingerprint does not sample): reused, not made again
    store.save_array(name, saved, rows=True, model=model.fingerprint)  # through the store: its checksum holds (#19)
    grown = store.append(items(3000, 1000), mixed[3000:])
    second = spaces.JointSpace.of(grown, model)
    assert np.array_equal(second.vectors[1], saved[0])  # reused
    assert np.allclose(second.vectors[3000:], model.transform(mixed[3000:]), atol=1e-6)  # only these made
    assert second.index.covered == 3000 and len(second.index) == 4000  # index kept, new rows fresh
    ids, _ = second.index.search(second.vectors[3500], 1)
    assert ids[0] == 3500


@pytest.mark.slow
def test_an_annoy_store_that_keeps_deleted_rows_still_answers_k_live_photos(tmp_path: Path, pascal_dataset: Path, monkeypatch) -> None:
    """Between COMPACT_BELOW_BYTES (13k rows of 1280 floats) and ANNOY_MAX (20k) a store keeps up to
    10% deleted rows under an Annoy index: answers must still be k live photos (here at 40 rows,
    compaction turned off)."""
    from conftest import copy_subset

    from vector_search.engine import Engine
    from vector_search.store import updates

    monkeypatch.setattr(updates, "COMPACT_BELOW_BYTES", 0)
    monkeypatch.setattr(updates, "COMPACT_DELETED_SHARE", 1.0)
    photos = copy_subset(tmp_path / "photos", {"cat": 20, "bus": 10, "boat": 10})
    features_root = tmp_path / "features"
    Engine(features_root).index(photos)
    cats = sorted((photos / "cat").iterdir())
    for gone in cats[5:]:  # 15 cats, the query's nearest neighbours, deleted
        gone.unlink()
    engine = Engine(features_root)
    engine.index(photos)
    assert engine.store.live is not None and (~engine.store.live).sum() == 15 and spaces.index_kind(engine.store) == "annoy"
    hits = engine.similar_images(cats[0], k=10)
    assert len(hits) == 10 and all(Path(h.item).exists() for h in hits)
    assert {Path(h.item).name for h in hits[:4]} == {c.name for c in cats[1:5]}  # the 4 cats left, first
    assert len(engine.search("cat", k=20)) == 20


def files_of(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.iterdir()}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["annoy", "ivf"])
def test_index_builds_the_joint_index_and_a_text_query_builds_nothing(tmp_path: Path, small_dataset: Path, kind: str, monkeypatch) -> None:
    """`index` leaves the joint rows and index of the model in use, verified (checksums) when a fresh
    engine opens them: the first text query writes nothing. On IVF the next `index` merges new rows."""
    from vector_search.cli import main
    from vector_search.engine import Engine
    from vector_search.store.folders import open_store

    features_root = tmp_path / "features"
    assert main(["index", str(small_dataset), "--features", str(features_root), "--index", kind]) == 0
    engine = Engine(features_root)
    name, directory = spaces.joint_name(engine.joint), engine.store.directory
    built = files_of(directory)
    index_file = f"{name}.{'ann' if kind == 'annoy' else 'ivf'}"
    assert {f"{name}.npy", f"{name}.json", index_file, f"{index_file}.json", f"{name}.scores.npy"} <= set(built)
    hits = engine.search("cat", k=4)
    assert files_of(directory) == built  # nothing built, nothing written
    assert sum("/cat/" in h.item for h in hits) >= 3
    rows = directory / f"{name}.npy"
    good = rows.read_bytes()
    rows.write_bytes(good[:-8] + bytes(8))  # damaged: its checksum fails, so it is made again (#19)
    assert [h.item for h in Engine(features_root).search("cat", k=4)] == [h.item for h in hits]
    assert rows.read_bytes() == good

    if kind == "ivf":  # two more photos, merged into the joint index by the next `index`
        monkeypatch.setattr(segments, "MERGE_AT", 1)
        dogs = copy_dogs(small_dataset)
        assert main(["index", str(small_dataset), "--features", str(features_root)]) == 0
        store = open_store(features_root)
        assert len(store) == 12 + len(dogs)
        covered = Engine(features_root).joint_space.index.covered
        assert covered == len(store)


def copy_dogs(dataset: Path) -> list[Path]:
    from conftest import copy_subset

    return sorted(copy_subset(dataset, {"dog": 2}).rglob("dog/*.jpg"))


def test_prune_joint_keeps_the_models_built_last(tmp_path: Path) -> None:
    import os

    for age, stem in enumerate(["joint-a", "joint-b", "joint-c", "joint-d"]):  # joint-a newest
        for suffix in (".npy", ".json", ".ann", ".ann.json"):
            (tmp_path / f"{stem}{suffix}").write_bytes(b"x")
            os.utime(tmp_path / f"{stem}{suffix}", (1e9 - age * 100, 1e9 - age * 100))
    for legacy in ("joint.ann", "joint.ann.json", "joint-rows.npy", "joint-rows.json"):
        (tmp_path / legacy).write_bytes(b"x")
    (tmp_path / "images.ann").write_bytes(b"x")
    spaces.prune_joint(tmp_path, keep="joint-d")  # just built (an older file time cannot drop it)
    stems = {p.name.split(".")[0] for p in tmp_path.iterdir()}
    assert stems == {"joint-d", "joint-a", "joint-b", "images"}
    assert len(list(tmp_path.glob("joint-a*"))) == 4


@pytest.mark.slow
def test_reweighted_search_from_candidates_finds_the_exact_top_10(tmp_path: Path, pascal_vectors: np.ndarray, lite0, monkeypatch) -> None:
    """Re-weighted search on a big store re-ranks candidates of the plain image index with the weights
    (ranking.reweighted_ids): on the 1000 Pascal photos, the 200 nearest candidates hold >= 0.95 of
    the exact re-weighted top 10 (photos re-weighted by their own top ImageNet class, and by random
    classes); all rows as candidates give the exact answer."""
    from vector_search.store import ranking
    from vector_search.store.store import Item, Store
    from vector_search.text.query import class_weights, reweighted_search

    items = [Item(f"p/{i:04d}.jpg", i + 1, i, f"{i:064x}") for i in range(len(pascal_vectors))]
    store = Store(tmp_path / "store", "efficientnet-lite0", "/pascal", items, pascal_vectors)
    store.save()
    space = spaces.ImageSpace.of(store)
    monkeypatch.setattr(ranking, "REWEIGHT_SCAN_MAX", 0)  # candidates, as on a big store
    w, b = lite0.classifier()[:2]
    rng = np.random.default_rng(0)
    queries = rng.choice(len(store), 100, replace=False)
    vectors = np.asarray(store.vectors)
    picks = {"top": np.argmax(vectors[queries] @ w + b, axis=1), "random": rng.choice(w.shape[1], len(queries))}
    for how, classes in picks.items():
        found, everything = [], []
        for q, c in zip(queries, classes):
            weights = class_weights(w, c)
            want = reweighted_search(vectors, vectors[q], weights, 10)[0]
            got = ranking.reweighted_ids(store, space, vectors[q], weights, 10, candidates=200)[0]
            whole = ranking.reweighted_ids(store, space, vectors[q], weights, 10, candidates=len(store))[0]
            found.append(len(np.intersect1d(got, want)) / 10)
            everything.append(np.array_equal(whole, want))
        assert np.mean(found) >= 0.95, (how, np.mean(found))
        assert all(everything), how


@pytest.mark.slow
def test_big_joint_vectors_are_verified_by_index_not_at_every_open(tmp_path: Path, lite0, tmp_glove, mixed: np.ndarray, monkeypatch) -> None:
    """Joint vectors over VERIFY_AT_OPEN_BYTES (1.5 GB at 1M) have their checksum read by `index`
    (JointSpace.of with merge), not by every first text query; smaller ones at every open (#19)."""
    from vector_search.joint import conse_model
    from vector_search.store import derived
    from vector_search.store.store import Item, Store

    model = conse_model(lite0.classifier(), tmp_glove, "efficientnet-lite0")
    store = Store(tmp_path / "store", "efficientnet-lite0", "/mixtures", [Item(f"m/{i}.jpg", i + 1, i, f"{i:064x}") for i in range(500)], mixed[:500])
    store.save()
    good = spaces.JointSpace.of(store, model).vectors[3].copy()
    rows = store.directory / f"{spaces.joint_name(model)}.npy"
    data = bytearray(rows.read_bytes())
    start = data.index(b"\n") + 1 + 3 * 4 * len(good)  # row 3, after the header
    data[start : start + 4 * len(good)] = np.asarray(-good, np.float32).tobytes()  # finite, wrong
    rows.write_bytes(bytes(data))
    assert np.array_equal(spaces.JointSpace.of(store, model).vectors[3], good)  # small: verified at open, made again

    rows.write_bytes(bytes(data))
    monkeypatch.setattr(derived, "VERIFY_AT_OPEN_BYTES", 0)  # as if big
    assert np.array_equal(spaces.JointSpace.of(store, model).vectors[3], -good)  # not read whole at open
    assert np.array_equal(spaces.JointSpace.of(store, model, merge=True).vectors[3], good)  # `index` reads it: made again
