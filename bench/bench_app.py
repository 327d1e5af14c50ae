"""How fast is the app? Cold start to a usable page, and a text-query rerun.

    python bench/bench_app.py                 # AppTest: fresh processes, then reruns in one
    python bench/bench_app.py --browser       # also a real server + headless Chromium, beside a bare page
    python bench/bench_app.py --encoder efficientnet-lite2   # AppTest with another encoder chosen
    python bench/bench_app.py --big 200000    # AppTest on a big synthetic store (read-only serving)
    python bench/bench_app.py --big 20000 --app /tmp/before/app.py   # the same with another checkout's app

Features are cached (the project's features/, on the real Pascal Sentences photos): the first
run of this script builds them if missing, and that run is left out of the figures.

- cold start (AppTest): a fresh Python process imports the app and runs it once, every section
  rendered (word vectors, indexes and the hybrid model loaded from disk). Process wall time.
- rerun (AppTest): a new text query in the same session; AppTest reruns the whole script, so this
  is an upper bound (in a browser only the text-search fragment reruns).
- cold start (browser): `streamlit run` started -> the page shows the text-search results.
- rerun (browser): query typed + Enter -> the new result photos are loaded in the page.
  Both for our app and for a bare Streamlit page (bench/bare_page.py: one text box, one image
  picked by the text), started and driven the same way, their runs interleaved; the ratios of
  the medians are printed (issue 20's targets: cold start <= 1.5x, rerun <= 2x the bare page's).
- --big ROWS: a store of ROWS Lite0 vectors made from the 1000 real Pascal ones (kept as rows
  0-999, real paths; every other row is a real vector picked at random plus Gaussian noise of 5%
  of the vectors' standard deviation, clipped at 0 as ReLU features are, with a fake path in a real
  class folder), written once to /tmp/vs_big_store_ROWS with `Store(...).save()`, its derived parts
  (image index and its scores, joint vectors and index, text-score calibration, map) built and saved then, as
  `index` would. The app serves it read-only (VECTOR_SEARCH_READONLY=1: indexing would drop the
  fake rows) over the Pascal folder, and so is the 1000-photo store (features/), their fresh
  processes interleaved (--runs each, after a warm-up pair): the first run of the page, then 5
  text-query reruns; process wall time, peak RSS (VmHWM of the child) and the ratios of the medians.
  --old-map-cache: for an app from before the sampled map (--app), which maps every row by t-SNE
  (hours at 200k), first save a PCA map of every row where that app looks for its t-SNE cache,
  so its figures leave the t-SNE out (a lower bound of its cost).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vector_search.imaging.encoders import DEFAULT_ENCODER, ENCODER_NAMES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL, load_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["cat", "street", "tree", "cat sofa", "ocean", "dog + grass", "2:dog", "bus", "train station", "person - car"]

# argv: app.py, encoder ("" for the app's default), text queries to rerun with (JSON list)
COLD = """
import json, sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=3600)
if sys.argv[2]:
    at.session_state["encoder"] = sys.argv[2]  # the sidebar's select box, chosen before the first run
at.run()
first = time.perf_counter() - t0
assert not at.exception, [e.value for e in at.exception]
reruns = []
for query in json.loads(sys.argv[3]):
    at.text_input(key="text_query").input(query)
    t = time.perf_counter()
    at.run()
    reruns.append(time.perf_counter() - t)
    assert not at.exception, [e.value for e in at.exception]
print(json.dumps({
    "first_run": first, "reruns": reruns, "errors": [e.value for e in at.error],
    "map": [c.value for c in at.caption if "photos: a fixed sample" in c.value],
    "maxrss_mib": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024,
}))
"""


def app_env(features: Path | None = None) -> dict[str, str]:
    """The app's environment: the Pascal folder; the project's store, or `features` served read-only."""
    env = dict(os.environ, VECTOR_SEARCH_DATASET=str(PASCAL))
    env.pop("VECTOR_SEARCH_FEATURES", None)
    if features is not None:
        env.update(VECTOR_SEARCH_FEATURES=str(features), VECTOR_SEARCH_READONLY="1")
    return env


def run_app(app: Path, env: dict[str, str], encoder: str | None = None, queries: list[str] = ()) -> tuple[float, dict]:
    """One fresh process running the page once (then `queries` as reruns): its wall time and report."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", COLD, str(app), encoder or "", json.dumps(list(queries))],
        cwd=app.parent, env=env, capture_output=True, text=True, check=True,  # `python -c` imports from its cwd first
    )  # fmt: skip
    wall = time.perf_counter() - start
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if report["errors"]:
        print(f"  warning: the page shows errors: {report['errors']}")
    return wall, report


