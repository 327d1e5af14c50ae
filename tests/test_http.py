"""`vector-search serve` (serving/http.py): a real uvicorn server on a free port over 12 real photos,
real weights and the real GloVe, asked as a client would (urllib); the server-mode rules and the
error mapping through FastAPI's in-process client."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
from conftest import ROOT, copy_subset
from PIL import Image

from vector_search.cli import main
from vector_search.engine import Engine
from vector_search.imaging.images import class_of

CAT = "cat/2008_000116.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base: str, route: str, **params) -> tuple[int, dict]:
    """GET base+route?params: (status, JSON body), errors included."""
    return _send(urllib.request.Request(f"{base}{route}?{urllib.parse.urlencode(params)}"))


def post_photo(base: str, route: str, name: str, data: bytes, **params) -> tuple[int, dict]:
    """POST a file as multipart/form-data field `file`, as a browser form does."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}{route}?{urllib.parse.urlencode(params)}", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return _send(request)


def _send(request: urllib.request.Request) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """`app` on a real uvicorn server in this process (so a test can patch it), on a free port."""
    import uvicorn

    port = free_port()
    # log_config=None: uvicorn's logging.config.dictConfig would close every existing handler, and
    # absl's (TensorFlow's, once an earlier test imported it) then closes the stream it writes to:
    # pytest's capture of stderr, which every later test needs.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("http")
    dataset = copy_subset(base / "photos", {"cat": 4, "bus": 4, "boat": 4})
    Engine(base / "features").index(dataset)
    return dataset, base / "features"


@pytest.fixture(scope="module")
def server(indexed: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`vector-search serve` as a subprocess on a free port; its base URL once it says it is serving."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VECTOR_SEARCH_MODELS": str(tmp_path_factory.mktemp("models"))}
    proc = subprocess.Popen([sys.executable, "-m", "vector_search", "serve", "--features", str(indexed[1]), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once loaded; uvicorn binds right after
        assert line.startswith("serving on http://127.0.0.1:"), line
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if get(base, "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
def test_routes_answer_like_the_cli(server: str, indexed: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    dataset, store = indexed
    status, health = get(server, "/health")
    assert status == 200 and health["photos"] == 12 and health["encoder"] == "efficientnet-lite0"

    status, body = get(server, "/search", q="cat", k=4)
    assert status == 200 and body["query"] == "cat" and len(body["results"]) == 4
    assert class_of(body["results"][0]["item"]) == "cat"
    assert main(["search", "cat", "-k", "4", "--json", "--features", str(store)]) == 0
    assert json.loads(capsys.readouterr().out) == body  # the CLI's --json, field for field

    status, body = get(server, "/similar", path=CAT, k=3)
    assert status == 200 and [class_of(r["item"]) for r in body["results"]] == ["cat"] * 3
    assert all(not r["item"].endswith(CAT) for r in body["results"])  # the photo itself excluded

    status, body = get(server, "/tags", path=str(dataset / CAT), k=5)  # an absolute path too
    assert status == 200 and len(body["results"]) == 5

    status, body = get(server, "/words", q="cat", k=5)
    assert status == 200 and "dog" in [r["item"] for r in body["results"]]

    buffer = io.BytesIO()
    Image.open(dataset / CAT).convert("RGB").save(buffer, "PNG")  # another file: the model runs on it
    status, body = post_photo(server, "/similar", "my cat.png", buffer.getvalue(), k=3)
    assert status == 200 and body["query"] == "my cat.png"
    assert class_of(body["results"][0]["item"]) == "cat"

    with urllib.request.urlopen(f"{server}/docs") as docs, urllib.request.urlopen(f"{server}/openapi.json") as spec:
        assert b"swagger" in docs.read().lower()
        assert {"/health", "/search", "/words", "/similar", "/tags"} <= set(json.loads(spec.read())["paths"])


@pytest.mark.slow
def test_bad_input_is_a_one_line_4xx(server: str, pascal_dataset: Path) -> None:
    cases = [
        (get(server, "/search", q="cat", k=0), 422, "k"),
        (get(server, "/search", q="cat", k="ten"), 422, "k"),
        (get(server, "/search"), 422, "q"),
        (get(server, "/similar", path="cat/no such photo.jpg"), 404, "not found"),
        (get(server, "/tags", path="/dev/zero"), 400, "not a regular file"),
        (post_photo(server, "/similar", "junk.jpg", b"not a photo at all"), 400, "not an image"),
        (get(server, "/search", q="cat", after="last summer"), 400, "not a date"),
    ]
    for (status, body), expected, words in cases:
        assert status == expected, body
        assert set(body) == {"detail"} and "\n" not in body["detail"] and words in body["detail"], body


@pytest.mark.slow
def test_concurrent_clients_get_the_answers_of_one(server: str) -> None:
    """8 clients at once, a mix of routes: every answer is the one a lone client gets."""
    asks = [("/search", {"q": q, "k": 5}) for q in ("cat", "bus", "boat on water", "red bus")]
    asks += [("/similar", {"path": CAT, "k": 5}), ("/tags", {"path": CAT, "k": 5}), ("/words", {"q": "boat", "k": 5})]
    alone = [get(server, route, **params) for route, params in asks]
    def ask(i: int) -> tuple[int, dict]:
        route, params = asks[i % len(asks)]
        return get(server, route, **params)

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, range(8 * len(asks))))
    assert all(status == 200 for status, _ in alone)
    assert together == [alone[i % len(asks)] for i in range(8 * len(asks))]


@pytest.mark.slow
def test_server_mode_rules(indexed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pascal_dataset: Path) -> None:
    """With a root, a photo outside it is refused (403), `..` too; an upload past the limit is 413."""
    from vector_search.serving import http

    dataset, store = indexed
    monkeypatch.setenv("VECTOR_SEARCH_ROOT", str(store.parent))
    engine = Engine(store)
    http.warm(engine)
    monkeypatch.setattr(http, "MAX_BYTES", 1000)
    with running(http.create_app(engine)) as base:
        assert get(base, "/similar", path=CAT, k=2)[0] == 200
        status, body = get(base, "/similar", path=str(pascal_dataset / CAT))
        assert status == 403 and "must be under" in body["detail"]
        assert get(base, "/tags", path="../../etc/passwd")[0] == 403
        status, body = post_photo(base, "/similar", "big.jpg", (dataset / CAT).read_bytes())
        assert status == 413 and "too large" in body["detail"]
    monkeypatch.setenv("VECTOR_SEARCH_ROOT", str(tmp_path))
    with pytest.raises(PermissionError, match="must be under"):
        http.warm(Engine(store))  # the store itself outside the root: the server does not start


def test_no_store_is_a_clear_4xx(tmp_path: Path) -> None:
    from vector_search.serving.http import create_app

    with running(create_app(Engine(tmp_path / "features"))) as base:
        status, body = get(base, "/similar", path="x.jpg")
        assert status == 400 and "index" in body["detail"]
        assert get(base, "/search", q="cat", k=-1) == (422, {"detail": "k: Input should be greater than or equal to 1"})
