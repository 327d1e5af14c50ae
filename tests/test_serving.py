"""Safe to put online: one writer at a time (file locks, a killed holder), a full disk that loses
nothing (a real 2 MiB filesystem), queries answered while another process indexes, and the app's
server mode (a root folder, read-only).

Real photos (small subsets of Pascal Sentences), real weights; the CLI runs as a subprocess.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pytest
from conftest import PHOTOS, ROOT, copy_subset
from PIL import Image
from test_robustness import cli, cli_args, cli_env, json_rows, summary

from vector_search.engine import Engine
from vector_search.joint import JointModel
from vector_search.store import locks
from vector_search.store.files import MANIFEST_FILE
from vector_search.store.store import Store

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

ENCODER = "efficientnet-lite0"

# --- one writer at a time ---------------------------------------------------------------------------

HOLDER = """
import sys, time
from vector_search.store import locks
from vector_search.engine import Engine
with locks.writer_lock(sys.argv[1], "the test target"):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_in_child(target: Path) -> subprocess.Popen:
    """A separate process that holds the writer lock of `target` until it is killed."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(target)], cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "held\n"
    return child


def test_a_writer_killed_by_sigkill_leaves_no_stale_lock(tmp_path: Path) -> None:
    target = tmp_path / "features" / ENCODER
    child = hold_in_child(target)
    with pytest.raises(locks.LockBusyError, match="being written by another process"):
        with locks.writer_lock(target, "the store", wait=False):
            pass
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    assert locks.lock_file(target).exists()  # the lock file stays; the kernel dropped the lock itself
    with locks.writer_lock(target, "the store", wait=False):  # taken over at once, nothing to clean
        pass


def test_threads_of_one_process_take_turns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "model.npz"
    waiting, order = threading.Event(), []

    class Waiting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for another writer" in record.getMessage():
                waiting.set()

    def second() -> None:
        with locks.writer_lock(target, "the model"):
            order.append("second")

    handler = Waiting()
    logging.getLogger("vector_search.store.locks").addHandler(handler)
    try:
        with locks.writer_lock(target, "the model"):
            with pytest.raises(locks.LockBusyError):
                with locks.writer_lock(target, "the model", wait=False):
                    pass
            thread = threading.Thread(target=second)
            thread.start()
            assert waiting.wait(timeout=60)  # it said it waits...
            order.append("first")  # ...and did not get in while we hold the lock
        thread.join()
    finally:
        logging.getLogger("vector_search.store.locks").removeHandler(handler)
    assert order == ["first", "second"]


@pytest.mark.slow
def test_cli_no_wait_fails_fast_on_a_busy_store(small_dataset: Path, tmp_path: Path) -> None:
    store = tmp_path / "features"
    child = hold_in_child(store / ENCODER)
    try:
        result = cli("index", small_dataset, "--features", store, "--no-wait")
    finally:
        child.kill()
        child.wait()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: the feature store {store / ENCODER} is being written by another "
                                                  f"process (lock {store / ENCODER}.lock): try again when it is done"]
    assert not (store / ENCODER / MANIFEST_FILE).exists()


@pytest.mark.slow
def test_two_concurrent_index_runs_end_with_one_complete_store(small_dataset: Path, tmp_path: Path) -> None:
    """Both runs start while a third party holds the lock, so they really overlap; both wait, say
    so, take turns and report; the store ends complete, its index matching it."""
    store = tmp_path / "features"
    holder = hold_in_child(store / ENCODER)
    runs = [
        subprocess.Popen(cli_args("index", small_dataset, "--features", store), cwd=ROOT, env=cli_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for run in runs:  # each says it waits (stderr is read line by line until it does)
        assert any("waiting for another writer" in line for line in run.stderr), "a run never said it waits"
    holder.kill()
    holder.wait()
    outputs = [run.communicate() + (run.returncode,) for run in runs]
    assert [code for _, _, code in outputs] == [0, 0], outputs
    counts = sorted((summary(out)["added"], summary(out)["unchanged"]) for out, _, _ in outputs)
    assert counts == [(0, 12), (12, 0)]  # one embedded everything, the other found it all done
    loaded = Store.load(store / ENCODER)
    assert len(loaded) == 12 and loaded.vectors.shape == (12, 1280)
    first = loaded.paths[0]
    result = cli("similar", first, "--features", store, "-k", "11", "--json")
    assert result.returncode == 0 and len(json_rows(result.stdout)[0]["results"]) == 11
    assert "rebuilding" not in result.stderr and "building" not in result.stderr  # the saved index matches the store
    assert list((store / ENCODER).glob(".*.tmp")) == []


# --- a full disk loses nothing ------------------------------------------------------------------------


class SmallDisk:
    """A real small filesystem: a tmpfs of `size` where root may mount one, else files capped by
    RLIMIT_FSIZE in the child (writes past the cap fail with EFBIG). `limit(n)` leaves n bytes
    free on the tmpfs, or caps each file at n bytes; `cli` runs the CLI under that limit."""

    def __init__(self, folder: Path, size: str) -> None:
        self.folder = folder
        folder.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
        self.tmpfs = mounted.returncode == 0
        self.cap: int | None = None

    def limit(self, free_bytes: int) -> None:
        if not self.tmpfs:
            self.cap = free_bytes
            return
        self.unlimit()
        st = os.statvfs(self.folder)
        with open(self.folder / "filler", "wb") as f:
            f.write(b"\0" * max(st.f_bavail * st.f_frsize - free_bytes, 0))

    def unlimit(self) -> None:
        self.cap = None
        (self.folder / "filler").unlink(missing_ok=True)

    def _capped(self) -> None:  # in the child, before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death; kept across exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.cap, self.cap))

    def cli(self, *args: str | os.PathLike, **env: str) -> subprocess.CompletedProcess:
        return self.run(cli_args(*args), **env)

    def run(self, argv: list, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=ROOT, env=cli_env(**env), capture_output=True, text=True,
                              preexec_fn=self._capped if self.cap is not None else None)

    def close(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", str(self.folder)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 2 MiB disk: room for a small store."""
    disk = SmallDisk(tmp_path / "disk", "2m")
    yield disk
    disk.close()


