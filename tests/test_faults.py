"""Fault injection: every kind of file a feature store, a joint model and the caches hold is damaged
(truncated, emptied, bytes flipped, a row of NaN, deleted), then each command that reads it runs
as a user runs it (a fresh `vector-search` process). It must end without a crash or a traceback,
and either answer as before or name the damaged file in one line saying what to run; after
running that, it answers as before again. Then SIGKILL at every rename of `train` and of an
`index` that compacts. docs/reliability.md lists the file kinds and what happens to each.

One indexed store of 12 real photos, a ConSE model, the caches and the right answers are made once
per module (in subprocesses) and copied for each case.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from conftest import GLOVE_SLICE, copy_subset
from test_robustness import ROOT, cli, cli_env

from vector_search.search import index as nn
from vector_search.store import files as storefiles
from vector_search.store.store import Item, Store, StoreError
from vector_search.text.sentence_encoder import SentenceEncoder

ENCODER = "efficientnet-lite0"
GLOVE = "words/glove.6B.50d"

# --- the module's indexed store, model and caches ----------------------------------------------------


# Runs sessions, each a list of commands (argv) under its own environment (config reads it at every
# call), one after the other in ONE fresh process, each command as `vector-search` runs it
# (cli.main: a fresh engine, its own output); a line of JSON per session as it ends. A process
# per command took over an hour on the loaded 2-core machine. ["map"] asks for the app's map.
DRIVER = r"""
import io, json, logging, os, sys, traceback
from vector_search import cli
for line in sys.stdin:
    session, done = json.loads(line), []
    os.environ.update(session["env"])
    if "vector_search.text.sentence_encoder" in sys.modules:  # its texts' vectors are read once per process
        sys.modules["vector_search.text.sentence_encoder"]._shared.cache_clear()
    for argv in session["argvs"]:
        out, err = (io.TextIOWrapper(io.BytesIO(), "utf-8") for _ in range(2))
        sys.stdout, sys.stderr = out, err
        logging.getLogger().handlers.clear()
        try:
            if argv == ["map"]:
                from vector_search.engine import Engine
                import numpy as np
                points = np.round(np.asarray(Engine().image_map().points, float), 3).tolist()
                print(json.dumps({"query": "map", "results": [{"item": str(p), "distance": 0} for p in points]}))
                code = 0
            else:
                code = cli.main(argv)
        except SystemExit as stop:
            code = stop.code
        except cli.VectorSearchError as e:
            print(f"error: {e}", file=sys.stderr)
            code = 2
        except BaseException:
            traceback.print_exc()
            code = -1
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        out.flush(), err.flush()
        done.append({"code": code, "stdout": out.buffer.getvalue().decode(), "stderr": err.buffer.getvalue().decode()})
    print(json.dumps(done), flush=True)
"""

Answer = tuple[list | None, str, int]  # hits (None if it failed), what it said, exit code


def run_sessions(sessions: list[tuple[Setup, list[list[str]]]]) -> list[list[Answer]]:
    """Each session's answers; a session that kills the process (a crash) is said as such, and the
    rest run in a new process."""
    results: list[list[Answer]] = []
    while len(results) < len(sessions):
        todo = sessions[len(results):]
        lines = "".join(json.dumps({"env": setup.env(), "argvs": argvs}) + "\n" for setup, argvs in todo)
        proc = subprocess.run([sys.executable, "-c", DRIVER], input=lines, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=3600)
        for (setup, _), line in zip(todo, proc.stdout.splitlines()):
            results.append([setup.parse(step) for step in json.loads(line)])
        if proc.returncode != 0 and len(results) < len(sessions):
            setup, argvs = sessions[len(results)]
            results.append([(None, f"CRASH (exit {proc.returncode}): {proc.stderr[-3000:]}", proc.returncode)] * len(argvs))
    return results


class Setup:
    """A copy of the base folders (photos, features, models, cache) and how to run commands on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.photos, self.features, self.models, self.cache = (root / n for n in ("photos", "features", "models", "cache"))

    @property
    def query(self) -> str:
        return str(sorted((self.photos / "bus").iterdir())[0])

    @property
    def new_photo(self) -> str:
        """A photo that is not indexed: asking for it runs the encoder (its ONNX export)."""
        return str(sorted((self.root / "new").iterdir())[0])

    def env(self) -> dict[str, str]:
        return {"VECTOR_SEARCH_FEATURES": str(self.features), "VECTOR_SEARCH_MODELS": str(self.models), "VECTOR_SEARCH_CACHE": str(self.cache)}

    def run(self, *args: str, **env: str):
        return cli(*args, **self.env(), **env)

    def argv(self, command: str) -> list[str]:
        return {
            "similar": ["similar", self.query, "-k", "5", "--json"],
            "similar-new": ["similar", self.new_photo, "-k", "5", "--json"],
            "search": ["search", "bus", "-k", "5", "--json"],
            "tag": ["tag", self.query, "--json"],
            "words": ["words", "bus", "-k", "5", "--json"],
            "words-index": ["words", "--glove", str(GLOVE_SLICE), "--queries-file", str(self.root / "words.txt"), "-k", "5", "--json"],
            "map": ["map"],
        }[command]

    def parse(self, step: dict) -> Answer:
        rows = [json.loads(line) for line in step["stdout"].splitlines() if line.startswith("{")]
        errors = "".join(f"{r['error']}\n" for r in rows if "error" in r)
        hits = [[(h["item"].removeprefix(f"{self.photos}/"), round(h["distance"], 3)) for h in r["results"]] for r in rows if "results" in r]
        return (hits if hits and not errors and step["code"] == 0 else None), step["stderr"] + errors, step["code"]

    def answer(self, command: str) -> Answer:
        return run_sessions([(self, [self.argv(command)])])[0][0]