def cold_start_apptest(runs: int, encoder: str | None = None) -> list[float]:
    times = []
    for i in range(runs + 1):  # run 0 warms the caches on disk (and builds them if missing)
        wall, report = run_app(ROOT / "app.py", app_env(), encoder)
        if i:
            times.append(wall)
            print(f"  cold start {i}: {wall:.2f} s (of which AppTest run {report['first_run']:.2f} s)")
    return times


def rerun_apptest(queries: list[str], encoder: str | None = None) -> list[float]:
    os.environ.update(app_env())
    os.environ.pop("VECTOR_SEARCH_FEATURES", None)
    os.chdir(ROOT)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=1800)
    if encoder:
        at.session_state["encoder"] = encoder
    at.run()
    times = []
    for query in queries:
        at.text_input(key="text_query").input(query)
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        assert not at.exception, [e.value for e in at.exception]
    return times


def big_store(rows: int, noise: float = 0.05, seed: int = 0) -> Path:
    """The root of a store of `rows` vectors made from the real Pascal Lite0 ones (see the module
    docstring); built once, outside the repository."""
    from vector_search.engine import Engine
    from vector_search.imaging.images import class_of
    from vector_search.store.folders import store_dir
    from vector_search.store.store import Item, Store, StoreError

    root = Path(tempfile.gettempdir()) / f"vs_big_store_{rows}"
    directory = store_dir(root, DEFAULT_ENCODER)
    try:
        made = len(Store.load(directory)) == rows
    except StoreError:
        made = False
    if not made:
        pascal = Engine(ROOT / "features", DEFAULT_ENCODER)
        pascal.index(PASCAL)  # (and trains the app's default joint model, if missing: the big store's joint vectors are its)
        real = pascal.store
        n, dim = real.vectors.shape
        rng = np.random.default_rng(seed)
        picks = rng.integers(n, size=rows - n)
        sigma = noise * float(real.vectors.std())
        vectors = np.empty((rows, dim), np.float32)
        vectors[:n] = real.vectors
        for start in range(n, rows, 50_000):
            chunk = picks[start - n : start - n + 50_000]
            noisy = real.vectors[chunk] + rng.normal(0, sigma, (len(chunk), dim)).astype(np.float32)
            vectors[start : start + len(chunk)] = np.maximum(noisy, 0)
        fake = [Item(f"{class_of(real.items[p].path)}/synthetic_{i:07d}.jpg", 0, 0, f"{i:064x}") for i, p in enumerate(picks, n)]
        Store(directory, DEFAULT_ENCODER, str(PASCAL), [*real.items, *fake], vectors).save()
    engine = Engine(root, DEFAULT_ENCODER)  # what `index` saves beside the vectors, and the map, once: the app reads them
    _ = engine.images, engine.current().image_scores
    engine.index_joint()
    _ = engine.image_map()
    return root


def big(rows: int, app: Path, runs: int, old_map_cache: bool = False) -> None:
    """Cold starts and text-query reruns of `app` on a big synthetic store and on the 1000-photo one,
    both served read-only, their fresh processes interleaved (issue 20: the big store's within 1.5x)."""
    start = time.perf_counter()
    root = big_store(rows)
    if old_map_cache:
        from vector_search.store.folders import store_dir
        from vector_search.store.projection import project_2d
        from vector_search.store.store import Store

        store = Store.load(store_dir(root, DEFAULT_ENCODER))
        store.save_array("map", project_2d(store.vectors, method="pca"), method="tsne")  # the old app's cache key
    print(f"store of {rows} rows at {root} ready in {time.perf_counter() - start:.1f} s", flush=True)
    stores = {"1000 photos": ROOT / "features", f"{rows} photos": root}
    figures: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in stores}
    for i in range(runs + 1):  # run 0 warms the OS file cache: not counted
        for name, features in stores.items():
            env = dict(app_env(features), PYTHONPATH=str(app.parent))  # the app's own checkout of the library
            wall, report = run_app(app, env, queries=QUERIES[:5])
            rerun = statistics.median(report["reruns"])
            print(f"  {name}, run {i}{' (warm-up, not counted)' if not i else ''}: {wall:.2f} s process wall (first page run "
                  f"{report['first_run']:.2f} s); text-query reruns median {rerun:.3f} s; peak RSS {report['maxrss_mib']:.0f} MiB; "
                  f"load {load_average()}", flush=True)  # fmt: skip
            if i:
                figures[name][0].append(wall)
                figures[name][1].append(rerun)
    print()
    for name, (cold, rerun) in figures.items():
        summary(f"{name}: cold start, AppTest (fresh process)", cold)
        summary(f"{name}: text-query rerun, AppTest (median of a process's 5)", rerun)
    small, large = figures.values()
    for i, what in enumerate(("cold start", "text-query rerun")):
        print(f"{what}: {rows} photos / 1000 photos = {statistics.median(large[i]) / statistics.median(small[i]):.2f}x (medians)")


