"""How fast is the app? Cold start to a usable page, and a text-query rerun.

    python bench/bench_app.py                 # AppTest: fresh processes, then reruns in one
    python bench/bench_app.py --browser       # also a real server + headless Chromium
    python bench/bench_app.py --encoder efficientnet-lite2   # AppTest with another encoder chosen

Features are cached (the project's features/, on the real Pascal Sentences photos): the first
run of this script builds them if missing, and that run is left out of the figures.

- cold start (AppTest): a fresh Python process imports the app and runs it once, every section
  rendered (word vectors, indexes and the hybrid model loaded from disk). Process wall time.
- rerun (AppTest): a new text query in the same session; AppTest reruns the whole script, so this
  is an upper bound (in a browser only the text-search fragment reruns).
- cold start (browser): `streamlit run` started -> the page shows the text-search results.
- rerun (browser): query typed + Enter -> the new result photos are loaded in the page.
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

from vector_search.encoders import ENCODER_NAMES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL, load_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["cat", "street", "tree", "cat sofa", "ocean", "dog + grass", "2:dog", "bus", "train station", "person - car"]

COLD = """
import json, sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=1800)
if len(sys.argv) > 2:
    at.session_state["encoder"] = sys.argv[2]  # the sidebar's select box, chosen before the first run
at.run()
assert not at.exception, [e.value for e in at.exception]
errors = [e.value for e in at.error]
print(json.dumps({"first_run": time.perf_counter() - t0, "errors": errors}))
"""


def app_env() -> dict[str, str]:
    env = dict(os.environ, VECTOR_SEARCH_DATASET=str(PASCAL))
    env.pop("VECTOR_SEARCH_FEATURES", None)
    return env


def cold_start_apptest(runs: int, encoder: str | None = None) -> list[float]:
    times = []
    for i in range(runs + 1):  # run 0 warms the caches on disk (and builds them if missing)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", COLD, str(ROOT / "app.py"), *([encoder] if encoder else [])],
            cwd=ROOT, env=app_env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        report = json.loads(out.stdout.strip().splitlines()[-1])
        if report["errors"]:
            print(f"  warning: the page shows errors: {report['errors']}")
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


def browser(runs: int, queries: list[str]) -> tuple[list[float], list[float]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    from test_browser import chromium, free_port, result_captions, start_server, stop_server

    cold, rerun = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            port = free_port()
            start = time.perf_counter()
            server = start_server(port, Path(tmp) / f"server{i}.log", app_env())
            driver = chromium(Path(tmp) / f"profile{i}")
            try:
                driver.get(f"http://127.0.0.1:{port}/")
                WebDriverWait(driver, 1800, poll_frequency=0.05).until(lambda d: len(result_captions(d, "7.", "8.")) > 0)
                cold.append(time.perf_counter() - start)
                print(f"  browser cold start {i + 1}: {cold[-1]:.2f} s")
                if i == 0:
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
    return cold, rerun


def summary(name: str, times: list[float]) -> None:
    if times:
        print(f"{name}: median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f}, n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time (default: %(default)s)")
    parser.add_argument("--browser", action="store_true", help="also time a real server in headless Chromium")
    parser.add_argument("--browser-only", action="store_true", help="only the browser timings")
    parser.add_argument("--encoder", choices=ENCODER_NAMES, help="AppTest timings with this encoder chosen in the sidebar (default: the app's)")
    args = parser.parse_args()

    print(f"dataset {PASCAL}, store {ROOT / 'features'}, encoder {args.encoder or 'the default'}, load average {load_average()}")
    results = []
    if not args.browser_only:
        cold = cold_start_apptest(args.runs, args.encoder)
        rerun = rerun_apptest(QUERIES, args.encoder)
        results += [("cold start, AppTest (fresh process)", cold), ("query rerun, AppTest (whole script)", rerun)]
    if args.browser or args.browser_only:
        b_cold, b_rerun = browser(args.runs, QUERIES)
        results += [("cold start, browser (server start -> results shown)", b_cold),
                    ("query rerun, browser (Enter -> new photos loaded)", b_rerun)]  # fmt: skip
    print()
    for name, times in results:
        summary(name, times)


if __name__ == "__main__":
    main()
