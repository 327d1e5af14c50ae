"""The Streamlit walkthrough (app.py), driven with AppTest on real photos, real models and real words.

The app reads its dataset folder and feature store from VECTOR_SEARCH_DATASET and
VECTOR_SEARCH_FEATURES; the tests point them at a small copy of Pascal Sentences and a fresh store.
The GloVe cache and its 400k-word index live in the user's cache folder (config.cache_root()),
built once the first time (about a minute on 2 cores), then loaded.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import DATASET, PASCAL, ROOT, copy_subset
from PIL import Image
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Header

from vector_search.engine import Engine
from vector_search.imaging.encoders import DEFAULT_ENCODER, ENCODER_NAMES, describe
from vector_search.imaging.images import class_of

APP = ROOT / "app.py"
TIMEOUT = 600  # the first run loads TensorFlow and embeds the photos
NOISY = "bottle/2008_000112.jpg"
SUBSET = {"bottle": 3, "cat": 4, "dog": 3, "sofa": 3, "boat": 3, "bus": 3}  # 19 real photos

pytestmark = pytest.mark.slow


# --- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> Path:
    """19 real Pascal photos in 6 classes (the noisy bottle among them), with their captions."""
    base = tmp_path_factory.mktemp("pascal")
    dataset = copy_subset(base / "dataset", SUBSET)
    assert (dataset / NOISY).is_file()
    (base / "sentence" / "bottle").mkdir(parents=True)
    shutil.copy(PASCAL / "sentence" / "bottle" / "2008_000112.txt", base / "sentence" / "bottle")
    return dataset


@pytest.fixture(scope="session")
def training_photos(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> Path:
    """60 real photos in 3 classes: enough for the stratified test and validation splits of training."""
    return copy_subset(tmp_path_factory.mktemp("training") / "dataset", {"boat": 20, "cat": 20, "dog": 20})


@pytest.fixture(scope="session")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "features"


# Trained joint models go to a fresh folder: conftest's autouse `models_dir` fixture.


LAZY_BOXES = ("words_open", "tags_open", "map_open")  # sections 4, 6 and 8 draw their content once opened


def start(monkeypatch: pytest.MonkeyPatch, dataset: Path, features: Path, opened: bool = True) -> AppTest:
    """The page's first run (`opened`: with the boxes of sections 4, 6 and 8 opened, as a visitor does)."""
    monkeypatch.setenv("VECTOR_SEARCH_DATASET", str(dataset))
    monkeypatch.setenv("VECTOR_SEARCH_FEATURES", str(features))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for box in LAZY_BOXES if opened else ():
        at.session_state[box] = True
    return ok(at.run())


def ok(at: AppTest) -> AppTest:
    """No traceback ever reaches the page."""
    assert not at.exception, [e.value for e in at.exception]
    return at


def walk(block: Block):
    for key in sorted(block.children):
        node = block.children[key]
        yield node
        if isinstance(node, Block):
            yield from walk(node)


def sections(at: AppTest) -> dict[str, list]:
    """The elements under each st.header, in page order, keyed by the header's number ("3")."""
    found: dict[str, list] = {}
    current = None
    for node in walk(at.main):
        if isinstance(node, Header):
            current = node.value.split(".")[0]
            found[current] = []
        elif current is not None:
            found[current].append(node)
    return found


def grids(nodes: list) -> list[list[str]]:
    """The captions of each st.image element."""
    return [[img.caption for img in node.proto.imgs] for node in nodes if node.type == "image"]


def texts(nodes: list, kind: str = "markdown") -> str:
    return "\n".join(node.value for node in nodes if node.type == kind)


def classes(captions: list[str]) -> list[str]:
    """Result captions are '<class> · <distance>'."""
    return [c.split(" · ")[0] for c in captions]


def tags_line(results) -> str:
    """How section 6 shows tags."""
    return "**Tags:** " + " · ".join(f"**{r.item}** {r.distance:.2f}" for r in results)


def distances(captions: list[str]) -> list[float]:
    return [float(c.split(" · ")[1]) for c in captions]


def map_photos(chart) -> list[str]:
    """The photos (labels) of the map's dots, read from the chart's data sent to the page."""
    import pyarrow as pa

    (data,) = chart.proto.datasets
    return pa.ipc.open_stream(data.data.data).read_all().column("photo").to_pylist()