COMMANDS = ("similar", "similar-new", "search", "tag", "words", "words-index", "map")


# Variants of the base store, each made from it once (when a selected case needs it), for the files
# only they hold: "deleted" keeps a deletion mark (as a store too big to compact at every update
# does: updates.COMPACT_BELOW_BYTES), "ivf" has the IVF indexes of a store above spaces.ANNOY_MAX
# rows (its recorded kind), "hnsw" and "exact" the other image index kinds, "sentence" no trained
# model (the sentence space of the untrained default: the sentence-vector cache).
KEEP_DELETION_MARKS = """
import sys
from vector_search import cli
from vector_search.store import updates
updates.COMPACT_BELOW_BYTES = 0  # as a store above it: the mark is kept (10% of rows must go first)
sys.exit(cli.main(sys.argv[1:]))
"""


def make_variant(name: str, setup: Setup) -> tuple[list[str], Setup]:
    """Turn `setup` (a copy of the base) into variant `name`; the commands whose answers it checks,
    and where the right answers are read."""
    if name == "deleted":
        sorted((setup.photos / "bus").iterdir())[-1].unlink()  # a bus: it was among the answers
        out = subprocess.run([sys.executable, "-c", KEEP_DELETION_MARKS, "index", str(setup.photos)], cwd=ROOT,
                             env=cli_env(**setup.env()), capture_output=True, text=True, timeout=1800)
        assert out.returncode == 0 and list((setup.features / ENCODER).glob("deleted-*.npy")), out.stderr
        # The right answers: the folder's own store, compacted, as `index` leaves it after a rebuild
        # (the mark's store centres its space on every row, the deleted one too: distances differ by ~0.005).
        compacted = copy_case(setup, setup.root.parent / "deleted-compacted")
        out = compacted.run("index", str(compacted.photos))
        assert out.returncode == 0 and not list((compacted.features / ENCODER).glob("deleted-*.npy")), out.stderr
        return ["similar", "search"], compacted
    if name in ("ivf", "hnsw", "exact"):
        out = setup.run("index", str(setup.photos), "--index", name)
        assert out.returncode == 0, out.stderr
        return ["similar", "search"], setup
    if name == "sentence":
        for model in setup.models.glob("joint-*"):
            model.unlink()
        return ["search", "tag"], setup
    raise AssertionError(name)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path, request: pytest.FixtureRequest) -> dict[str, tuple[Setup, dict]]:
    """The base ("main") and each variant the selected cases need: its folders and right answers."""
    setup = Setup(tmp_path_factory.mktemp("faults"))
    copy_subset(setup.photos, {"cat": 4, "bus": 4, "boat": 4})
    shutil.copy2(sorted((pascal_dataset / "dog").iterdir())[0], (setup.root / "new").mkdir() or setup.root / "new")
    words = [w for w in (line.split(" ", 1)[0] for line in GLOVE_SLICE.read_text(encoding="utf-8").splitlines()) if w.isalpha()]
    (setup.root / "words.txt").write_text("\n".join(words[100:130]) + "\n")  # 30 queries: the saved word index answers them
    for args in (("index", str(setup.photos)), ("train", "--method", "conse")):
        out = setup.run(*args)
        assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, "-c", f"from vector_search.text.words import load_words; load_words({str(GLOVE_SLICE)!r}).index()"],
                         cwd=ROOT, env=cli_env(**setup.env()), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr  # the word index of the slice's cache, as `serve` builds it
    wanted = {"main"} | {param.values[0] for param in selected(request)}
    setups, commands, right = {"main": setup}, {"main": list(COMMANDS)}, {"main": setup}
    for name in sorted(wanted - {"main"}):
        setups[name] = copy_case(setup, setup.root.parent / name)
        commands[name], right[name] = make_variant(name, setups[name])
    out = {}
    for name, session in zip(setups, run_sessions([(right[n], [right[n].argv(c) for c in commands[n]]) for n in setups])):
        answers = {}
        for command, (got, said, _) in zip(commands[name], session):
            assert got is not None, f"{name} {command}: {said}"
            answers[command] = got
        out[name] = (setups[name], answers)
    return out


