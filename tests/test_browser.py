"""The app in a real browser: `streamlit run app.py` on localhost, driven by headless Chromium.

Types a text query, waits for the result photos to load, and saves a screenshot of the whole
page (in the test's temporary folder; `APP_SCREENSHOT=docs/app.png` refreshes the README's
picture). Runs on the real Pascal Sentences photos and the project's feature store (features/;
built on the first run if missing). Needs Debian's chromium and chromedriver: skipped
without them, except in CI (CI=true), where their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, need_pascal

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT = os.environ.get("APP_SCREENSHOT")  # where to keep the page's picture, e.g. docs/app.png
FIRST_LOAD = 1200  # seconds: a fresh clone embeds 1000 photos and builds the word index first
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def browser_or_skip() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        why = f"headless Chromium not available ({', '.join(missing)} missing): apt-get install chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log: Path, env: dict[str, str], script: Path = ROOT / "app.py") -> subprocess.Popen:
    """`streamlit run app.py` (or another `script`) in its own process group; returns once its health check answers."""
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise AssertionError(f"streamlit did not answer on port {port}:\n{log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1400,1000")
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def result_captions(driver, first: str, after: str) -> list[str]:
    """Captions of the loaded images between the headers starting with `first` and `after`
    ([] while any of them is still loading). One cheap script call per poll, so waiting (and
    timing, in bench/bench_app.py) disturbs the page little."""
    return driver.execute_script(
        """
        const [first, after] = arguments, headers = [...document.querySelectorAll("h2")];
        const start = headers.find(h => h.textContent.trim().startsWith(first));
        const end = headers.find(h => h.textContent.trim().startsWith(after));
        if (!start || !end) return [];
        const captions = [];
        for (const image of document.querySelectorAll('[data-testid="stImageContainer"]')) {
            const inside = start.compareDocumentPosition(image) & Node.DOCUMENT_POSITION_FOLLOWING
                && end.compareDocumentPosition(image) & Node.DOCUMENT_POSITION_PRECEDING;
            if (!inside) continue;
            const img = image.querySelector("img");
            if (!img || !img.complete || img.naturalWidth === 0) return [];
            captions.push(image.textContent.trim());
        }
        return captions;
        """,
        first,
        after,
    )


def save_full_page(driver, path: Path) -> None:
    """Resize the window to the height of the app's scrolling container, then screenshot it."""
    height = driver.execute_script(
        "const main = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        "return Math.max(main.scrollHeight, document.body.scrollHeight);"
    )
    driver.set_window_size(1400, min(int(height) + 120, 16000))
    time.sleep(1.5)  # let the layout and the charts settle at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    tmp.write_bytes(driver.get_screenshot_as_png())  # true colour: a 256-colour palette spoils the photos
    os.replace(tmp, path)


def test_text_query_shows_photos_in_chromium(tmp_path: Path) -> None:
    browser_or_skip()
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    env = dict(os.environ, VECTOR_SEARCH_DATASET=str(need_pascal()), PYTHONUNBUFFERED="1")
    env.pop("VECTOR_SEARCH_FEATURES", None)  # the project's own store: features/
    port = free_port()
    log = tmp_path / "streamlit.log"
    server = start_server(port, log, env)
    driver = None
    try:
        driver = chromium(Path(tempfile.mkdtemp(dir=tmp_path, prefix="chromium-")))
        driver.get(f"http://127.0.0.1:{port}/")
        box = WebDriverWait(driver, FIRST_LOAD).until(
            EC.element_to_be_clickable((By.CSS_SELECTOR, "input[aria-label='Search the photos']"))
        )
        # the first query (the default, "ocean") has rendered its photos
        WebDriverWait(driver, FIRST_LOAD).until(lambda d: len(result_captions(d, "7.", "8.")) == 8)
        before = result_captions(driver, "7.", "8.")

        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys("cat sofa", Keys.ENTER)
        WebDriverWait(driver, 60).until(
            lambda d: (c := result_captions(d, "7.", "8.")) and len(c) == 8 and c != before
        )
        after = result_captions(driver, "7.", "8.")
        assert sum(c.split(" · ")[0] in ("cat", "sofa") for c in after) >= 4, after

        # every other section rendered too, without a traceback
        headers = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
        assert [h.split(".")[0] for h in headers if h[:1].isdigit()] == [str(i) for i in range(1, 9)], headers
        assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
        for summary in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stExpander'] summary"):  # sections 4, 6, 8: opened
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", summary)
            time.sleep(0.5)
        WebDriverWait(driver, 120).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart'] canvas, "
                                                      "[data-testid='stVegaLiteChart'] svg")
        )
        picture = ROOT / SCREENSHOT if SCREENSHOT else tmp_path / "app.png"
        save_full_page(driver, picture)
        assert picture.stat().st_size > 100_000
        assert Image.open(picture).height > 3000  # the whole page, not the first screen
    finally:
        if driver is not None:
            driver.quit()
        stop_server(server)