# --- the walkthrough on real photos ----------------------------------------------------------------


def test_walkthrough_sections_on_real_photos(monkeypatch, photos: Path, features: Path) -> None:
    at = start(monkeypatch, photos, features)
    assert not at.error, [e.value for e in at.error]
    page = sections(at)
    assert list(page) == ["1", "2", "3", "4", "5", "6", "7", "8"]

    # 1. the dataset: counts, one photo per class, the noisy label and its captions
    s1 = page["1"]
    metrics = {m.label: m.value for m in s1 if m.type == "metric"}
    assert (metrics["Images"], metrics["Classes"]) == ("19", "6")
    samples, noisy = grids(s1)[:2]
    assert samples == sorted(SUBSET)
    assert noisy == ["labelled “bottle”"]
    assert "Pascal Sentences" in texts(s1) and "cat in a sink" in texts(s1)
    assert "A small white cat sitting in a sink." in texts(s1)

    # the sidebar offers every encoder, the default chosen, with its measured figures in the help
    box = at.selectbox(key="encoder")
    assert box.value == DEFAULT_ENCODER and list(box.options) == list(ENCODER_NAMES)
    assert all(describe(name) in box.help for name in ENCODER_NAMES)

    # 2. indexing: the encoder, its size, the first embeddings (non-negative)
    s2 = page["2"]
    assert "efficientnet-lite0" in texts(s2) and "1280 numbers" in texts(s2)
    assert "19 vectors of 1280 numbers" in texts(s2)
    table = next(n.value for n in s2 if n.type == "markdown" and n.value.startswith("| photo |")).splitlines()[2:]
    first = [row.strip("| ").split(" | ") for row in table]
    assert len(first) == 5 and all(len(row) == 11 and min(map(float, row[1:])) >= 0 for row in first)
    assert first[0][0].startswith("boat/")

    # 3. image search from the noisy bottle: distances sorted, the photo itself excluded;
    # re-weighting towards "Siamese cat" brings the cats forward
    s3 = page["3"]
    query, plain, weighted = grids(s3)
    assert query == [f"query: {NOISY}"]
    assert len(plain) == len(weighted) == 8
    assert distances(plain) == sorted(distances(plain)) and all(0 <= d <= 2 for d in distances(plain))
    assert "Siamese cat" in texts([n for n in s3 if n.type == "subheader"], "subheader")
    assert classes(weighted)[:3].count("cat") >= 2, weighted
    assert classes(weighted)[:4].count("cat") >= classes(plain)[:4].count("cat")

    # 4. words: a word's vector, similar words
    s4 = page["4"]
    assert "“cat” is 50 numbers" in texts(s4)
    assert "**dog**" in texts(s4)

    # 6. tags of the noisy bottle (untrained here: ConSE): what ImageNet sees, the cat or the sink
    tags = texts(page["6"])
    assert "**Tags:**" in tags
    assert any(f"**{w}**" in tags for w in ("cat", "cats", "kitten", "sink", "basin", "washbasin", "bathroom")), tags

    # 7. text search: the default example ("ocean") finds photos
    assert len(grids(page["7"])[0]) == 8

    # 8. the map: one dot per photo (a small store is mapped whole, no sample), coloured by class
    chart = next(n for n in page["8"] if n.type == "vega_lite_chart")
    assert '"class"' in chart.proto.spec and "category20" in chart.proto.spec
    assert sorted(map_photos(chart)) == sorted(str(p.relative_to(photos)) for p in photos.glob("*/*.jpg"))
    assert not [c for c in page["8"] if c.type == "caption" and "fixed sample" in c.value]


FIRST_PAGE = """
import json, sys, threading
from streamlit.testing.v1 import AppTest
from vector_search.app import widgets
at = AppTest.from_file(sys.argv[1], default_timeout=600).run()
assert not at.exception, [e.value for e in at.exception]
for thread in threading.enumerate():
    if thread.name == "vector_search-warm-up":
        thread.join()
def loaded():
    (engine,) = widgets.engines()._engines.values()
    return sorted(engine._parts), sorted(engine.current()._parts), sorted(m for m in ("pandas", "altair") if m in sys.modules)
first = loaded()
results = [len(img.proto.imgs) for img in at.get("imgs")]
expanders = [e.label for e in at.expander]
at.session_state["words_open"] = True
at.run()
print(json.dumps({"first": first, "expanders": expanders, "markdown": [m.value for m in at.markdown], "opened": loaded()}))
"""


