"""Robustness, end to end on real photos, real weights and real GloVe: bad files in a dataset and
as queries, interrupted indexing (SIGKILL) and resuming, damaged or foreign store/index/cache
files, a folder that changes between runs, and files from disk that must never be unpickled.

The CLI runs as a subprocess (`python -m vector_search`), the way a user runs it. Root can read
any file, so the "unreadable file" cases run the CLI as root *without* the capabilities that
bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH dropped from the bounding set
before exec): a mode-000 file and a mode-000 folder are then genuinely unreadable to it.
"""

from __future__ import annotations

import ast
import ctypes
import io
import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CAT, GLOVE_SLICE, ROOT, copy_subset, need_pascal
from PIL import Image

from vector_search.engine import Engine
from vector_search.imaging.images import MAX_BYTES, ImageError, load_image
from vector_search.store import files as storefiles
from vector_search.store.files import MANIFEST_FILE
from vector_search.store.store import Store, StoreError
from vector_search.text.words import load_words

ENCODER = "efficientnet-lite0"
PACKAGE = ROOT / "vector_search"

# --- helpers ------------------------------------------------------------------------------------------

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_read_anything_capabilities() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTOR_SEARCH_")}
    env.update(PYTHONIOENCODING="utf-8", TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def cli_args(*args: str | os.PathLike) -> list[str | bytes]:
    return [sys.executable, "-m", "vector_search", *(os.fsencode(a) if isinstance(a, bytes) else str(a) for a in args)]


def cli(*args: str | os.PathLike, unprivileged: bool = False, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run `vector-search ARGS` in a fresh process from the project folder (shared weight cache)."""
    return subprocess.run(
        cli_args(*args),
        cwd=ROOT,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        preexec_fn=_drop_read_anything_capabilities if unprivileged else None,
    )


def json_rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def summary(stdout: str) -> dict[str, int]:
    """The counts of `index`'s summary line: added, changed, renamed, unchanged, removed, skipped."""
    line = next(line for line in stdout.splitlines() if line.startswith("added "))
    return {name: int(n) for n, name in (part.split(" ")[::-1] for part in line.split(", "))}


def skipped_lines(stdout: str) -> dict[str, str]:
    return dict(re.findall(r"^skipped (.+?): (.+)$", stdout, flags=re.M))


def photos(cls: str, n: int, start: int = 0) -> list[Path]:
    return sorted((need_pascal() / cls).iterdir())[start : start + n]


# --- 1. bad files in a dataset, and as queries ----------------------------------------------------------

NON_UTF8 = b"latin1-\xe9\xff.jpg"  # not valid UTF-8: a name as found on old disks and zip files

# Relative path -> what the reason must say (a regular expression, case ignored).
BAD = {
    "bad/empty.jpg": "not an image",
    "bad/truncated.jpg": "corrupt image",
    "bad/text.jpg": "not an image",
    "bad/bomb.png": "too large",
    "bad/unreadable.jpg": "permission denied",
    "bad/locked": "cannot read folder",  # a mode-000 folder holding a photo
    "bad/pipe.jpg": "named pipe",  # a FIFO: opening it for reading would block forever
    "bad/zero.jpg": "character device",  # -> /dev/zero: reading it would never end
    "bad/dangling.jpg": "no such file|not found",
    "bad/loop.jpg": "symbolic links",  # a symlink pointing at itself
}


def make_messy_dataset(root: Path) -> dict[str, Path]:
    """Good photos in awkward forms plus every kind of bad file; returns good rel path -> source photo."""
    good = root / "good"
    bad = root / "bad"
    good.mkdir(parents=True)
    bad.mkdir()
    sources: dict[str, Path] = {}

    def add(name: str | bytes, photo: Path, convert=None) -> None:
        target = os.path.join(os.fsencode(good), os.fsencode(name))
        if convert is None:
            shutil.copyfile(photo, target)
        else:
            convert(Image.open(photo)).save(os.fsdecode(target))
        sources[os.path.join("good", os.fsdecode(name))] = photo

    cats, buses, boats = photos("cat", 3), photos("bus", 3), photos("boat", 3)
    add(cats[0].name, cats[0])
    add(cats[1].name, cats[1])

    def alpha(im: Image.Image) -> Image.Image:
        rgba = np.asarray(im.convert("RGBA")).copy()
        rgba[:, : rgba.shape[1] // 2, 3] = 0  # left half fully transparent
        return Image.fromarray(rgba)

    add("alpha.png", buses[0], alpha)
    add("gray16.png", buses[1], lambda im: Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257))
    add("cmyk.jpg", buses[2], lambda im: im.convert("RGB").convert("CMYK"))
    add("one.png", boats[0], lambda im: im.convert("RGB").resize((1, 1)))
    add("with spaces  é ü.jpg", boats[1])
    add(NON_UTF8, boats[2])

    data = cats[2].read_bytes()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (bad / "text.jpg").write_text("hello, I am not a photo\n")
    Image.new("1", (20000, 20000)).save(bad / "bomb.png")  # 400 megapixels, 48 kB on disk
    (bad / "unreadable.jpg").write_bytes(data)
    os.chmod(bad / "unreadable.jpg", 0)
    (bad / "locked").mkdir()
    (bad / "locked" / "inside.jpg").write_bytes(data)
    os.chmod(bad / "locked", 0)
    os.mkfifo(bad / "pipe.jpg")
    os.symlink("/dev/zero", bad / "zero.jpg")
    os.symlink("missing.jpg", bad / "dangling.jpg")
    os.symlink("loop.jpg", bad / "loop.jpg")
    os.symlink("..", bad / "up")  # a folder symlink loop: never followed
    return sources


@pytest.mark.slow
def test_bad_files_in_dataset_and_as_queries(tmp_path: Path) -> None:
    dataset, store = tmp_path / "photos", tmp_path / "features"
    sources = make_messy_dataset(dataset)
    try:
        result = cli("index", dataset, "--features", store, unprivileged=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("`index` hung on a bad file (a named pipe or a device read as an image?)")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = summary(result.stdout)
    assert counts["added"] == len(sources) and counts["skipped"] == len(BAD), result.stdout
    reasons = skipped_lines(result.stdout)
    assert reasons.keys() == BAD.keys(), result.stdout
    for path, reason in BAD.items():
        assert re.search(reason, reasons[path], re.I), (path, reasons[path])

    indexed = Store.load(store / ENCODER)
    assert sorted(item.path for item in indexed.items) == sorted(sources)  # every good image, once
    assert np.isfinite(indexed.vectors).all() and (np.linalg.norm(indexed.vectors, axis=1) > 0).all()

    # The same files as queries: a clear error for each bad one, answers for the rest.
    outside = tmp_path / "not indexed ü" / "query é.png"  # odd name, not indexed: the model runs on it
    outside.parent.mkdir()
    Image.open(photos("cat", 1, start=10)[0]).save(outside)
    same_bytes = tmp_path / "same bytes as the non-UTF-8 one.jpg"
    shutil.copyfile(sources[os.path.join("good", os.fsdecode(NON_UTF8))], same_bytes)
    good_queries = [dataset / "good" / "alpha.png", dataset / "good" / "one.png", os.path.join(bytes(dataset), b"good", NON_UTF8), outside, same_bytes]
    bad_queries = {dataset / path: reason for path, reason in BAD.items() if path != "bad/locked"}
    bad_queries |= {
        dataset / "bad" / "locked" / "inside.jpg": "permission denied",
        dataset / "bad" / "nope.jpg": "not found",
        dataset / "bad": "folder",
    }
    queries = [*bad_queries, *good_queries]
    result = cli("similar", *queries, "-k", "3", "--json", "--features", store, unprivileged=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]  # some queries failed, the rest answered
    rows = json_rows(result.stdout)
    assert [os.fsencode(r["query"]) for r in rows] == [os.fsencode(q) for q in queries]
    for row, (query, reason) in zip(rows, bad_queries.items()):
        assert "results" not in row and re.search(reason, row["error"], re.I), (query, row)
    answered = {os.fsdecode(q): r["results"] for q, r in zip(good_queries, rows[len(bad_queries) :])}
    assert all(len(results) == 3 for results in answered.values()), answered
    all_paths = {os.path.join(str(dataset), p) for p in sources}
    assert all(r["item"] in all_paths for results in answered.values() for r in results)
    # The non-UTF-8 name round-trips: stored, printed as JSON, and mapped back to the same bytes on disk.
    nearest = answered[str(same_bytes)][0]
    assert os.fsencode(nearest["item"]) == os.path.join(bytes(dataset), b"good", NON_UTF8) and nearest["distance"] < 1e-5
    assert os.path.isfile(os.fsencode(nearest["item"]))
    # The outside photo is a cat: its nearest indexed photos include the two cats.
    assert {Path(r["item"]).name for r in answered[str(outside)][:3]} & {p.name for p in photos("cat", 2)}


def test_upload_size_and_pixel_limits_in_memory() -> None:
    """An upload is decoded from memory with the same limits as a file (app.py passes BytesIO)."""
    photo = CAT.read_bytes()
    assert load_image(io.BytesIO(photo)).mode == "RGB"
    huge = io.BytesIO(photo + b"\0" * (MAX_BYTES + 1 - len(photo)))  # a real JPEG padded past the limit
    with pytest.raises(ImageError, match="too large"):
        load_image(huge)
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")
    bomb.seek(0)
    with pytest.raises(ImageError, match="too large"):
        load_image(bomb)

    class Stream(io.RawIOBase):  # an unseekable upload stream
        def __init__(self, size: int) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            n = min(len(b), self.left, 1 << 20)
            b[:n] = b"\xff" * n
            self.left -= n
            return n

        def seekable(self) -> bool:
            return False

    with pytest.raises(ImageError, match="too large"):
        load_image(io.BufferedReader(Stream(MAX_BYTES + 10)))


# --- 2. interrupted indexing ------------------------------------------------------------------------------


class Run:
    """A `vector-search index` subprocess whose stderr (the progress bar) is collected as it comes."""

    def __init__(self, dataset: Path, store: Path) -> None:
        self.proc = subprocess.Popen(
            cli_args("index", dataset, "--features", store),
            cwd=ROOT,
            env=cli_env(VECTOR_SEARCH_CHECKPOINT_SECONDS="0"),  # checkpoint after every batch
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.err = b""
        self.embedding = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while chunk := self.proc.stderr.read1(4096):
            self.err += chunk
            if b"embedding" in self.err:
                self.embedding.set()
        self.embedding.set()  # ended

    def to_embed(self) -> int | None:
        """How many images this run set out to embed (the progress bar's total)."""
        found = re.search(rb"\| *\d+/(\d+) \[", self.err)
        return int(found.group(1)) if found else None


def mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def wait_for(condition, timeout: float = 300) -> None:
    """Poll `condition` every millisecond until it holds (or the timeout passes)."""
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.001)


def store_rows(store: Path) -> Store | None:
    """The store on disk, which must never be damaged, whatever moment the indexer was killed at."""
    if not (store / ENCODER / MANIFEST_FILE).exists():
        return None
    return Store.load(store / ENCODER, checkpoint=True)  # raises StoreError if a kill left it damaged


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path: Path) -> None:
    """Four kills in a row (starting up, mid-embedding, mid-save, after a checkpoint), then a resume.
    One function over 60 lines: each kill starts from the state the previous one left."""
    # All 1000 photos, 32 batches: enough that no kill below can land after the run has finished, even
    # on an idle machine (on ONNX Runtime it embeds ~100-150 photos/s: 400 photos were done by the second kill).
    dataset = copy_subset(tmp_path / "photos", {c: 50 for c in sorted(p.name for p in need_pascal().iterdir())})
    n = 1000
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    reference = cli("index", dataset, "--features", clean)
    assert reference.returncode == 0 and summary(reference.stdout)["added"] == n, reference.stderr[-2000:]

    seed = 0  # kill moments drawn from a fixed seed: every run tries the same moments
    rng = random.Random(seed)
    history = []  # (when killed, images to embed at start, images saved after the kill)
    saved = 0
    file = resumed / ENCODER / MANIFEST_FILE
    for attempt in range(4):
        run = Run(dataset, resumed)
        before = mtime(file)
        if attempt == 0:
            time.sleep(rng.uniform(0.5, 4.0))  # while starting up (imports, model load)
        elif attempt == 1:
            run.embedding.wait(timeout=300)  # once the first batch is embedded...
            time.sleep(rng.uniform(0.0, 1.0))  # ...at a random moment of the rest
        elif attempt == 2:  # while a checkpoint is being written (its item table or manifest is a temporary file)
            wait_for(lambda run=run, before=before: any(file.parent.glob(".*.tmp")) or mtime(file) != before or run.proc.poll() is not None)
        else:  # a random moment after a checkpoint has landed
            wait_for(lambda run=run, before=before: mtime(file) != before or run.proc.poll() is not None)
            time.sleep(rng.uniform(0.0, 0.2))  # before the next batch lands
        run.proc.send_signal(signal.SIGKILL)
        code = run.proc.wait(timeout=60)
        run.reader.join(timeout=10)
        run.proc.stdout.close()
        run.proc.stderr.close()
        store = store_rows(resumed)
        now = len(store) if store else 0
        history.append((attempt, code, run.to_embed(), now))
        context = f"seed {seed}, runs so far (attempt, exit code, to embed, saved after): {history}"
        assert code == -signal.SIGKILL, f"the run ended before it was killed (no checkpoint to wait for?): {context}"
        assert now >= saved, context  # a checkpoint is never lost
        if run.to_embed() is not None:
            assert run.to_embed() == n - saved, context  # only what was not saved yet is redone
        if store is not None:
            assert len({i.path for i in store.items}) == len(store), context
            assert np.isfinite(store.vectors).all(), context
        saved = now
    assert 0 < saved < n, f"seed {seed}: the kills left no partial checkpoint (is progress saved as it goes?): {history}"
    # A kill mid-save leaves the checkpoint's temporary file; once old, the next run removes it.
    leftovers = sorted((resumed / ENCODER).glob(".*.tmp")) if (resumed / ENCODER).exists() else []
    for tmp in leftovers:
        os.utime(tmp, (time.time() - 7200,) * 2)

    final = cli("index", dataset, "--features", resumed)
    assert final.returncode == 0, final.stderr[-2000:]
    counts = summary(final.stdout)
    context = f"seed {seed}, runs {history}, final {counts}, leftover temp files {[p.name for p in leftovers]}"
    print(context)
    assert not any(p.exists() for p in leftovers), context
    assert counts["added"] == n - saved and counts["unchanged"] == saved and counts["skipped"] == 0, context

    want, got = Store.load(clean / ENCODER), Store.load(resumed / ENCODER)
    assert [i.path for i in got.items] == [i.path for i in want.items], context  # every photo, once
    assert [i.sha256 for i in got.items] == [i.sha256 for i in want.items]
    np.testing.assert_allclose(got.vectors, want.vectors, atol=1e-5, err_msg=context)

    # The saved index is consistent with the store: it loads as is (no rebuild) and answers as the clean one.
    ann = resumed / ENCODER / "images.ann"
    ann_written = ann.stat().st_mtime_ns
    queries = [got.paths[i] for i in range(0, n, 40)]
    answers = [json_rows(cli("similar", *queries, "-k", "5", "--json", "--features", s).stdout) for s in (clean, resumed)]
    assert ann.stat().st_mtime_ns == ann_written, "the index written by the resumed run was not usable"
    for a, b in zip(*answers):
        assert [r["item"] for r in a["results"]] == [r["item"] for r in b["results"]], context
        np.testing.assert_allclose([r["distance"] for r in a["results"]], [r["distance"] for r in b["results"]], atol=1e-5)


# --- damaged or foreign files are detected and rebuilt, never silently used --------------------------------


def rewrite_manifest(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def store_snapshot(folder: Path) -> dict[str, bytes]:
    """The manifest and the files it names (derived arrays and indexes aside)."""
    names = [MANIFEST_FILE, *storefiles.store_files(folder)]
    return {name: (folder / name).read_bytes() for name in names}


def restore(folder: Path, snapshot: dict[str, bytes]) -> None:
    for name in storefiles.store_files(folder):
        (folder / name).unlink()
    for name, data in snapshot.items():
        (folder / name).write_bytes(data)


class Exploit:
    """A pickle that, if ever loaded, creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def pickled_deletions(file: Path, marker: Path) -> None:
    """A deleted-rows file that holds a pickle, named by the manifest."""
    manifest = json.loads(file.read_text())
    name = storefiles.deleted_name(manifest["generation"], manifest["commit"])
    np.save(file.parent / name, np.array([Exploit(marker)] * 2, dtype=object), allow_pickle=True)
    rewrite_manifest(file, deleted=name)


@pytest.mark.slow
def test_damaged_or_foreign_store_is_rebuilt(small_dataset: Path, tmp_path: Path) -> None:
    dataset, store = small_dataset, tmp_path / "features"
    indexer = Engine(store)  # one engine re-indexes after each damage: the model loads once
    _ = indexer.encoder  # loaded once, before the first index
    indexer.index(dataset)
    file = store / ENCODER / MANIFEST_FILE
    good = store_snapshot(file.parent)
    query = str(sorted((dataset / "cat").iterdir())[0])
    before = [r.item for r in Engine(store).similar_images(query, 5)]

    marker = tmp_path / "owned"
    manifest = json.loads(good[MANIFEST_FILE])
    vectors, (table, _) = file.parent / storefiles.vectors_name(manifest["generation"]), manifest["tables"][0]
    damage = {
        "another version": lambda: rewrite_manifest(file, version=manifest["version"] + 1),
        "truncated": lambda: file.write_bytes(good[MANIFEST_FILE][: len(good[MANIFEST_FILE]) // 2]),
        "not JSON": lambda: file.write_bytes(b"\x93NUMPY garbage" * 100),
        "pickled arrays": lambda: pickled_deletions(file, marker),
        "rows disagree": lambda: rewrite_manifest(file, rows=13),
        "short vector file": lambda: os.truncate(vectors, 11 * 1280 * 4),
        "vector file gone": lambda: vectors.unlink(),
        "damaged item table": lambda: (file.parent / table).write_bytes(b"PAR1 garbage" * 100),
    }
    for what, spoil in damage.items():
        restore(file.parent, good)
        spoil()
        with pytest.raises(StoreError):
            Store.load(file.parent)
        with pytest.raises(StoreError, match="feature store"):  # queries refuse it, never answer from it
            Engine(store).similar_images(query, 3)
        report = indexer.index(dataset)  # ...and indexing says so and rebuilds it from the photos
        assert any("rebuilding" in note for note in report.notes) and len(report.added) == 12, (what, report)
        assert len(Store.load(file.parent)) == 12
        assert not marker.exists(), f"{what}: a pickle from disk was executed"
        assert [r.item for r in Engine(store).similar_images(query, 5)] == before, what

    # The same through the command line, in fresh processes.
    rewrite_manifest(file, version=manifest["version"] + 1)
    result = cli("similar", query, "--json", "--features", store)
    (row,) = json_rows(result.stdout)
    assert result.returncode == 1 and "has format" in row.get("error", ""), row
    result = cli("index", dataset, "--features", store)
    assert result.returncode == 0 and "rebuilding" in result.stdout and summary(result.stdout)["added"] == 12, result.stdout
    assert [r["item"] for r in json_rows(cli("similar", query, "-k", "5", "--json", "--features", store).stdout)[0]["results"]] == before


@pytest.mark.slow
def test_damaged_or_foreign_image_index_is_rebuilt(small_dataset: Path, tmp_path: Path) -> None:
    dataset, store = small_dataset, tmp_path / "features"
    indexer = Engine(store)
    indexer.index(dataset)
    ann, sidecar = store / ENCODER / "images.ann", store / ENCODER / "images.ann.json"
    good_ann, good_meta = ann.read_bytes(), json.loads(sidecar.read_text())
    queries = [str(p) for p in sorted((dataset / "bus").iterdir())[:2]]
    want = [Engine(store).similar_images(q, 5) for q in queries]

    # Another store's index, sidecar and all: a valid file, but of other vectors.
    other = tmp_path / "other_features"
    Engine(other).index(copy_subset(tmp_path / "other", {"dog": 6, "bird": 6}))
    other_ann, other_meta = (other / ENCODER / "images.ann").read_bytes(), (other / ENCODER / "images.ann.json").read_bytes()

    damage = {
        "truncated": lambda: ann.write_bytes(good_ann[: len(good_ann) // 2]),
        "missing": lambda: ann.unlink(),
        "empty": lambda: ann.write_bytes(b""),
        "sidecar of another version": lambda: sidecar.write_text(json.dumps(dict(good_meta, version=good_meta["version"] + 1))),
        "sidecar missing": lambda: sidecar.unlink(),
        "sidecar not JSON": lambda: sidecar.write_text('{"format": '),
        "from another store": lambda: (ann.write_bytes(other_ann), sidecar.write_bytes(other_meta)),
        "size lies": lambda: sidecar.write_text(json.dumps(dict(good_meta, file_size=good_meta["file_size"] * 2))),
    }
    for what, spoil in damage.items():
        ann.write_bytes(good_ann)
        sidecar.write_text(json.dumps(good_meta))
        spoil()
        fresh = Engine(store)  # as a new process would
        got = [fresh.similar_images(q, 5) for q in queries]
        assert [[r.item for r in g] for g in got] == [[r.item for r in w] for w in want], what
        np.testing.assert_allclose([[r.distance for r in g] for g in got], [[r.distance for r in w] for w in want], atol=1e-5)
        assert ann.stat().st_size == len(good_ann), f"{what}: index not rebuilt"
        assert json.loads(sidecar.read_text()) == good_meta, f"{what}: sidecar not rewritten"


def small_glove(path: Path) -> tuple[Path, list[str], np.ndarray]:
    """A copy of the committed GloVe slice (tests/fixtures: 1031 real GloVe 6B 50-d words), its words and vectors."""
    shutil.copy(GLOVE_SLICE, path)
    rows = [line.split(" ") for line in path.read_text(encoding="utf-8").splitlines()]
    return path, [r[0] for r in rows], np.array([r[1:] for r in rows], np.float32)


@pytest.mark.slow
def test_damaged_or_foreign_word_cache_is_rebuilt(tmp_path: Path) -> None:
    text, words, vectors = small_glove(tmp_path / "glove.small.txt")
    cache = tmp_path / "cache"
    first = load_words(text, cache_dir=cache)
    first.index("hnsw")
    probe = words[700]  # a frequent word, in the small vocabulary
    want_similar = first.similar_words(probe, 5)
    files = {p.name: p.read_bytes() for p in cache.iterdir() if not p.name.startswith(".")}
    assert {"vectors.npy", "words.txt", "meta.json", "index.hnsw", "index.hnsw.json"} <= files.keys()
    meta = json.loads(files["meta.json"])
    marker = tmp_path / "owned"

    def pickled_npy(path: Path) -> None:
        with open(path, "wb") as f:
            np.save(f, np.array([Exploit(marker)] * 3, dtype=object), allow_pickle=True)

    damage = {
        "vectors.npy truncated": lambda: (cache / "vectors.npy").write_bytes(files["vectors.npy"][:-4000]),
        "vectors.npy pickled": lambda: pickled_npy(cache / "vectors.npy"),
        "vectors.npy other rows": lambda: (cache / "vectors.npy").write_bytes(
            files["vectors.npy"][:128] + files["vectors.npy"][128 + 200 :] + files["vectors.npy"][128 : 128 + 200]
        ),
        "words.txt changed": lambda: (cache / "words.txt").write_bytes(files["words.txt"].replace(b"\ncat\n", b"\ndog\n", 1)),
        "words.txt missing": lambda: (cache / "words.txt").unlink(),
        "meta.json of another version": lambda: (cache / "meta.json").write_text(json.dumps(dict(meta, version=meta["version"] + 1))),
        "meta.json truncated": lambda: (cache / "meta.json").write_bytes(files["meta.json"][:20]),
        "index.hnsw truncated": lambda: (cache / "index.hnsw").write_bytes(files["index.hnsw"][: len(files["index.hnsw"]) // 3]),
        "index sidecar of another version": lambda: (cache / "index.hnsw.json").write_text(
            json.dumps(dict(json.loads(files["index.hnsw.json"]), version=99))
        ),
        "index.hnsw of other words": lambda: (cache / "index.hnsw.json").write_text(
            json.dumps(dict(json.loads(files["index.hnsw.json"]), fingerprint="0" * 32))
        ),
    }
    for what, spoil in damage.items():
        for name, data in files.items():
            (cache / name).write_bytes(data)
        spoil()
        loaded = load_words(text, cache_dir=cache)
        assert loaded.words == words, what
        np.testing.assert_array_equal(loaded.vectors, vectors, err_msg=what)
        got = loaded.similar_words(probe, 5)
        assert [w for w, _ in got] == [w for w, _ in want_similar], what
        assert not marker.exists(), f"{what}: a pickle from disk was executed"
        for name in ("vectors.npy", "words.txt"):
            assert (cache / name).read_bytes() == files[name], f"{what}: {name} not rebuilt"
        assert (cache / "index.hnsw").stat().st_size == len(files["index.hnsw"]), f"{what}: index not rebuilt"


# --- 3. the folder changes between runs ----------------------------------------------------------------------


def all_similar(store: Path, queries: list[str], k: int) -> dict[str, list[str]]:
    result = cli("similar", *queries, "-k", str(k), "--json", "--features", store)
    return {r["query"]: [x["item"] for x in r.get("results", [])] or r.get("error") for r in json_rows(result.stdout)}


@pytest.mark.slow
def test_folder_changes_between_runs_cli(small_dataset: Path, tmp_path: Path) -> None:
    store = tmp_path / "features"
    assert summary(cli("index", small_dataset, "--features", store).stdout)["added"] == 12
    cats, buses, boats = (sorted((small_dataset / c).iterdir()) for c in ("cat", "bus", "boat"))
    deleted, renamed_from, modified = cats[0], boats[0], buses[0]
    renamed_to = small_dataset / "boat" / "renamed photo é.jpg"
    old_vector = Store.load(store / ENCODER).vectors[Store.load(store / ENCODER).find(modified)]

    deleted.unlink()
    renamed_from.rename(renamed_to)
    shutil.copyfile(photos("dog", 1)[0], modified)  # same name, new content (a dog)
    (small_dataset / "dog").mkdir()
    added = small_dataset / "dog" / "new.jpg"
    shutil.copyfile(photos("dog", 1)[0], added)  # the same dog: both are embedded, to the same vector

    result = cli("index", small_dataset, "--features", store)
    counts = summary(result.stdout)
    assert counts == {"added": 1, "changed": 1, "renamed": 1, "unchanged": 9, "removed": 1, "skipped": 0}, result.stdout
    now = sorted(str(p) for p in small_dataset.rglob("*.jpg"))
    # Ask for every indexed photo from every photo: what comes back is the folder as it is now.
    answers = all_similar(store, now + [str(deleted)], k=20)
    for query in now:
        assert sorted(answers[query] + [query]) == now, query
    assert "not found" in answers[str(deleted)]
    # The modified photo was re-embedded: its nearest neighbour is now the same dog, added.
    assert answers[str(modified)][0] == str(added)
    got = Store.load(store / ENCODER)
    assert not np.allclose(got.vectors[got.find(modified)], old_vector)
    # Nothing changed: nothing embedded, the index is reused as is.
    ann = store / ENCODER / "images.ann"
    mtime = ann.stat().st_mtime_ns
    result = cli("index", small_dataset, "--features", store)
    assert summary(result.stdout) == {"added": 0, "changed": 0, "renamed": 0, "unchanged": 12, "removed": 0, "skipped": 0}
    assert ann.stat().st_mtime_ns == mtime and "embedding" not in result.stderr


@pytest.mark.slow
def test_folder_changes_seen_by_a_long_lived_engine(small_dataset: Path, tmp_path: Path) -> None:
    """One Engine (as the app keeps one) re-indexing after each change answers from the folder as it
    is: similar images and text search, with only new or modified photos embedded."""
    engine = Engine(tmp_path / "features", model_path=tmp_path / "joint.npz")
    engine.index(small_dataset)
    engine.train()
    cats = sorted((small_dataset / "cat").iterdir())
    renamed, added = small_dataset / "cat" / "renamed é.jpg", small_dataset / "dog" / "new dog.jpg"

    def add() -> None:
        added.parent.mkdir()
        shutil.copyfile(photos("dog", 1)[0], added)

    changes = [
        ("delete", lambda: cats[0].unlink(), 0),
        ("add", add, 1),
        ("rename", lambda: cats[1].rename(renamed), 0),
        ("modify", lambda: shutil.copyfile(photos("dog", 1, start=1)[0], cats[2]), 1),  # now a dog
    ]
    for what, change, embedded in changes:
        change()
        report = engine.index(small_dataset)
        assert report.embedded == embedded, (what, report)
        now = sorted(str(p) for p in small_dataset.rglob("*.jpg"))
        first = engine.store.paths[0]
        assert sorted([first] + [r.item for r in engine.similar_images(first, 50)]) == now, what
        assert sorted(r.item for r in engine.search("cat", 50)) == now, what
    for gone in (cats[0], cats[1]):
        with pytest.raises(ImageError, match="not found"):
            engine.similar_images(str(gone), 3)
    stored, position = engine.image_vector(str(cats[2]))  # the modified photo: its new content's vector
    assert position is not None
    np.testing.assert_allclose(stored, engine.image_vector(io.BytesIO(cats[2].read_bytes()))[0], atol=1e-4)
    assert engine.similar_images(str(renamed), 3)  # the renamed photo answers under its new name


@pytest.mark.slow
def test_engine_never_answers_from_stale_files(small_dataset: Path, tmp_path: Path) -> None:
    store = tmp_path / "features"
    Engine(store).index(small_dataset)
    cats = sorted((small_dataset / "cat").iterdir())
    shutil.copyfile(photos("dog", 1)[0], cats[0])  # modified, not indexed again
    cats[1].unlink()  # deleted, not indexed again
    engine = Engine(store)
    vector, position = engine.image_vector(str(cats[0]))
    current, _ = engine.image_vector(io.BytesIO(cats[0].read_bytes()))
    problems = []
    if not np.allclose(vector, current, atol=1e-4):
        problems.append("a modified photo is answered from its stale vector")
    if any(r.item == str(cats[1]) for r in engine.similar_images(str(cats[2]), 50)):
        problems.append("a deleted photo comes back in similar_images")
    assert problems == []


# --- 4. nothing from disk is unpickled; uploads are decoded in memory ------------------------------------------


def package_sources() -> dict[Path, ast.Module]:
    files = sorted(PACKAGE.rglob("*.py")) + [ROOT / "app.py"]
    return {f: ast.parse(f.read_text(encoding="utf-8"), str(f)) for f in files}


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return ""


def test_no_pickle_from_disk_in_the_source() -> None:
    problems = []
    forbidden = {"pickle.load", "pickle.loads", "torch.load", "joblib.load", "dill.load", "dill.loads", "marshal.load",
                 "marshal.loads", "shelve.open", "pandas.read_pickle", "pd.read_pickle", "yaml.load", "yaml.unsafe_load"}
    legacy = PACKAGE / "imaging" / "encoders" / "torch_legacy.py"
    for file, tree in package_sources().items():
        text = file.read_text(encoding="utf-8")
        rel = file.relative_to(ROOT)
        for pattern in ("allow_pickle=True", "pickle.load", "torch.load", "safe_mode=False"):
            if pattern in text:
                problems.append(f"{rel}: contains {pattern}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = dotted(node.func)
                keywords = {k.arg: k.value for k in node.keywords}
                if name in forbidden:
                    problems.append(f"{rel}:{node.lineno}: calls {name}")
                if name.endswith("np.load") or name.endswith("numpy.load"):
                    flag = keywords.get("allow_pickle")
                    if not (isinstance(flag, ast.Constant) and flag.value is False):
                        problems.append(f"{rel}:{node.lineno}: np.load without allow_pickle=False")
                if name.endswith("load_model"):
                    flag = keywords.get("safe_mode")
                    if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is True):
                        problems.append(f"{rel}:{node.lineno}: load_model without safe mode")
                if name in ("pickle.Unpickler", "pickle._Unpickler") :
                    problems.append(f"{rel}:{node.lineno}: instantiates an unrestricted Unpickler")
            if isinstance(node, ast.ClassDef) and any(dotted(b).endswith("Unpickler") for b in node.bases):
                methods = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
                if file != legacy or "find_class" not in methods:
                    problems.append(f"{rel}:{node.lineno}: Unpickler subclass outside torch_legacy or without find_class")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                if any(n.split(".")[0] in ("dill", "joblib", "cloudpickle", "shelve", "torch") for n in names):
                    problems.append(f"{rel}:{node.lineno}: imports {names}")
    assert problems == [], "\n".join(problems)


def test_restricted_unpickler_refuses_a_malicious_state_dict(tmp_path: Path) -> None:
    """The one pickle reader (torch legacy .pth) refuses globals it does not know, wherever they hide."""
    from vector_search.imaging.encoders.torch_legacy import MAGIC, PROTOCOL, load_state_dict

    marker = tmp_path / "owned"
    for position in range(4):  # a malicious object in place of each pickle the reader loads
        parts: list[object] = [MAGIC, PROTOCOL, {"little_endian": True}, {}]
        parts[position] = Exploit(marker)
        evil = tmp_path / f"evil{position}.pth"
        evil.write_bytes(b"".join(pickle.dumps(o, protocol=2) for o in parts))
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            load_state_dict(evil)
        assert not marker.exists()


def test_joint_model_file_is_never_unpickled(tmp_path: Path) -> None:
    """A joint model file holding a pickle (with a sidecar that vouches for it) is refused."""
    from vector_search.joint import model as joint

    marker = tmp_path / "owned"
    path = tmp_path / "joint.npz"
    with open(path, "wb") as f:
        np.savez(f, W=np.array([Exploit(marker)], dtype=object))
    meta = {"format": joint.FORMAT, "format_version": joint.FORMAT_VERSION, "weights_sha256": joint._sha256(path)}
    joint.sidecar(path).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="allow_pickle"):
        joint.JointModel.load(path)
    assert not marker.exists()
