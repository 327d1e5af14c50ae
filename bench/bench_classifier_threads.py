"""The dataset classifier's fit (joint.blend.fit_classifier, what blend, captions and sentence train)
with one BLAS thread against the default, on the Pascal store's features, side by side in one run.

    python bench/bench_classifier_threads.py [--dataset DIR] [--store features]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine, median, pascal_features  # noqa: E402


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info, threadpool_limits

    from vector_search.joint.blend import power_normalize

    store, _, _ = pascal_features(__doc__)
    labels = np.searchsorted(sorted(set(store.classes)), store.classes)
    x = power_normalize(np.asarray(store.vectors))
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    print(machine(), [(i["internal_api"], i["num_threads"]) for i in threadpool_info()])
    times: dict[str, list[float]] = {"default": [], "1 thread": []}
    for _ in range(2):
        for name, threads in (("default", None), ("1 thread", 1)):
            with threadpool_limits(threads, user_api="blas"):
                start = time.perf_counter()
                LogisticRegression(C=0.03, max_iter=3000, random_state=0).fit(x, labels)
                times[name].append(time.perf_counter() - start)
    default, one = median(times["default"]), median(times["1 thread"])
    print(f"fit, median of 2: default BLAS threads {default:.1f} s, 1 thread {one:.1f} s: ratio {default / one:.1f}x; load {load_average()}")


if __name__ == "__main__":
    main()