@pytest.fixture
def model_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 32 MiB disk: room for one joint model (its ConSE part holds ImageNet's class vectors)."""
    disk = SmallDisk(tmp_path / "models", "32m")
    yield disk
    disk.close()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (the filler aside): relative path -> SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "filler" and not p.name.endswith(".lock")}


def error_line(stderr: str) -> str:
    """The one error line of a failed run (the progress bar aside)."""
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    return line


FULL = f"({os.strerror(errno.ENOSPC).lower()}|{os.strerror(errno.EFBIG).lower()}); the previous version is kept"


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_loses_nothing(tmp_path: Path, small_disk: SmallDisk, pascal_dataset: Path) -> None:
    dataset = copy_subset(tmp_path / "photos", {"cat": 3, "bus": 3})
    store = small_disk.folder / "features"
    assert small_disk.cli("index", dataset, "--features", store).returncode == 0
    before = snapshot(store)
    assert set(before) >= {f"{ENCODER}/{MANIFEST_FILE}", f"{ENCODER}/images.ann", f"{ENCODER}/images.ann.json"}
    copy_subset(dataset, {"boat": 6})  # 6 more photos; their first checkpoint (6 x 5 KiB of vectors) does not fit
    small_disk.limit(8192)

    result = small_disk.cli("index", dataset, "--features", store, VECTOR_SEARCH_CHECKPOINT_SECONDS="0")  # a checkpoint per batch
    assert result.returncode == 2, result.stderr
    error = error_line(result.stderr)
    assert error.startswith(f"error: cannot save {store / ENCODER / 'vectors-'}"), error
    assert re.search(FULL, error), error
    assert snapshot(store) == before  # byte-identical, no temporary left
    served = small_disk.cli("similar", sorted((dataset / "cat").iterdir())[0], "--features", store, "-k", "5", "--json")
    assert served.returncode == 0 and len(json_rows(served.stdout)[0]["results"]) == 5  # the old store, still served

    small_disk.unlimit()  # space again: the next run completes
    assert summary(small_disk.cli("index", dataset, "--features", store).stdout)["added"] == 6
    assert len(Store.load(store / ENCODER)) == 12


def test_a_failed_save_of_any_kind_leaves_the_files_and_no_temporary(tmp_path: Path) -> None:
    """Not only a full disk: whatever fails inside a save (here a bug, and an interrupt) leaves
    both files as they were and removes both temporaries."""
    from vector_search import fileio

    model, sidecar = tmp_path / "joint.npz", tmp_path / "joint.json"
    fileio.save_npz(model, weights=np.arange(6, dtype=np.float32))
    fileio.save_json(sidecar, {"version": 1})
    before = snapshot(tmp_path)
    for failure in (ValueError("a bug"), KeyboardInterrupt()):
        with pytest.raises(type(failure)):
            with fileio.atomic_paths(model, sidecar) as (arrays, meta):
                fileio.write_npz(arrays, weights=np.zeros(6, np.float32))
                fileio.write_json(meta, {"version": 2})
                raise failure
        assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["joint.json", "joint.npz"]


INDEX_SCRIPT = """
import sys
import numpy as np
from vector_search.search.index import load_or_build
vectors = np.load(sys.argv[1])[: int(sys.argv[3])]
for kind in ("annoy", "hnsw"):
    index = load_or_build(f"{sys.argv[2]}/words.{kind}", vectors, f"first {len(vectors)}", kind)
    print(kind, index.search(vectors[7], 1)[0][0])
"""