def unshare(path: Path) -> None:
    """`path` made a file of its own (damage writes in place), with the same bytes and times."""
    tmp = path.with_name(f"{path.name}.unshared")
    shutil.copy2(path, tmp)
    os.replace(tmp, path)


def copy_case(setup: Setup, to: Path) -> Setup:
    """A private copy of the base folders, its store indexing its own photos."""

    def link_cache_files(source: str, target: str) -> None:
        # Cache files are hard-linked (130 MB a case otherwise): every save replaces a file by a rename,
        # never writes it in place, so no case changes another's. The file a case damages is unshared first.
        if Path(source).relative_to(setup.root).parts[0] == "cache":
            os.link(source, target)
        else:
            shutil.copy2(source, target)

    shutil.copytree(setup.root, to, symlinks=True, copy_function=link_cache_files)
    copy = Setup(to)
    manifest = copy.features / ENCODER / "store.json"
    manifest.write_text(json.dumps(dict(json.loads(manifest.read_text()), dataset=str(copy.photos))))
    return copy


@pytest.fixture
def case(base: dict[str, tuple[Setup, dict]], tmp_path: Path) -> tuple[Setup, dict]:
    setup, answers = base["main"]
    return copy_case(setup, tmp_path / "case"), answers


# --- damage -------------------------------------------------------------------------------------------


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def flip(path: Path) -> None:
    """64 bytes in the middle inverted (in place, as a failing disk or a stray write would)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def nan_row(path: Path) -> None:
    """The first row of float32 vectors made NaN (after a .npy header, if any; in an .npz, of its
    float arrays, the file still a valid zip)."""
    if path.suffix == ".npz":
        with np.load(path) as saved:
            arrays = {k: saved[k] for k in saved.files}
        for array in arrays.values():
            if array.dtype == np.float32:
                array[0] = np.nan
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return
    data = bytearray(path.read_bytes())
    start = 0
    if path.suffix == ".npy":
        start = data.index(b"\n") + 1  # the header ends with a newline
    data[start : start + 16] = np.full(4, np.nan, np.float32).tobytes()
    path.write_bytes(bytes(data))


def delete(path: Path) -> None:
    path.unlink()


def other_rows(path: Path) -> None:
    """Row ids moved by one (a valid file saying other rows: a deleted photo shown, another hidden)."""
    ids = np.load(path)
    with open(path, "wb") as f:
        np.save(f, np.where(ids > 0, ids - 1, ids + 1))


DAMAGE: dict[str, Callable[[Path], None]] = {"truncate": truncate, "empty": empty, "flip": flip, "nan": nan_row, "delete": delete,
                                             "other": other_rows}

# (variant, file relative to the case root: a glob; damages that apply; the commands that read it).
# A glob matching several files (the sentence-vector cache holds one a batch of texts) damages the smallest.
STORE = f"features/{ENCODER}"
ARRAYS = ("truncate", "empty", "flip", "nan", "delete")
FILES = ("truncate", "empty", "flip", "delete")
WORDS = "cache/words/glove.slice.50d"  # the cache of `words --glove GLOVE_SLICE`, with its saved index
KINDS = [
    ("main", f"{STORE}/store.json", FILES, ("similar",)),
    ("main", f"{STORE}/vectors-*.f32", ARRAYS, ("tag", "similar")),
    ("main", f"{STORE}/items-*.parquet", FILES, ("similar",)),
    ("main", f"{STORE}/images.ann", FILES, ("similar",)),
    ("main", f"{STORE}/images.ann.json", FILES, ("similar",)),
    ("main", f"{STORE}/images.scores.npy", ARRAYS, ("similar",)),  # the image scores' calibration
    ("main", f"{STORE}/images.scores.json", FILES, ("similar",)),
    ("main", f"{STORE}/joint-MODEL.npy", ARRAYS, ("search",)),  # MODEL: the model's hash (spaces.joint_name)
    ("main", f"{STORE}/joint-MODEL.json", FILES, ("search",)),
    ("main", f"{STORE}/joint-MODEL.ann", FILES, ("search",)),
    ("main", f"{STORE}/joint-MODEL.ann.json", FILES, ("search",)),
    ("main", f"{STORE}/joint-MODEL.scores.npy", ARRAYS, ("search",)),  # the text scores' calibration
    ("main", f"{STORE}/joint-MODEL.scores.json", FILES, ("search",)),
    ("main", f"{STORE}/map.npy", ARRAYS, ("map",)),
    ("main", f"{STORE}/map.json", FILES, ("map",)),
    ("main", f"models/joint-{ENCODER}.npz", FILES, ("tag",)),
    ("main", f"models/joint-{ENCODER}.json", FILES, ("tag",)),
    ("main", "cache/encoders/*.npz", FILES, ("tag", "similar-new")),
    ("main", "cache/encoders/*.npz.crc32", FILES, ("tag",)),
    ("main", "cache/encoders/*.onnx", FILES, ("similar-new",)),
    ("main", "cache/encoders/*.onnx.crc32", FILES, ("similar-new",)),
    ("main", f"cache/{GLOVE}/vectors.npy", ARRAYS, ("words",)),
    ("main", f"cache/{GLOVE}/words.txt", FILES, ("words",)),
    ("main", f"cache/{GLOVE}/meta.json", FILES, ("words",)),
    ("main", f"{WORDS}/index.hnsw", FILES, ("words-index",)),
    ("main", f"{WORDS}/index.hnsw.json", FILES, ("words-index",)),
    ("deleted", f"{STORE}/deleted-*.npy", (*FILES, "other"), ("similar", "search")),
    ("ivf", f"{STORE}/images.ivf", FILES, ("similar",)),
    ("ivf", f"{STORE}/images.ivf.json", FILES, ("similar",)),
    ("ivf", f"{STORE}/images.ivf.mean.npy", ARRAYS, ("similar",)),
    ("ivf", f"{STORE}/joint-MODEL.ivf", FILES, ("search",)),
    ("ivf", f"{STORE}/joint-MODEL.ivf.json", FILES, ("search",)),
    ("hnsw", f"{STORE}/images.ann", FILES, ("similar",)),
    ("hnsw", f"{STORE}/joint-MODEL.ann", FILES, ("search",)),
    ("exact", f"{STORE}/images.ann", ARRAYS, ("similar",)),
    ("sentence", "cache/sentences/*/*.npz", (*FILES, "nan"), ("tag", "search")),
]
CASES = [pytest.param(variant, pattern, damage, commands,
                      id=("" if variant == "main" else f"{variant}-") + f"{Path(pattern).name.replace('*', 'N')}-{damage}")
         for variant, pattern, damages, commands in KINDS for damage in damages]

RUN = re.compile(r"run `vector-search ([^`]+)`|(retrain it|train one first)")


def check_answer(command: str, answer: Answer, want: list, file: Path) -> list[str] | None:
    """None if the answer is right; else the command its one-line error says to run (the error
    must name `file` or its folder). Never a traceback or a crash."""
    got, said, _ = answer
    assert "Traceback" not in said and "CRASH" not in said, f"{command}: {said}"
    if got == want:
        return None
    assert got is None, f"{command} answered wrong after damage to {file.name}: {got} != {want}"
    assert any(file.name in line or file.parent.name in line for line in said.splitlines()), f"{command}: no line names {file}: {said}"
    fix = RUN.search(said)
    assert fix, f"{command}: the error does not say what to run: {said}"
    return fix.group(1).split() if fix.group(1) else ["train", "--method", "conse"]


def selected(request: pytest.FixtureRequest) -> list:
    """The cases this run selected (-k), so a run of a few does not pay for all."""
    chosen = {item.callspec.id for item in request.session.items if getattr(item, "originalname", "") == "test_damaged_file"}
    return [param for param in CASES if param.id in chosen]


@pytest.fixture(scope="module")
def damaged(base: dict[str, tuple[Setup, dict]], tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict:
    """Every case selected damaged in its own copy, and each command's first answers there (one process)."""
    cases = {}
    for param in selected(request):
        variant, pattern, damage, commands = param.values
        copy = copy_case(base[variant][0], tmp_path_factory.mktemp(param.id) / "case")
        if "MODEL" in pattern:
            pattern = pattern.replace("MODEL", json.loads((copy.models / f"joint-{ENCODER}.json").read_text())["weights_sha256"][:16])
        files = sorted(copy.root.glob(pattern), key=lambda f: (f.stat().st_size, f.name))
        assert len(files) == 1 or (files and "*/" in pattern), f"{pattern}: {files}"
        unshare(files[0])
        DAMAGE[damage](files[0])
        cases[param.id] = (copy, files[0], [copy.argv(c) for c in commands])
    answers = run_sessions([(copy, argvs) for copy, _, argvs in cases.values()])
    return {key: (file, got, copy) for (key, (copy, file, _)), got in zip(cases.items(), answers)}


