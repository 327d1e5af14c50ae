"""One Engine shared by many threads: every answer under load equals the single-threaded answer.

An indexed real subset of Pascal Sentences, real weights and real GloVe. The mixed query set
and the load harness are those of bench/bench_concurrency.py. The load lasts
$VECTOR_SEARCH_CONCURRENCY_SECONDS (default 30) seconds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from conftest import ROOT, copy_subset

from vector_search.engine import Engine

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("VECTOR_SEARCH_CONCURRENCY_SECONDS", "30"))
THREADS = 8
K = 10


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_concurrency", ROOT / "bench" / "bench_concurrency.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = load_bench()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> tuple[Path, Path, Path]:
    """48 real photos indexed, and a joint model trained on them (the default method) for tags/search."""
    tmp = tmp_path_factory.mktemp("concurrency")
    dataset = copy_subset(tmp / "photos", {c: 8 for c in ("cat", "dog", "bus", "boat", "sofa", "train")})
    store, model = tmp / "features", tmp / "joint.npz"
    engine = Engine(store, model_path=model)
    engine.index(dataset)
    engine.train()
    assert model.is_file()
    return dataset, store, model


def test_engine_offers_every_query_type() -> None:
    """The documented query methods: similar_images, similar_words, tags(image, k), search(text, k)."""
    missing = [kind for kind in bench.KINDS if not callable(getattr(Engine, kind, None))]
    assert missing == []


def test_same_answers_under_concurrent_load(indexed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    dataset, store, model = indexed
    engine = Engine(store, model_path=model)
    queries = bench.make_queries(engine, dataset, tmp_path / "outside")
    kinds = {q.kind for q in queries}
    assert kinds == set(bench.KINDS)
    reference = bench.reference_answers(engine, queries, K)
    # The reference is sound: good queries answer k items, the ones meant to fail fail clearly.
    for query, (status, value) in zip(queries, reference):
        meant_to_fail = query.label.startswith("bad") or "qqzzxqq" in str(query.arg)
        assert status == ("error" if meant_to_fail else "ok"), (query, value)
        if status == "ok":
            assert len(value) == K, (query, value)
    assert all(bench.same(a, b) for a, b in zip(bench.reference_answers(engine, queries, K), reference))

    # A fresh engine whose first queries come from 8 threads at once: lazy loading must not race.
    cold = bench.cold_start(lambda: Engine(store, model_path=model), queries, reference, THREADS, K)
    assert cold.errors == [], "\n".join(cold.errors[:10])

    # The loaded engine under 8 threads of mixed queries.
    load = bench.run_load(engine, queries, reference, THREADS, SECONDS, K, seed=1)
    print(f"\n{load.table()}")
    assert load.errors == [], "\n".join(load.errors[:10])
    assert set(load.kinds) == kinds and all(len(s.latencies) > 0 for s in load.kinds.values()), load.table()