BARE_PAGE = ROOT / "bench" / "bare_page.py"


def browser(runs: int, queries: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    """Cold starts and text-query reruns in headless Chromium, of our app and of a bare Streamlit
    page (bench/bare_page.py: one text box, one image), started and driven the same way, their runs
    interleaved so both see the same load. Returns {page: (cold starts, reruns)}."""
    sys.path.insert(0, str(ROOT / "tests"))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    from test_browser import chromium, free_port, result_captions, start_server, stop_server

    pages = {"bare": BARE_PAGE, "app": ROOT / "app.py"}
    times: dict[str, tuple[list[float], list[float]]] = {page: ([], []) for page in pages}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs + 1):  # run 0 warms the OS file cache (and builds the store, if missing): not counted
            for page, script in pages.items():
                cold, rerun = times[page]
                port = free_port()
                start = time.perf_counter()
                server = start_server(port, Path(tmp) / f"{page}{i}.log", app_env(), script)
                driver = chromium(Path(tmp) / f"profile-{page}{i}")
                try:
                    driver.get(f"http://127.0.0.1:{port}/")
                    WebDriverWait(driver, 1800, poll_frequency=0.05).until(lambda d: len(result_captions(d, "7.", "8.")) > 0)
                    if not i:
                        continue
                    cold.append(time.perf_counter() - start)
                    print(f"  {page}: cold start {i}: {cold[-1]:.2f} s (load {load_average()})", flush=True)
                    box = driver.find_element(By.CSS_SELECTOR, "input[aria-label='Search the photos']")
                    for query in queries:
                        before = result_captions(driver, "7.", "8.")
                        box.send_keys(Keys.CONTROL, "a")
                        box.send_keys(Keys.DELETE)
                        box.send_keys(query)  # typed, not yet sent: the clock starts at Enter
                        t = time.perf_counter()
                        box.send_keys(Keys.ENTER)
                        WebDriverWait(driver, 60, poll_frequency=0.02).until(
                            lambda d, before=before: (c := result_captions(d, "7.", "8.")) and c != before
                        )
                        rerun.append(time.perf_counter() - t)
                finally:
                    driver.quit()
                    stop_server(server)
    return times


def summary(name: str, times: list[float]) -> None:
    if times:
        print(f"{name}: median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f}, n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time (default: %(default)s)")
    parser.add_argument("--browser", action="store_true", help="also time a real server in headless Chromium")
    parser.add_argument("--browser-only", action="store_true", help="only the browser timings")
    parser.add_argument("--encoder", choices=ENCODER_NAMES, help="AppTest timings with this encoder chosen in the sidebar (default: the app's)")
    parser.add_argument("--big", type=int, metavar="ROWS", help="only: AppTest on a synthetic store of ROWS vectors beside the 1000-photo store")
    parser.add_argument("--app", type=Path, default=ROOT / "app.py", help="the app to time with --big (e.g. an older checkout's)")
    parser.add_argument("--old-map-cache", action="store_true", help="with --big: save a PCA map of every row as an old app's t-SNE cache")
    args = parser.parse_args()

    if args.big:
        print(f"app {args.app}, machine load average {load_average()}")
        big(args.big, args.app.resolve(), args.runs, args.old_map_cache)
        return

    print(f"dataset {PASCAL}, store {ROOT / 'features'}, encoder {args.encoder or 'the default'}, load average {load_average()}")
    results = []
    if not args.browser_only:
        cold = cold_start_apptest(args.runs, args.encoder)
        rerun = rerun_apptest(QUERIES, args.encoder)
        results += [("cold start, AppTest (fresh process)", cold), ("query rerun, AppTest (whole script)", rerun)]
    ratios = []
    if args.browser or args.browser_only:
        pages = browser(args.runs, QUERIES)
        for page, what in (("app", "our app"), ("bare", "a bare page (one text box, one image)")):
            cold, rerun = pages[page]
            results += [(f"cold start, browser, {what} (server start -> results shown)", cold),
                        (f"query rerun, browser, {what} (Enter -> new photos loaded)", rerun)]  # fmt: skip
        for i, what in enumerate(("cold start", "text-query rerun")):
            ratios.append(f"{what}: our app / the bare page = {statistics.median(pages['app'][i]) / statistics.median(pages['bare'][i]):.2f}x (medians)")
    print()
    for name, times in results:
        summary(name, times)
    for line in ratios:
        print(line)
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
