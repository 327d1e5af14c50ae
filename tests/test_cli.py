"""The command-line contract, end to end on real photos, real weights and real GloVe."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_subset

from vector_search.cli import main


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, list[dict], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")], out + err


def run_captured(*argv: str) -> tuple[int, str]:
    """main(argv) with its stdout and stderr captured without capsys (for module-scoped fixtures)."""
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8") for _ in range(2))  # main() reconfigures them
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    out.flush()
    err.flush()
    return code, out.buffer.getvalue().decode() + err.buffer.getvalue().decode()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> tuple[Path, Path]:
    """12 real photos (4 cats, 4 buses, 4 boats) indexed once for the module: no test changes the
    photos, and what tests add to the store (a second `index` run, the joint vectors of `search`) are
    no-ops or caches keyed by the model; models go to conftest's per-test models_dir."""
    base = tmp_path_factory.mktemp("cli")
    dataset = copy_subset(base / "photos", {"cat": 4, "bus": 4, "boat": 4})
    store = base / "features"
    code, out = run_captured("index", str(dataset), "--features", str(store))
    assert code == 0 and "added 12, changed 0" in out
    assert "photo/s" in out  # the progress bar's rate counts photos
    return dataset, store


@pytest.mark.slow
def test_index_similar_json(indexed: tuple[Path, Path], capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    dataset, store = indexed
    cats = sorted((dataset / "cat").iterdir())
    outside = tmp_path / "outside.jpg"  # a photo that is not indexed: the model runs on it
    shutil.copy(cats[0], outside)
    with open(outside, "ab") as f:
        f.write(b"\0")  # different bytes, same picture
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    code, rows, _ = run(capsys, "similar", str(cats[0]), str(bad), str(outside), "-k", "3", "--features", str(store), "--json")
    assert code == 1  # one query failed, the others still answered
    assert [r["query"] for r in rows] == [str(cats[0]), str(bad), str(outside)]
    first, failed, new = rows
    assert "not an image" in failed["error"]
    assert len(first["results"]) == 3
    assert str(cats[0]) not in [r["item"] for r in first["results"]]  # the query itself is excluded
    assert all(Path(r["item"]).parent.name == "cat" for r in first["results"][:2])
    assert new["results"][0]["item"] == str(cats[0]) and new["results"][0]["distance"] < 0.01
    distances = [r["distance"] for r in new["results"]]
    assert distances == sorted(distances)

    code, _, out = run(capsys, "index", str(dataset), "--features", str(store))
    assert code == 0 and "unchanged 12" in out


@pytest.mark.slow
def test_queries_file_and_plain_output(indexed: tuple[Path, Path], capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    dataset, store = indexed
    buses = sorted((dataset / "bus").iterdir())
    queries = tmp_path / "queries.txt"
    queries.write_text(f"{buses[0]}\n{buses[1]}\n")
    code, _, out = run(capsys, "similar", "--queries-file", str(queries), "-k", "2", "--features", str(store))
    assert code == 0
    assert out.count("  1. ") == 2 and f"{buses[0]}:" in out


def test_words_json(capsys: pytest.CaptureFixture) -> None:
    code, rows, _ = run(capsys, "words", "said", "dining table", "qqqzzzx", "--json", "-k", "10")
    assert code == 1
    said, phrase, unknown = rows
    assert {"told", "asked"} & {r["item"] for r in said["results"]}
    assert len(phrase["results"]) == 10 and "dining" not in [r["item"] for r in phrase["results"]]
    assert "qqqzzzx" in unknown["error"]


def test_the_feature_store_folder_is_features_and_store_is_its_old_name(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """One name for the folder: --features (as VECTOR_SEARCH_FEATURES, config.features_root, Engine's
    features_root); --store, its name before, still works."""
    from vector_search.cli import build_parser

    for command in (["index", "photos"], ["similar", "x.jpg"], ["search", "cat"], ["tag", "x.jpg"], ["train"], ["serve"], ["evaluate"]):
        for flag in ("--features", "--store"):
            assert build_parser().parse_args([*command, flag, str(tmp_path)]).features == str(tmp_path)
    code, rows, _ = run(capsys, "similar", "x.jpg", "--store", str(tmp_path), "--json")
    assert code == 1 and f"no feature store under {tmp_path}" in rows[0]["error"]


def test_no_query_and_missing_store(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["words"]) == 2
    assert capsys.readouterr().err == "error: no query given: pass queries as arguments or with --queries-file\n"
    assert main(["words", "cat", "-k", "0"]) == 2
    assert capsys.readouterr().err == "error: -k must be at least 1\n"
    assert main(["index", str(tmp_path / "nowhere"), "--features", str(tmp_path / "features")]) == 2
    assert capsys.readouterr().err.startswith("error: dataset folder not found")
    code, rows, _ = run(capsys, "similar", "x.jpg", "--features", str(tmp_path), "--json")
    assert code == 1 and "vector-search index" in rows[0]["error"]


def test_one_shot_words_import_no_tensorflow_and_build_no_index(tmp_path: Path) -> None:
    """`words` with a few queries, as a new user runs it (fresh interpreter, empty cache folder):
    no TensorFlow (5 s to import) and no word index (a minute to build): an exact scan answers."""
    code = "import sys; from vector_search.cli import main; main(['words', 'ocean', 'said', '-k', '3']); print('tensorflow' in sys.modules)"
    env = {**os.environ, "VECTOR_SEARCH_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=tmp_path).stdout
    assert out.splitlines()[-1] == "False" and "sea" in out and "told" in out
    cache = tmp_path / "cache" / "words" / "glove.6B.50d"
    assert (cache / "vectors.npy").is_file() and not list(cache.glob("index.*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # nothing left in the working folder


@pytest.mark.slow
def test_indexing_and_queries_never_import_tensorflow(tmp_path: Path, lite0) -> None:
    """Once the encoder is exported to ONNX (its first use does it, once per machine), `index`,
    `similar` (on a photo outside the store too: the model runs), `tag`, `search` and `words` run in
    a fresh interpreter without TensorFlow or Keras."""
    lite0.embed(np.zeros((1, *lite0.input_shape), np.float32))  # the export, if this machine never made it: TensorFlow here, once
    assert lite0.onnx_path().is_file()
    dataset = copy_subset(tmp_path / "photos", {"cat": 3, "bus": 3})
    store, cat, outside = tmp_path / "features", sorted((dataset / "cat").iterdir())[0], tmp_path / "outside.jpg"
    shutil.copy(sorted((dataset / "bus").iterdir())[0], outside)
    commands = [
        ["index", str(dataset), "--features", str(store)],
        ["similar", str(cat), str(outside), "-k", "3", "--features", str(store)],
        ["tag", str(outside), "--features", str(store)],
        ["search", "cat", "--features", str(store), "-k", "3"],
        ["words", "ocean", "-k", "3"],
    ]
    code = (
        "import sys\n"
        "from vector_search.cli import main\n"
        f"for argv in {commands!r}:\n"
        "    assert main(argv) == 0, argv\n"
        "print('imported:', sorted(m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1] == "imported: []"
    assert "added 6, changed 0" in proc.stdout + proc.stderr and "exported" not in proc.stderr


@pytest.mark.slow
def test_train_tag_search(indexed: tuple[Path, Path], capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    dataset, store = indexed
    model = tmp_path / "joint.npz"
    cat = sorted((dataset / "cat").iterdir())[0]

    # Before any training, ConSE answers: open vocabulary from the encoder's own ImageNet classifier.
    code, rows, _ = run(capsys, "tag", str(cat), "--features", str(store), "--json")
    assert code == 0 and "cat" in [r["item"] for r in rows[0]["results"]]

    code, _, out = run(capsys, "train", "--features", str(store), "--model", str(model), "--holdout-classes", "boat", "--text", "glove")
    assert code == 0 and "trained blend on 2 classes" in out and model.is_file()
    code, rows, _ = run(
        capsys, "search", "bus", "cat + 2:sofa", "", "x:dog", "qqqzzzx", "--features", str(store), "--model", str(model), "-k", "4", "--json"
    )
    assert code == 1
    bus, cat_sofa, empty, malformed, unknown = rows
    assert [Path(r["item"]).parent.name for r in bus["results"]].count("bus") >= 3
    assert len(cat_sofa["results"]) == 4
    assert "empty query" in empty["error"] and "malformed weight" in malformed["error"] and "qqqzzzx" in unknown["error"]

    code, rows, _ = run(capsys, "search", "A big yellow bus parked in the street.", "--features", str(store), "--model", str(model),
                        "-k", "4", "--json")
    assert code == 0 and [Path(r["item"]).parent.name for r in rows[0]["results"]].count("bus") >= 3
    counted = {w["word"]: w["weight"] for w in rows[0]["words"]}  # which words counted, and how much
    assert list(counted) == ["a", "big", "yellow", "bus", "parked", "in", "the", "street"]
    assert counted["a"] == counted["in"] == counted["the"] == 0 and max(counted, key=counted.get) == "bus"
    assert sum(counted.values()) == pytest.approx(1.0, abs=1e-3)

    code, rows, _ = run(capsys, "search", "boat", "--features", str(store), "--model", str(model), "-k", "4", "--json")
    assert code == 0 and [Path(r["item"]).parent.name for r in rows[0]["results"]].count("boat") >= 3  # never trained on

    code, rows, _ = run(capsys, "tag", str(cat), "--features", str(store), "--model", str(tmp_path / "none.npz"), "--json")
    assert code == 1 and "no joint model" in rows[0]["error"]


@pytest.mark.slow
def test_similar_reweight(indexed: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    dataset, store = indexed
    cat = str(sorted((dataset / "cat").iterdir())[0])
    code, rows, _ = run(capsys, "similar", cat, "--reweight", "siamese cat", "-k", "3", "--features", str(store), "--json")
    assert code == 0 and [Path(r["item"]).parent.name for r in rows[0]["results"]] == ["cat"] * 3
    code, rows, _ = run(capsys, "similar", cat, "--reweight", "no such class", "--features", str(store), "--json")
    assert code == 1 and "no such class" in rows[0]["error"]
    code, rows, _ = run(capsys, "similar", cat, "--reweight", "crane", "--features", str(store), "--json")
    assert code == 1 and "ambiguous" in rows[0]["error"] and "134 (crane)" in rows[0]["error"] and "517 (crane)" in rows[0]["error"]
    code, rows, _ = run(capsys, "similar", cat, "--reweight", "517", "-k", "3", "--features", str(store), "--json")
    assert code == 0 and len(rows[0]["results"]) == 3


def test_a_queries_file_line_that_is_not_utf8_answers_every_other_line(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    queries = tmp_path / "q.txt"
    queries.write_bytes(b"dog\n\xff\xfe\ncat\n")
    code, rows, _ = run(capsys, "words", "--queries-file", str(queries), "--json", "-k", "3")
    assert code == 1  # one query failed, reported on its own line
    assert [os.fsencode(r["query"]) for r in rows] == [b"dog", b"\xff\xfe", b"cat"]  # escaped in JSON, the bytes come back
    assert "results" in rows[0] and "error" in rows[1] and "results" in rows[2]
    assert "dogs" in {r["item"] for r in rows[0]["results"]}


@pytest.mark.slow
def test_similar_finds_a_photo_whose_name_is_not_utf8(capsys: pytest.CaptureFixture, tmp_path: Path, pascal_dataset: Path) -> None:
    dataset = copy_subset(tmp_path / "photos", {"cat": 3, "bus": 3})
    original = sorted((dataset / "cat").iterdir())[0]
    latin1 = os.fsencode(dataset / "cat") + b"/caf\xe9.jpg"  # "café" in Latin-1: not UTF-8
    shutil.copyfile(original, latin1)
    store = tmp_path / "features"
    code, _, out = run(capsys, "index", str(dataset), "--features", str(store))
    assert code == 0 and "added 7" in out
    name = os.fsdecode(latin1)  # how Python hands such a name over (argv, os.listdir, json.loads)

    code, rows, _ = run(capsys, "similar", str(original), "-k", "2", "--features", str(store), "--json")
    assert code == 0 and rows[0]["results"][0]["item"] == name and rows[0]["results"][0]["distance"] < 0.01

    code, _, out = run(capsys, "similar", str(original), "-k", "1", "--features", str(store))
    assert code == 0 and f"{dataset / 'cat'}/caf\\xe9.jpg" in out  # plain output: the byte as \xe9

    queries = tmp_path / "queries.txt"
    queries.write_bytes(latin1 + b"\n" + os.fsencode(original) + b"\n")
    for argv in (["--queries-file", str(queries)], [name]):  # from a file (bytes) and as an argument
        code, rows, _ = run(capsys, "similar", *argv, "-k", "2", "--features", str(store), "--json")
        assert code == 0, rows
        assert rows[0]["query"] == name
        assert rows[0]["results"][0]["item"] == str(original) and set(rows[0]["results"][0]) == {"item", "distance", "score"}
        assert rows[0]["results"][0]["distance"] < 0.01