def test_a_full_disk_during_an_index_save_keeps_the_saved_index(tmp_path: Path, small_disk: SmallDisk, tmp_glove) -> None:
    """Annoy and HNSW indexes (of real GloVe vectors) that do not fit: the saved ones stay as they
    were, no temporary is left, and the new index answers from memory (an index is a cache)."""
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, np.asarray(tmp_glove.vectors[:3000]))
    indexes = small_disk.folder / "indexes"
    indexes.mkdir()
    first = small_disk.run([sys.executable, "-c", INDEX_SCRIPT, str(vectors), str(indexes), "1000"])
    assert first.returncode == 0 and first.stdout.split() == ["annoy", "7", "hnsw", "7"], first.stderr
    before = snapshot(indexes)
    assert set(before) == {"words.annoy", "words.annoy.json", "words.hnsw", "words.hnsw.json"}
    small_disk.limit(8192)

    bigger = small_disk.run([sys.executable, "-c", INDEX_SCRIPT, str(vectors), str(indexes), "3000"])
    assert bigger.returncode == 0 and bigger.stdout.split() == ["annoy", "7", "hnsw", "7"], bigger.stderr
    warnings = [line for line in bigger.stderr.splitlines() if "cannot save" in line]
    assert len(warnings) == 2 and all(re.search(FULL, line) for line in warnings), bigger.stderr
    assert snapshot(indexes) == before


@pytest.mark.slow
def test_a_full_disk_during_a_model_save_loses_nothing(tmp_path: Path, model_disk: SmallDisk, pascal_dataset: Path) -> None:
    dataset = copy_subset(tmp_path / "photos", {"cat": 4, "bus": 4, "boat": 4})
    store, model = tmp_path / "features", model_disk.folder / "joint.npz"
    assert cli("index", dataset, "--features", store).returncode == 0
    trained = model_disk.cli("train", "--features", store, "--model", model, "--method", "blend")
    assert trained.returncode == 0, trained.stderr
    before = snapshot(model.parent)
    assert set(before) == {"joint.npz", "joint.json"}
    model_disk.limit(4096)  # too little for the model file

    result = model_disk.cli("train", "--features", store, "--model", model, "--method", "hybrid", "--epochs", "2")
    assert result.returncode == 2, result.stderr
    error = error_line(result.stderr)
    assert error.startswith(f"error: cannot save {model}: ") and re.search(FULL, error), error
    assert snapshot(model.parent) == before
    assert JointModel.load(model).method == "blend"  # the previous model, whole and loadable
    tags = model_disk.cli("tag", sorted((dataset / "cat").iterdir())[0], "--features", store, "--model", model, "--json")
    assert tags.returncode == 0 and json_rows(tags.stdout)[0]["results"]


# --- queries while another process indexes ------------------------------------------------------------