def test_the_first_page_answers_text_search_without_the_words_the_tags_or_the_map(photos: Path, features: Path, monkeypatch) -> None:
    """In a fresh server process, the first page shows text search's photos without loading GloVe's 400k words,
    the tag words or the map, nor importing pandas or altair; opening section 4's box loads the words."""
    start(monkeypatch, photos, features)  # the shared store, indexed
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", FIRST_PAGE, str(APP)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    engine_parts, state_parts, modules = report["first"]
    assert "words" not in engine_parts and not [p for p in engine_parts if p.startswith("tags:")], engine_parts
    assert {"joint_space", "text_scores"} <= set(state_parts) and "image_map" not in state_parts, state_parts
    assert modules == [], modules
    assert report["expanders"] == ["A word's vector, and the words nearest a word or a phrase", "Tag a photo", "Show the map"]
    assert any("“cat” is 50 numbers" in m for m in report["markdown"])  # the box opened: the words loaded
    assert "words" in report["opened"][0]


def test_image_search_with_another_photo_upload_and_k(monkeypatch, photos: Path, features: Path) -> None:
    at = start(monkeypatch, photos, features)
    at.slider(key="k").set_value(3)
    bus = str(photos / "bus" / sorted(p.name for p in (photos / "bus").iterdir())[0])
    at.selectbox(key="search_photo").set_value(bus)
    ok(at.run())
    query, plain, weighted = grids(sections(at)["3"])
    assert query[0].startswith("query: bus/")
    assert len(plain) == 3 and classes(plain)[0] == "bus"

    # "crane" names two classes: picking 517 (the machine) re-weights by 517, not by 134 (the bird)
    at.selectbox(key="reweight_class").set_value(517)
    ok(at.run())
    _, _, weighted = grids(sections(at)["3"])
    want = Engine(features).similar_images(bus, 3, reweight=517)
    assert weighted == [f"{class_of(r.item)} · {r.distance:.3f}" for r in want]
    assert weighted != [f"{class_of(r.item)} · {r.distance:.3f}" for r in Engine(features).similar_images(bus, 3, reweight=134)]

    # an uploaded photo is decoded in memory (here a cat photo, re-encoded as PNG)
    buffer = io.BytesIO()
    Image.open(DATASET / "cat" / "2008_000116.jpg").save(buffer, format="PNG")
    at.file_uploader(key="search_upload").set_value(("my cat.png", buffer.getvalue(), "image/png"))
    ok(at.run())
    query, plain, _ = grids(sections(at)["3"])
    assert query == ["query: your photo (my cat.png)"]
    assert classes(plain)[0] == "cat" and distances(plain)[0] < 0.05  # the same photo, from its pixels

    at.file_uploader(key="search_upload").set_value(("broken.png", b"not a picture", "image/png"))
    ok(at.run())
    assert any("not an image" in e.value for e in at.error)


def files(folders: list[Path]) -> dict[Path, tuple[int, int]]:
    """Every file under the folders (caches of Python and git aside), with its size and mtime."""
    skip = {".git", "__pycache__", ".pytest_cache", ".ruff_cache"}
    return {
        f: (f.stat().st_size, f.stat().st_mtime_ns)
        for folder in folders
        for f in folder.rglob("*")
        if f.is_file() and not skip & set(f.relative_to(folder).parts)
    }