@pytest.fixture(scope="module")
def repaired(base: dict[str, tuple[Setup, dict]], damaged: dict, request: pytest.FixtureRequest) -> dict[str, tuple[list[list[str]], list[Answer]]]:
    """For each case: the commands its errors said to run (and, for the store, the next `index`),
    run, then the same commands again (one process for all)."""
    plans = {}
    for param in selected(request):
        variant, pattern, _, commands = param.values
        answers = base[variant][1]
        file, first, copy = damaged[param.id]
        try:
            fixes = [check_answer(c, a, answers[c], file) for c, a in zip(commands, first)]
        except AssertionError:
            continue  # the test of the case says what is wrong
        steps = [[str(copy.photos) if a == "DATASET_DIR" else a for a in fix] for fix in fixes if fix]
        if pattern.startswith(STORE):
            steps.append(["index", str(copy.photos)])
        plans[param.id] = (copy, steps, [*steps, *(copy.argv(c) for c in commands)])
    after = run_sessions([(copy, argvs) for copy, _, argvs in plans.values()])
    return {key: (steps, got) for (key, (_, steps, _)), got in zip(plans.items(), after)}


@pytest.mark.slow
@pytest.mark.parametrize("variant, pattern, damage, commands", CASES)
def test_damaged_file(base, damaged, repaired, request: pytest.FixtureRequest, variant: str, pattern: str, damage: str,
                      commands: tuple[str, ...]) -> None:
    answers = base[variant][1]
    key = request.node.callspec.id
    file, first, _ = damaged[key]
    for command, answer in zip(commands, first):
        check_answer(command, answer, answers[command], file)
    steps, after = repaired[key]
    for step, (_, said, code) in zip(steps, after):
        assert code == 0 and "Traceback" not in said and "CRASH" not in said, f"{step}: {said}"
    for command, (got, said, _) in zip(commands, after[len(steps):]):
        assert got == answers[command], f"{command} after {steps}: {said}"