@pytest.mark.slow
def test_searches_answer_while_another_process_indexes(tmp_path: Path, pascal_dataset: Path) -> None:
    """One long-lived engine (as the app keeps) queries in a loop while `vector-search index` adds
    photos in another process: every answer is the old state or the new one, never an error or a
    mix, and the new photos appear once the indexer is done, without restarting the engine."""
    dataset = copy_subset(tmp_path / "photos", {"cat": 4, "bus": 4, "boat": 4})
    store = tmp_path / "features"
    engine = Engine(store)
    engine.index(dataset)
    query = sorted((dataset / "cat").iterdir())[0]

    def answers() -> tuple[frozenset[str], frozenset[str]]:
        return (frozenset(r.item for r in engine.similar_images(str(query), 100)),
                frozenset(r.item for r in engine.search("cat", 100)))

    old = answers()
    assert len(old[0]) == 11 and len(old[1]) == 12
    copy_subset(dataset, {"dog": 6, "sofa": 6})  # 12 more: one batch, so no in-between checkpoint
    indexer = subprocess.Popen(cli_args("index", dataset, "--features", store), cwd=ROOT, env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    while True:
        running = indexer.poll() is None
        seen.append(answers())
        if not running:
            break
    out, err = indexer.communicate()
    assert indexer.returncode == 0 and summary(out)["added"] == 12, err
    new = seen[-1]  # asked after the indexer had finished
    assert len(new[0]) == 23 and len(new[1]) == 24 and new[0] > old[0]
    for kind in (0, 1):  # each answer whole: the old state or the new (the indexer may finish between two queries)
        assert {answer[kind] for answer in seen} <= {old[kind], new[kind]}, [len(answer[kind]) for answer in seen]
    assert len(seen) > 1  # it did answer while the other process was indexing


# --- the app behind a URL: a root folder, read-only --------------------------------------------------

APP = ROOT / "app.py"
APP_TIMEOUT = 600  # a full page loads TensorFlow (and the word index, once per machine)


def visit(monkeypatch: pytest.MonkeyPatch, root: Path, dataset: str | Path, features: str | Path, read_only: bool = False) -> AppTest:
    """The app as a visitor of a deployment meets it: VECTOR_SEARCH_ROOT set, default folders from the deployer."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("VECTOR_SEARCH_ROOT", str(root))
    monkeypatch.setenv("VECTOR_SEARCH_DATASET", str(dataset))
    monkeypatch.setenv("VECTOR_SEARCH_FEATURES", str(features))
    if read_only:
        monkeypatch.setenv("VECTOR_SEARCH_READONLY", "1")
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.fixture
def served(tmp_path: Path, pascal_dataset: Path) -> Path:
    """A deployment's root: real photos in root/photos, a store to come in root/features."""
    root = tmp_path / "root"
    copy_subset(root / "photos", {"cat": 3, "dog": 3, "bus": 3, "boat": 3})
    return root


def test_a_visitor_is_refused_every_folder_outside_the_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    served, outside = tmp_path / "root", tmp_path / "outside"  # a deployment's root, with the committed photos
    copy_subset(served / "photos", {"cat": 2, "cup": 2}, source=PHOTOS)
    copy_subset(outside, {"cat": 1}, source=PHOTOS)
    (served / "escape").symlink_to(outside, target_is_directory=True)  # inside by name, outside in fact
    (served / "photos" / "up").symlink_to("../..", target_is_directory=True)
    (served / "loop").symlink_to("loop")
    at = visit(monkeypatch, served, "/etc", served / "features")
    assert errors(at) == [f"the dataset folder must be under {served} on this server, not /etc"]
    refused = {
        "../": "may not contain `..`",
        str(served / "photos" / ".." / ".." / "outside"): "may not contain `..`",
        str(served / "escape"): f"not {served / 'escape'} (which leads to {outside})",
        "escape/cat": f"(which leads to {outside / 'cat'})",
        str(served / "photos" / "up"): f"(which leads to {tmp_path})",
        "loop/cat": "cannot be resolved",
    }
    for typed, why in refused.items():
        at.sidebar.text_input(key="dataset").set_value(typed).run()
        assert len(errors(at)) == 1 and why in errors(at)[0], (typed, errors(at))
        assert len(at.main.children) <= 2  # the error alone: nothing of the folder is shown or indexed
    at.sidebar.text_input(key="dataset").set_value(str(served / "photos"))
    at.sidebar.text_input(key="features").set_value(str(outside / "store")).run()
    assert errors(at) == [f"the feature store folder must be under {served} on this server, not {outside / 'store'}"]
    assert not (outside / "store").exists() and not (served / "features").exists()  # nothing written anywhere


@pytest.mark.slow
def test_a_visitor_is_served_inside_the_root(monkeypatch: pytest.MonkeyPatch, served: Path) -> None:
    (served / "link").symlink_to("photos", target_is_directory=True)  # a symlink that stays inside is fine
    at = visit(monkeypatch, served, "link", "features")  # relative: taken under the root
    assert errors(at) == []
    assert any(m.value == "12" for m in at.metric)
    assert (served / "features" / ENCODER / MANIFEST_FILE).is_file()  # indexed, under the root
    assert [c.key for c in at.checkbox if c.key in ("regenerate", "retrain")] == ["regenerate", "retrain"]


@pytest.mark.slow
def test_read_only_mode_shows_no_write_control_and_writes_nothing(monkeypatch: pytest.MonkeyPatch, served: Path) -> None:
    from test_app import grids, sections

    engine = Engine(served / "features")  # the deployer indexes beforehand (and warms the caches)
    engine.index(served / "photos")
    engine.search("cat", 3)
    engine.image_map()
    before = snapshot(served)

    at = visit(monkeypatch, served, served / "photos", served / "features", read_only=True)
    assert errors(at) == []
    keys = {w.key for kind in (at.checkbox, at.selectbox, at.multiselect, at.number_input) for w in kind}
    assert not keys & {"regenerate", "retrain", "method", "epochs", "holdout"}, keys
    assert "12 vectors of 1280 numbers" in "\n".join(m.value for m in at.markdown)
    query, plain, weighted = grids(sections(at)["3"])
    assert len(plain) == len(weighted) == 8  # image search answers
    with io.BytesIO() as upload:  # an upload as a query still works, decoded in memory
        Image.open(sorted((served / "photos" / "dog").iterdir())[0]).save(upload, format="PNG")
        at.file_uploader(key="search_upload").set_value(("my dog.png", upload.getvalue(), "image/png")).run()
    assert not at.exception and errors(at) == []
    query, plain, _ = grids(sections(at)["3"])
    assert query == ["query: your photo (my dog.png)"] and plain[0].startswith("dog · ")
    assert snapshot(served) == before  # nothing written: no store, index, model or upload