def test_an_upload_is_used_in_memory_and_never_written(monkeypatch, photos: Path, features: Path, tmp_path: Path) -> None:
    """An uploaded photo is searched with and tagged, and no file is written from it: not in the
    dataset, the store, the temporary folder or the working folder."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # a temporary file would land here
    at = start(monkeypatch, photos, features)
    watched = [photos, features, temp, Path.cwd()]
    before = files(watched)
    buffer = io.BytesIO()
    Image.open(DATASET / "cat" / "2008_000116.jpg").save(buffer, format="PNG")
    for key in ("search_upload", "tags_upload"):
        at.file_uploader(key=key).set_value(("upload-b7e1.png", buffer.getvalue(), "image/png"))
    ok(at.run())
    page = sections(at)
    assert grids(page["3"])[0] == ["query: your photo (upload-b7e1.png)"]
    assert grids(page["6"])[0] == ["your photo (upload-b7e1.png)"]
    changed = {f: stat for f, stat in files(watched).items() if before.get(f) != stat}
    assert changed == {}


def test_words_unknown_word_and_similar_words(monkeypatch, photos: Path, features: Path) -> None:
    at = start(monkeypatch, photos, features)
    at.text_input(key="word").input("qwxzvbt")
    at.text_input(key="similar_to").input("ocean")
    ok(at.run())
    s4 = sections(at)["4"]
    warning = texts(s4, "warning")
    assert "unknown word 'qwxzvbt'" in warning and "has no vector" in warning
    assert "**sea**" in texts(s4)

    at.text_input(key="word").input("")
    at.text_input(key="similar_to").input("blorfnax")
    ok(at.run())
    s4 = sections(at)["4"]
    assert "Type a word" in texts(s4, "info")
    assert "unknown word 'blorfnax'" in texts(s4, "warning")


def test_text_search_queries_and_empty_query(monkeypatch, photos: Path, features: Path) -> None:
    at = start(monkeypatch, photos, features)
    at.text_input(key="text_query").input("cat")
    ok(at.run())
    [found] = grids(sections(at)["7"])
    assert classes(found)[:3].count("cat") >= 2, found

    at.button(key="example_cat + sofa - person").click()  # an example button fills the box
    ok(at.run())
    assert at.text_input(key="text_query").value == "cat + sofa - person"
    [found] = grids(sections(at)["7"])
    assert set(classes(found[:4])) & {"cat", "sofa"}, found

    at.text_input(key="text_query").input("A fluffy cat sleeping on the couch.")  # a sentence, as people type
    ok(at.run())
    s7 = sections(at)["7"]
    [found] = grids(s7)
    assert classes(found)[:3].count("cat") + classes(found)[:3].count("sofa") >= 2, found
    counted = texts(s7, "caption")  # the sentence encoder reads the sentence whole: one term
    assert "**a fluffy cat sleeping on the couch.** 100%" in counted, counted

    at.checkbox(key="compare_glove").check()  # GloVe's answer beside the sentence encoder's
    ok(at.run())
    s7 = sections(at)["7"]
    main, sentence_side, glove_side = grids(s7)
    assert sentence_side == main[: len(sentence_side)]
    assert classes(glove_side)[:3].count("cat") + classes(glove_side)[:3].count("sofa") >= 1, glove_side
    counted = texts(s7, "caption")  # GloVe weighs the words: function words count nothing
    assert "the 0%" in counted and "on 0%" in counted and "**cat**" in counted, counted
    at.checkbox(key="compare_glove").uncheck()

    at.text_input(key="text_query").input("2:dog")
    ok(at.run())
    s7 = sections(at)["7"]
    assert "**dog** 200%" in texts(s7, "caption") and classes(grids(s7)[0])[0] == "dog"

    at.text_input(key="text_query").input("   ")
    ok(at.run())
    s7 = sections(at)["7"]
    assert "empty query" in texts(s7, "warning") and not grids(s7)


def test_tags_for_a_chosen_and_an_uploaded_photo(monkeypatch, photos: Path, features: Path) -> None:
    at = start(monkeypatch, photos, features)
    boat = str(photos / "boat" / sorted(p.name for p in (photos / "boat").iterdir())[0])
    at.selectbox(key="tags_photo").set_value(boat)
    ok(at.run())
    tags = texts(sections(at)["6"])
    assert "**Tags:**" in tags
    assert any(f"**{w}**" in tags for w in ("boat", "boats", "ship", "sailing", "yacht", "water")), tags

    buffer = io.BytesIO()
    Image.open(DATASET / "dog" / sorted(p.name for p in (DATASET / "dog").iterdir())[-1]).save(buffer, format="JPEG")
    at.file_uploader(key="tags_upload").set_value(("dog.jpg", buffer.getvalue(), "image/jpeg"))
    ok(at.run())
    s6 = sections(at)["6"]
    assert grids(s6)[0] == ["your photo (dog.jpg)"]
    assert tags_line(Engine(features).tags(io.BytesIO(buffer.getvalue()), 8)) in texts(s6)  # the library's, of those bytes


def test_retrain_hybrid_model_shows_epochs_and_losses(
    monkeypatch, training_photos: Path, tmp_path: Path, models_dir
) -> None:
    features = tmp_path / "features"
    at = start(monkeypatch, training_photos, features)
    # Indexing a folder of class folders trained the default model on its own (#21): no ConSE notice.
    assert "a **sentence** model of efficientnet-lite0 features into the sentence encoder's space" in texts(sections(at)["5"])

    assert at.selectbox(key="method").value == "sentence"  # the CLI's default
    assert at.number_input(key="epochs").disabled  # epochs are the hybrid's
    at.selectbox(key="method").set_value("hybrid")
    ok(at.run())
    at.number_input(key="epochs").set_value(5)
    at.checkbox(key="retrain").check()
    ok(at.run())
    s5 = sections(at)["5"]
    assert not at.error, [e.value for e in at.error]
    text = texts(s5)
    assert "a **hybrid** model of efficientnet-lite0 features into GloVe's space, trained on **3 classes**" in text, text
    assert "Trained **5 epochs**" in text and "final loss **-" in text and "final val_loss **-" in text
    assert any(n.type == "vega_lite_chart" for n in s5)  # the loss curve
    assert (models_dir / "joint-efficientnet-lite0.npz").is_file()
    first = str(sorted(training_photos.rglob("*.jpg"))[0])  # the tags section's default photo
    assert tags_line(Engine(features).tags(first, 8)) in texts(sections(at)["6"])  # ...by the new model

    at.text_input(key="word").input("dog")  # a rerun with the box still ticked does not train again
    ok(at.run())
    assert not [n for n in sections(at)["5"] if n.type == "progress"]
    stamp = (models_dir / "joint-efficientnet-lite0.npz").stat().st_mtime_ns

    at.checkbox(key="retrain").uncheck()  # the saved model is loaded, its curve shown
    ok(at.run())
    assert "Trained **5 epochs**" in texts(sections(at)["5"])
    assert (models_dir / "joint-efficientnet-lite0.npz").stat().st_mtime_ns == stamp


def test_retrain_blend_with_a_held_out_class(monkeypatch, training_photos: Path, tmp_path: Path) -> None:
    features = tmp_path / "features"
    at = start(monkeypatch, training_photos, features)
    at.selectbox(key="method").set_value("blend")
    at.multiselect(key="holdout").select("cat")
    at.checkbox(key="retrain").check()
    ok(at.run())
    text = texts(sections(at)["5"])
    assert "a **blend** model" in text and "**2 classes**" in text and "holding out cat" in text
    at.text_input(key="text_query").input("cat")  # cat was never a training class: still an answer
    ok(at.run())
    [found] = grids(sections(at)["7"])
    assert len(found) == 8 and not at.error


def test_regenerate_features_reembeds_every_photo(monkeypatch, photos: Path, tmp_path: Path) -> None:
    features = tmp_path / "features"
    at = start(monkeypatch, photos, features)
    assert "19 photos embedded, 0 unchanged" in texts(sections(at)["2"])
    at.text_input(key="word").input("dog")  # reruns load the store: nothing is embedded again
    ok(at.run())
    assert not [n for n in sections(at)["2"] if n.type == "progress"]

    at.checkbox(key="regenerate").check()
    ok(at.run())
    s2 = sections(at)["2"]
    assert "19 photos embedded, 0 unchanged" in texts(s2)
    assert [n.value for n in s2 if n.type == "progress"] == [100]
    at.text_input(key="word").input("cat")  # a rerun while the box stays ticked does not embed again
    ok(at.run())
    assert not [n for n in sections(at)["2"] if n.type == "progress"]


def test_map_and_pickers_of_a_store_bigger_than_their_samples(monkeypatch, photos: Path, features: Path, tmp_path: Path) -> None:
    """A store bigger than the sample sizes (here made small: 12 dots, 10 photos to pick from, of
    19) shows a fixed, seeded, class-stratified sample, the same on every rerun, and says so."""
    from vector_search.store import projection, sampling

    monkeypatch.setattr(projection, "MAP_SAMPLE", 12)
    monkeypatch.setattr(sampling, "PICKER_SAMPLE", 10)
    start(monkeypatch, photos, features)  # the shared store, indexed
    own = tmp_path / "features"
    shutil.copytree(features, own)  # a store root of its own: a fresh engine, with these sample sizes
    at = start(monkeypatch, photos, own)
    page = sections(at)
    chart = next(n for n in page["8"] if n.type == "vega_lite_chart")
    dots = map_photos(chart)
    assert len(dots) == 12 and {class_of(p) for p in dots} == set(SUBSET)  # every class shows
    assert "12 of 19 photos: a fixed sample, each class in proportion." in texts(page["8"], "caption")
    picker = at.selectbox(key="search_photo")
    assert NOISY in picker.options and len(picker.options) in (10, 11)  # the sample (+ the default photo), as labels
    assert picker.label == f"A photo from the dataset ({len(picker.options)} of 19)"

    at.text_input(key="word").input("dog")  # a rerun: the same sample
    ok(at.run())
    assert map_photos(next(n for n in sections(at)["8"] if n.type == "vega_lite_chart")) == dots
    assert at.selectbox(key="search_photo").options == picker.options
    assert Engine(own).image_map().rows.tolist() == sorted(
        i for i, p in enumerate(Engine(own).store.paths) if os.path.relpath(p, photos) in dots
    )  # a fresh process would load the same map (saved in the store)


# --- no dataset: how to get one, and the built-in gallery ------------------------------------------


def test_missing_dataset_explains_and_falls_back_to_the_gallery(monkeypatch, tmp_path: Path) -> None:
    features = tmp_path / "features"
    at = start(monkeypatch, tmp_path / "no such folder", features)
    page = sections(at)
    s1 = page["1"]
    assert f"no folder `{tmp_path / 'no such folder'}`" in texts(s1, "warning")
    how_to = texts(s1)
    assert "vector-search download pascal DEST" in how_to and "vision.cs.uiuc.edu/pascal-sentences" in how_to
    assert "<folder>/<class>/<image>.jpg" in how_to  # and how to use your own photos
    [gallery] = grids(s1)
    assert len(gallery) == 9 and "cat: Chelsea the cat" in gallery
    assert (features / "gallery" / "photos" / "cat" / "chelsea.png").is_file()

    # the gallery is indexed like any dataset, in its own store root
    assert "9 vectors of 1280 numbers" in texts(page["2"])
    query, plain, weighted = grids(page["3"])
    assert query == ["query: cat/chelsea.png"] and len(plain) == 8
    # words need no dataset
    assert "“cat” is 50 numbers" in texts(page["4"])
    # tags of Chelsea the cat
    assert "**Tags:**" in texts(page["6"])
    assert not at.error, [e.value for e in at.error]


def test_empty_folder_and_gallery_switch(monkeypatch, tmp_path: Path, photos: Path) -> None:
    features = tmp_path / "features"
    (tmp_path / "empty").mkdir()
    at = start(monkeypatch, tmp_path / "empty", features)
    assert "no images in the folder" in texts(sections(at)["1"], "warning")

    at.sidebar.text_input(key="dataset").input(str(photos))
    ok(at.run())
    assert "19 vectors" in texts(sections(at)["2"])
    at.sidebar.checkbox(key="use_gallery").check()  # the gallery on demand, with no how-to message
    ok(at.run())
    s1 = sections(at)["1"]
    assert not texts(s1, "warning") and len(grids(s1)[0]) == 9


def test_a_broken_store_is_a_message_not_a_traceback(monkeypatch, photos: Path, tmp_path: Path) -> None:
    features = tmp_path / "features"
    features.write_text("a file where the store folder should be")
    at = start(monkeypatch, photos, features)
    assert at.error and all("Traceback" not in e.value for e in at.error)
    assert "1" in sections(at)  # the dataset section still shows
