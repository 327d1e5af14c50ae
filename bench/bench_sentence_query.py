"""What a sentence query costs: `vector-search search`'s engine call with the sentence model against
the GloVe model, same store, same queries, warm (median), and the memory each process peaks at.

Each text space runs in a fresh child, back to back in one run (compare the ratio; the load
average is printed; the CPU time a query takes is printed too: on a shared machine it moves less
with the load than the wall time). Every query is a new text (the encoder's LRU cache is not measured).
The models are trained once into --models (the default captions-trained model of each space).

    python bench/bench_sentence_query.py [--store features] [--queries 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL, load_average, machine, median, print_child_result, run_child, table  # noqa: E402

SENTENCES = [
    "a dog playing on the beach", "a goose by the river", "two people riding horses on a trail", "a black cat on a sofa",
    "a red double-decker bus in the street", "an old man reading a newspaper", "a small boat on a calm lake",
    "a plane taking off from the runway", "cows grazing in a green field", "a bottle of wine on a table",
]


def vm_hwm_mib() -> float:
    """Peak resident memory of this process (VmHWM)."""
    line = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def child(store: Path, model: Path, queries: int) -> None:
    from vector_search.engine import Engine

    engine = Engine(store, model_path=model)
    start = time.perf_counter()
    engine.search_text("a photo of something", 10)  # loads store, model, index, text side
    first = time.perf_counter() - start
    times, cpu = [], []
    for i in range(queries):
        text = f"{SENTENCES[i % len(SENTENCES)]} {i}"
        t, c = time.perf_counter(), time.process_time()
        engine.search_text(text, 10)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print_child_result({"text": engine.joint.text, "first_s": first, "query_ms": 1000 * median(times), "cpu_ms": 1000 * median(cpu),
                        "vm_hwm_mib": vm_hwm_mib()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, default=Path("features"))
    parser.add_argument("--models", type=Path, default=Path("/tmp/bench_sentence_models"))
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--child", nargs=2, metavar=("STORE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(Path(args.child[0]), Path(args.child[1]), args.queries)

    from vector_search.engine import Engine

    print(machine())
    before = load_average()
    rows = {}
    for text in ("glove", "minilm"):
        model = args.models / f"joint-{text}.npz"
        if not model.is_file():
            engine = Engine(args.store, model_path=model)
            engine.index(PASCAL)
            engine.train(text=text)
        r = run_child(["bench/bench_sentence_query.py", "--child", str(args.store), str(model), "--queries", str(args.queries)])
        rows[text] = [text, r["first_s"], r["query_ms"], r["cpu_ms"], r["vm_hwm_mib"]]
    print(table(["text space", "first query s (loads)", "query ms (median, warm)", "CPU ms (median)", "peak RSS MiB"], list(rows.values())))
    glove, minilm = rows["glove"], rows["minilm"]
    print(f"sentence minus GloVe: {minilm[2] - glove[2]:+.1f} ms a query (ratio {minilm[2] / glove[2]:.2f}), {minilm[3] - glove[3]:+.1f} ms CPU, "
          f"{minilm[4] - glove[4]:+.0f} MiB a process; load average before: {before}, after: {load_average()}")


if __name__ == "__main__":
    main()