# --- SIGKILL at every rename --------------------------------------------------------------------------


def kill_at_every_rename(setup: Setup, args: tuple[str, ...], check: Callable[[], None]) -> int:
    """Run `args` killed at its 1st, 2nd, ... rename until it completes; after each kill, `check`.
    Returns how many renames it made."""
    for n in range(1, 100):
        out = setup.run(*args, VECTOR_SEARCH_KILL_AT_RENAME=str(n))
        if out.returncode == 0:
            return n - 1
        assert out.returncode == -signal.SIGKILL, out.stderr
        check()
    raise AssertionError("never completed")


@pytest.mark.slow
def test_sigkill_at_every_rename_of_train(case: tuple[Setup, dict]) -> None:
    setup, answers = case

    def check() -> None:
        assert setup.answer("tag")[0] == answers["tag"]  # the old model, whole (the new one is the same ConSE)

    renames = kill_at_every_rename(setup, ("train", "--method", "conse"), check)
    assert renames >= 1
    check()
    assert not [p for p in setup.models.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_sigkill_at_every_rename_of_a_compacting_index(case: tuple[Setup, dict]) -> None:
    """Two photos removed: `index` marks them deleted, commits, then compacts (a new generation)."""
    setup, answers = case
    gone = sorted((setup.photos / "cat").iterdir())[:2]
    for photo in gone:
        photo.unlink()
    store = setup.features / ENCODER

    def check() -> None:
        got, said, _ = setup.answer("similar")
        assert got is not None and "Traceback" not in said, said

    renames = kill_at_every_rename(setup, ("index", str(setup.photos)), check)
    assert renames >= 2
    got, _, _ = setup.answer("similar")
    assert got is not None and not any(str(p) in item for row in got for item, _ in row for p in gone)
    names = {p.name for p in store.iterdir()}
    # No temporary of a store file is left (the writer removes them under its lock); one of a derived
    # index killed mid-save may be, until a writer removes it an hour later (a reader may be saving one).
    assert not [n for n in names if storefiles.TEMPORARY_PATTERN.fullmatch(n)], names
    assert len([n for n in names if n.startswith("vectors-")]) == 1, names


@pytest.mark.slow
def test_a_damaged_checkpoint_is_never_read_and_the_next_index_rebuilds(case: tuple[Setup, dict]) -> None:
    """`index` killed after a checkpoint (a new photo embedded, committed with complete=False): readers
    answer from the last complete save, also when the checkpoint's own item table is damaged; the
    next `index` finds the damage (it resumes from the checkpoint), rebuilds, and the photo is found."""
    setup, answers = case
    new = setup.photos / "dog" / Path(setup.new_photo).name
    shutil.copy2(setup.new_photo, (setup.photos / "dog").mkdir() or new)
    store = setup.features / ENCODER
    for n in range(1, 10):  # the first kill after the checkpoint's manifest is renamed
        out = setup.run("index", str(setup.photos), VECTOR_SEARCH_KILL_AT_RENAME=str(n), VECTOR_SEARCH_CHECKPOINT_SECONDS="0")
        assert out.returncode == -signal.SIGKILL, out.stderr
        manifest = json.loads((store / "store.json").read_text())
        if not manifest["complete"]:
            break
    else:
        raise AssertionError("no checkpoint was committed")
    table = {name for name, _ in manifest["tables"]} - {name for name, _ in manifest["previous"]["tables"]}
    assert len(table) == 1, manifest
    table = table.pop()
    flip(store / table)
    got, said, _ = setup.answer("similar")
    assert got == answers["similar"] and "Traceback" not in said, said  # the last complete save
    out = setup.run("index", str(setup.photos))
    assert out.returncode == 0 and "rebuilding it" in out.stdout + out.stderr, out.stdout + out.stderr
    rebuilt = Store.load(store)
    assert len(rebuilt) == 13 and str(new) in rebuilt.paths and not (store / table).exists()
    got, said, _ = setup.answer("similar")
    assert got is not None and "Traceback" not in said, said


@pytest.mark.slow
def test_locks_and_leftover_temporaries_are_never_trusted(case: tuple[Setup, dict]) -> None:
    """A lock file holds nothing that is read (flock on the open file): garbage in it, or none at all,
    changes nothing. Temporaries a killed save left are removed by the next writer."""
    setup, answers = case
    (setup.features / f"{ENCODER}.lock").write_bytes(os.urandom(64))
    (setup.models / f"joint-{ENCODER}.npz.lock").unlink()
    leftovers = [setup.features / ENCODER / ".images.ann.x1.tmp", setup.features / ENCODER / ".store.json.x2.tmp",
                 setup.models / f".joint-{ENCODER}.npz.x3.tmp"]
    for tmp in leftovers:
        tmp.write_bytes(b"half a save")
        os.utime(tmp, (0, 0))  # hours old: no save in progress
    steps = run_sessions([(setup, [["index", str(setup.photos)], ["train", "--method", "conse"], setup.argv("similar"), setup.argv("tag")])])[0]
    for (_, said, code) in steps[:2]:
        assert code == 0 and "Traceback" not in said, said
    assert [got for got, _, _ in steps[2:]] == [answers["similar"], answers["tag"]], steps
    assert not [tmp for tmp in leftovers if tmp.exists()]


# --- quick checks of each fix, in process (the quick loop runs them) ----------------------------------


def test_a_flipped_index_never_reaches_annoy(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """64 flipped bytes in a saved Annoy index: refused by its checksum before Annoy maps it (it
    crashed, or answered a wrong row at distance 0), rebuilt with one line saying so."""
    vectors = np.random.default_rng(0).normal(size=(300, 32)).astype(np.float32)
    path = tmp_path / "v.ann"
    want = nn.load_or_build(path, vectors, "fp").search(vectors[7], 5)
    flip(path)
    with pytest.raises(nn.IndexFileError, match="checksum"):
        nn.load_index(path, vectors, "fp")
    got = nn.load_or_build(path, vectors, "fp").search(vectors[7], 5)
    assert [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()] == [
        f"rebuilding {path}: {path}: its bytes differ from its checksum (damaged); rebuild the index"]
    np.testing.assert_array_equal(got[0], want[0])


def test_vectors_that_are_not_finite_are_refused_at_write_and_found_at_read(tmp_path: Path) -> None:
    store = Store(tmp_path / ENCODER, ENCODER, str(tmp_path / "photos"))
    items = [Item(f"cat/{i}.jpg", 1, 1, f"{i:064x}") for i in range(3)]
    vectors = np.eye(3, 4, dtype=np.float32)
    with pytest.raises(ValueError, match="not finite"):
        store.append(items, np.where(np.arange(3)[:, None] == 1, np.nan, vectors))
    assert not (store.directory / "store.json").exists()  # nothing committed
    saved = store.append(items, vectors)
    nan_row(store.directory / saved.manifest.vectors)  # damage on disk: row 0
    with pytest.raises(StoreError, match="1 rows .from row 0. differ from their checksum"):
        Store.load(store.directory)
    assert storefiles.finite_rows(Store.load(store.directory, checkpoint=True).vectors).tolist() == [False, True, True]


def test_vectors_that_differ_from_their_checksum_are_named(tmp_path: Path) -> None:
    """A value changed on disk but still finite: a reader names the file and what to run; the writer
    (`index`) finds the rows to embed again."""
    items = [Item(f"cat/{i}.jpg", 1, 1, f"{i:064x}") for i in range(6)]
    vectors = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    store = Store(tmp_path / ENCODER, ENCODER, "photos").append(items[:3], vectors[:3]).append(items[3:], vectors[3:])
    file = store.directory / store.manifest.vectors
    with open(file, "r+b") as f:
        f.seek(4 * 4 * 4)  # row 4
        f.write(np.float32(1.5).tobytes())
    storefiles._CHECKED_RANGES.clear()  # as a fresh process
    with pytest.raises(StoreError, match=f"{file.name} is damaged: 3 rows .* run `vector-search index photos`"):
        Store.load(store.directory)
    writer = Store.load(store.directory, checkpoint=True)
    assert storefiles.damaged_rows(writer.vectors, writer.manifest.checksums, file).tolist() == [False] * 3 + [True] * 3


def test_deletion_marks_that_name_other_rows_are_refused(tmp_path: Path) -> None:
    """A deleted-rows file changed into another valid one (it would show a deleted photo and hide
    a live one) differs from the checksum in the manifest: named, with what to run."""
    items = [Item(f"cat/{i}.jpg", 1, 1, f"{i:064x}") for i in range(4)]
    vectors = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    store = Store(tmp_path / ENCODER, ENCODER, "photos").append(items, vectors).append([], vectors[:0], deleted=[2])
    assert store.live.tolist() == [True, True, False, True]
    other_rows(store.directory / store.manifest.deleted)
    with pytest.raises(StoreError, match=f"{store.manifest.deleted} is damaged.*run `vector-search index photos`"):
        Store.load(store.directory)


def test_a_checkpoint_is_never_what_readers_read(tmp_path: Path) -> None:
    """A run still indexing (or killed) commits checkpoints; a fresh reader reads the last complete
    save (none yet: one line saying what to run), the writer resuming reads the checkpoint."""
    directory = tmp_path / ENCODER
    items = [Item(f"cat/{i}.jpg", 1, 1, f"{i:064x}") for i in range(6)]
    vectors = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    first = Store(directory, ENCODER, "photos").append(items[:2], vectors[:2], complete=False)
    with pytest.raises(StoreError, match="no complete save yet: wait for `vector-search index photos` to finish"):
        Store.load(directory)
    done = first.append(items[2:4], vectors[2:4], complete=True)
    later = Store.load(directory, checkpoint=True).append(items[4:], vectors[4:], complete=False).with_tables_merged()
    assert len(Store.load(directory)) == len(done) == 4 and len(Store.load(directory, checkpoint=True)) == len(later) == 6
    np.testing.assert_array_equal(Store.load(directory).vectors, vectors[:4])  # its files are all kept


def test_a_model_is_one_file_and_names_of_any_bytes_round_trip(tmp_path: Path) -> None:
    """The model's metadata lives inside its npz: the .json beside it can be old, damaged or gone.
    A class folder whose name is not UTF-8 is saved and read back byte for byte."""
    from vector_search.joint import JointModel

    odd = os.fsdecode(b"caf\xe9")  # Latin-1: a lone surrogate once decoded
    meta = {"method": "conse", "encoder": ENCODER, "feature_dim": 4, "classes": [odd, "bus"], "words": {"name": "w", "dim": 2}}
    path = tmp_path / "joint.npz"
    JointModel(meta, {"w": np.ones((4, 2), np.float32)}).save(path)
    (tmp_path / "joint.json").write_text("{")
    loaded = JointModel.load(path)
    assert loaded.classes == [odd, "bus"] and os.fsencode(loaded.classes[0]) == b"caf\xe9"


def test_damaged_converted_weights_are_converted_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from vector_search.imaging.encoders.efficientnet_lite import LiteEncoder

    encoder = LiteEncoder(cache_dir=tmp_path)
    npz = encoder.weights_path()
    good = npz.read_bytes()
    for damage in (flip, empty, truncate):
        damage(npz)
        assert LiteEncoder(cache_dir=tmp_path).classifier()[0].shape == (1280, 1000)
        assert npz.read_bytes() == good and "converting the weights again" in caplog.text


def test_queries_file_is_streamed_bounded_and_per_line(tmp_path: Path) -> None:
    from vector_search.cli import MAX_QUERY_BYTES

    queries = tmp_path / "queries.txt"
    queries.write_bytes(b"cat\nd\x00og\n" + b"a" * (MAX_QUERY_BYTES + 1) + b"\nbus\n\xff\xfe\n")
    out = cli("words", "--queries-file", queries, "-k", "2", "--json", timeout=300)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [("results" in r, r.get("error")) for r in rows] == [
        (True, None), (False, "a query cannot hold a NUL byte"), (False, f"line longer than {MAX_QUERY_BYTES} bytes: skipped"),
        (True, None), (False, "the query is not UTF-8 text")], out.stderr
    assert out.returncode == 1 and "Traceback" not in out.stderr
    out = cli("words", "--queries-file", "/dev/zero", "--json", timeout=300)  # one endless line: never read whole
    assert [json.loads(line)["error"] for line in out.stdout.splitlines()] == [
        f"line longer than {MAX_QUERY_BYTES} bytes: skipped", "the line never ends: the rest of /dev/zero is not read"]


def test_server_mode_skips_links_that_leave_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file link inside an allowed folder whose real path leaves $VECTOR_SEARCH_ROOT: skipped at
    indexing with a reason (never read), and never answered."""
    from vector_search.store.updates import UpdateReport, _plan_update

    root, secret = tmp_path / "served", tmp_path / "secret.jpg"
    (root / "photos" / "cat").mkdir(parents=True)
    secret.write_bytes(b"not for visitors")
    (root / "photos" / "cat" / "inside.jpg").write_bytes(b"x")
    (root / "photos" / "cat" / "leak.jpg").symlink_to(secret)
    (root / "photos" / "cat" / "fine.jpg").symlink_to(root / "photos" / "cat" / "inside.jpg")
    monkeypatch.setenv("VECTOR_SEARCH_ROOT", str(root))
    report = UpdateReport()
    plan = _plan_update(root / "photos", Store(root / "features", ENCODER, str(root / "photos")), report)
    assert sorted(item.path for item in plan.todo) == ["cat/fine.jpg", "cat/inside.jpg"]
    assert report.skipped == [("cat/leak.jpg", f"a link to a file outside {root}: skipped (server mode)")]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_save_is_fsynced_renamed_then_its_folder_fsynced(tmp_path: Path) -> None:
    """What a power cut needs (it cannot be tested here): the file's bytes reach the disk before the
    rename, and the rename itself after it (an fsync of the folder). Seen in the system calls."""
    target = tmp_path / "a.json"
    trace = tmp_path / "trace.txt"
    save = f"from vector_search import fileio; fileio.save_json({str(target)!r}, {{'a': 1}})"
    out = subprocess.run(["strace", "-f", "-e", "trace=openat,fsync,rename", "-o", str(trace), sys.executable, "-c", save],
                         cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    if out.returncode != 0 and "ptrace" in out.stderr:
        pytest.skip(f"strace cannot trace here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    calls = [line.split(" ", 1)[1].strip() for line in trace.read_text().splitlines() if str(tmp_path) in line or "fsync(" in line]
    calls = calls[next(i for i, c in enumerate(calls) if ".a.json." in c):]  # from the temporary's creation
    rename = next(i for i, c in enumerate(calls) if c.startswith("rename(") and c.endswith("= 0") and str(target) in c)
    assert any(c.startswith("fsync(") for c in calls[:rename]), calls  # the bytes, before the rename
    folder = next((i for i, c in enumerate(calls) if i > rename and f'"{tmp_path}", O_RDONLY' in c and "O_DIRECTORY" in c), None)
    assert folder is not None, f"the folder is not opened (to fsync it) after the rename: {calls}"
    fd = calls[folder].rsplit("= ", 1)[1]
    assert any(c.startswith(f"fsync({fd})") for c in calls[folder + 1 :]), calls  # the rename, after it


def test_read_only_mode_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vector_search import fileio

    monkeypatch.setenv("VECTOR_SEARCH_READONLY", "1")
    with pytest.raises(fileio.ReadOnlyModeError, match="read-only mode") as refused:
        fileio.save_json(tmp_path / "x.json", {})
    assert str(refused.value).startswith("read-only mode") and refused.value.errno == errno.EROFS  # (it printed "(30, '...')")
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    assert len(nn.load_or_build(tmp_path / "v.ann", vectors, "fp")) == 50  # a cache: answered from memory
    monkeypatch.setenv("VECTOR_SEARCH_CACHE", str(tmp_path))  # the sentence-vector cache: kept in memory
    assert SentenceEncoder().encode_cached(["a photo of a bus"]).shape == (1, 384)  # (it failed: "(30, 'read-only mode ...')")
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_sentence_vector_file_is_said_removed_and_embedded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A file of the sentence-vector cache with flipped bytes (the zip's CRC-32 fails: it was a
    BadZipFile traceback) or a NaN vector (a valid zip: its texts' vectors were used)."""
    monkeypatch.setenv("VECTOR_SEARCH_CACHE", str(tmp_path))
    texts = ["a photo of a bus", "a photo of a cat"]
    want = SentenceEncoder().encode_cached(texts)
    (file,) = tmp_path.rglob("*.npz")
    for damage in (flip, nan_row):
        damage(file)
        np.testing.assert_allclose(SentenceEncoder().encode_cached(texts), want, atol=1e-6)
        assert f"the sentence-vector cache file {file} is damaged" in caplog.text
        caplog.clear()
    assert SentenceEncoder().encode_cached(texts).shape == (2, 384) and not caplog.text  # saved again, whole


def test_the_page_shows_names_of_any_bytes_and_refuses_a_nul_in_a_folder_box(tmp_path: Path) -> None:
    """A class folder that is not UTF-8 is shown with its odd bytes as \\xNN (a page cannot carry
    lone surrogates: Streamlit failed with UnicodeEncodeError); a NUL typed in a box is one line."""
    from vector_search.app.state import Settings, Source, message
    from vector_search.serving import PathNotAllowedError

    odd = os.fsdecode(b"caf\xe9")
    label = Source(str(tmp_path), None).label(str(tmp_path / odd / "x.jpg"))  # (the engine is not asked)
    assert label == "caf\\xe9/x.jpg" and label.encode("utf-8")
    assert message(OSError(f"cannot read {odd}")).encode("utf-8")
    with pytest.raises(PathNotAllowedError, match="cannot hold a NUL byte"):
        Settings("photos\0", ENCODER, 8, "features").allowed()
