"""encoders: EfficientNet-Lite0/1/2 and VGG16 on real weights and real photos; the torch-free weight reader and cache;
stores and joint models of one encoder refusing another."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_subset
from PIL import Image
from skimage import data

from vector_search.engine import Engine
from vector_search.imaging.encoders import (
    DEFAULT_ENCODER,
    ENCODER_FIGURES,
    ENCODER_NAMES,
    LITE_NAMES,
    EncoderError,
    describe,
    encoders_help,
    get_encoder,
)
from vector_search.imaging.encoders import efficientnet_lite as lite_module
from vector_search.imaging.encoders.efficientnet_lite import SPECS, LiteEncoder, packaged_weights
from vector_search.imaging.encoders.torch_legacy import MAGIC, PROTOCOL, load_state_dict
from vector_search.imaging.imagenet import find_class
from vector_search.imaging.images import load_image
from vector_search.joint import ModelMismatchError, conse_model
from vector_search.store.folders import open_store
from vector_search.store.store import StoreError
from vector_search.store.updates import update_store

ROOT = Path(__file__).resolve().parents[1]
CATS = {find_class(n) for n in ("tabby", "tiger cat", "Egyptian cat")}
COFFEE = {find_class(n) for n in ("espresso", "cup")}


@pytest.fixture(scope="module")
def lite(lite0: LiteEncoder) -> LiteEncoder:
    """Lite0 from the user's cache: its ONNX export is made once per machine, not per test run."""
    return lite0


@pytest.fixture(scope="module")
def samples() -> list[Image.Image]:
    """scikit-image's real photos: a cat (chelsea) and a cup of coffee."""
    return [Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]


def top(probs: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-probs)[:k].tolist())


def test_import_and_construction_do_not_load_tensorflow_or_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from vector_search.imaging.encoders import get_encoder\n"
        "lite, vgg = get_encoder(), get_encoder('vgg16', weights='/nonexistent.h5')\n"
        "img = Image.new('RGB', (320, 240))\n"
        "assert lite.preprocess(img).shape == vgg.preprocess(img).shape == (224, 224, 3)\n"
        "assert lite.classifier()[0].shape == (1280, 1000)\n"
        "bad = [m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "VECTOR_SEARCH_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "encoders" / f"{packaged_weights().stem}.npz").is_file()


def test_legacy_reader_reads_real_pth_without_torch() -> None:
    pth = packaged_weights()
    assert pth.name == "efficientnet-lite0-57934424.pth"
    state = load_state_dict(pth)
    assert "torch" not in sys.modules
    assert len(state) == 296 and sum(k.endswith("num_batches_tracked") for k in state) == 49
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == np.float32
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    assert state["_blocks.0._bn1.num_batches_tracked"].shape == ()
    assert all((v >= 0).all() for k, v in state.items() if k.endswith("running_var"))


def test_legacy_reader_refuses_arbitrary_globals(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return os.mkdir, (str(tmp_path / "owned"),)

    evil = tmp_path / "evil.pth"
    evil.write_bytes(b"".join(pickle.dumps(o, protocol=2) for o in (MAGIC, PROTOCOL, {"little_endian": True}, Exploit())))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_state_dict(evil)
    assert not (tmp_path / "owned").exists()


def test_weight_cache_is_created_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = lite_module.load_state_dict
    monkeypatch.setattr(lite_module, "load_state_dict", lambda path: calls.append(path) or real(path))
    monkeypatch.setenv("VECTOR_SEARCH_CACHE", str(tmp_path))

    first = get_encoder().weights()
    cache = tmp_path / "encoders" / "efficientnet-lite0-57934424.npz"
    assert calls == [packaged_weights()] and cache.is_file()
    mtime = cache.stat().st_mtime_ns

    second = get_encoder().weights()
    assert len(calls) == 1 and cache.stat().st_mtime_ns == mtime
    assert second.keys() == first.keys() and "_blocks.0._bn1.num_batches_tracked" not in second
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert np.array_equal(get_encoder(weights=cache, cache_dir=tmp_path / "unused").classifier()[1], first["_fc.bias"])


def test_lite0_missing_weights_is_a_clear_error(tmp_path: Path) -> None:
    encoder = get_encoder(weights=tmp_path / "nope.pth", cache_dir=tmp_path)  # cheap: nothing read yet
    with pytest.raises(EncoderError, match="weights not found"):
        encoder.classifier()


def test_every_encoder_has_its_measured_figures_described() -> None:
    assert set(ENCODER_FIGURES) == set(ENCODER_NAMES) and DEFAULT_ENCODER in ENCODER_NAMES and set(LITE_NAMES) == set(SPECS)
    for name in ENCODER_NAMES:
        line, figures = describe(name), ENCODER_FIGURES[name]
        assert line.startswith(name) and f"indexing {figures['index_cost']:.1f}x" in line and "\n" not in line
        quality = "quality not measured" if figures["p_at_10"] is None else f"P@10 {figures['p_at_10']:.3f}"
        assert quality in line
    lite = [ENCODER_FIGURES[n] for n in LITE_NAMES]
    assert [f["p_at_10"] for f in lite] == sorted(f["p_at_10"] for f in lite), "the bigger members see sharper"
    assert "(default)" in describe(DEFAULT_ENCODER) and ENCODER_FIGURES[DEFAULT_ENCODER]["index_cost"] == 1.0
    assert all(describe(name) in encoders_help() for name in ENCODER_NAMES)


def test_unknown_encoder() -> None:
    with pytest.raises(EncoderError, match="efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, vgg16"):
        get_encoder("resnet")


def test_lite0_preprocess(lite: LiteEncoder, samples: list[Image.Image]) -> None:
    cat = samples[0]
    x = lite.preprocess(cat)
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    assert -127 / 128 <= x.min() and x.max() <= 128 / 128
    for image in (cat.convert("RGBA").convert("RGB"), cat.convert("RGBA"), cat.transpose(Image.Transpose.ROTATE_90)):
        assert lite.preprocess(image).shape == (224, 224, 3)
    gray = lite.preprocess(cat.convert("L").convert("RGB"))
    assert gray.shape == (224, 224, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    assert lite.preprocess(Image.new("RGB", (40, 30), (127, 127, 127))).shape == (224, 224, 3)


@pytest.fixture(scope="module")
def family() -> dict[str, LiteEncoder]:
    """Every EfficientNet-Lite member, converted and exported to ONNX once per machine in the user's cache."""
    return {name: get_encoder(name) for name in LITE_NAMES}


@pytest.mark.parametrize("name", ["efficientnet-lite1", "efficientnet-lite2"])
def test_bigger_members_read_their_own_weights(name: str) -> None:
    """Lite1 and Lite2: 21 blocks (repeats 1,3,3,4,4,5,1); Lite2 is wider (its head conv reads 352 channels)."""
    spec = SPECS[name]
    state = load_state_dict(packaged_weights(name))
    assert packaged_weights(name).name == spec.weights_file and "torch" not in sys.modules
    blocks = {k.split(".")[1] for k in state if k.startswith("_blocks.")}
    assert len(blocks) == sum(spec.repeats) == 21
    assert state["_conv_head.weight"].shape == (1280, spec.widths[-1], 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)


@pytest.mark.parametrize("name", LITE_NAMES)
def test_preprocess_crops_to_the_members_input_size(name: str, samples: list[Image.Image]) -> None:
    encoder = get_encoder(name)  # cheap: nothing read yet
    crop = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}[name]
    assert encoder.input_shape == (crop, crop, 3)
    for image in (samples[0], samples[1].transpose(Image.Transpose.ROTATE_90), Image.new("RGB", (40, 30))):
        x = encoder.preprocess(image)
        assert x.shape == (crop, crop, 3) and x.dtype == np.float32


@pytest.mark.slow
@pytest.mark.parametrize("name", LITE_NAMES)
def test_member_classifies_real_photos(name: str, family: dict[str, LiteEncoder], samples: list[Image.Image]) -> None:
    """chelsea(): the three ImageNet cat classes on top; coffee(): espresso first, a cup in the top 5."""
    encoder = family[name]
    probs = encoder.predict(np.stack([encoder.preprocess(im) for im in samples]))
    assert probs.shape == (2, 1000) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert top(probs[0], 3) == CATS, "chelsea() should be tiger cat, Egyptian cat and tabby"
    assert int(np.argmax(probs[1])) == find_class("espresso") and find_class("cup") in top(probs[1], 5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet-lite1", "efficientnet-lite2"])
def test_member_embeddings_are_deterministic(name: str, family: dict[str, LiteEncoder], pascal_dataset: Path) -> None:
    encoder = family[name]
    photos = [pascal_dataset / c / p.name for c in ("cat", "bus") for p in sorted((pascal_dataset / c).iterdir())[:3]]
    batch = np.stack([encoder.preprocess(Image.open(p)) for p in photos])
    emb = encoder.embed(batch)
    assert emb.shape == (6, 1280) and emb.dtype == np.float32
    assert np.array_equal(encoder.embed(batch), emb)  # same images twice: identical vectors
    fresh = get_encoder(name, cache_dir=encoder.cache_dir)  # a second model built from the same cache
    assert np.array_equal(fresh.embed(batch), emb)
    single = np.concatenate([encoder.embed(batch[i : i + 1]) for i in range(len(batch))])
    assert np.abs(single - emb).max() < 1e-5  # independent of batch size
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sim = unit @ unit.T
    assert (sim[:3, :3].sum() + sim[3:, 3:].sum() - 6) / 12 > sim[:3, 3:].mean() + 0.1, "cats closer to cats than to buses"


@pytest.mark.slow
@pytest.mark.parametrize("name", LITE_NAMES)
def test_onnx_vectors_equal_the_keras_models(name: str, family: dict[str, LiteEncoder], pascal_dataset: Path) -> None:
    """The exported model on ONNX Runtime gives the Keras model's vectors within 1e-4, on a real photo of each class."""
    encoder = family[name]
    photos = [sorted(folder.iterdir())[0] for folder in sorted(pascal_dataset.iterdir())]
    batch = np.stack([encoder.preprocess(load_image(p)) for p in photos])
    onnx = encoder.embed(batch)
    keras = encoder.keras_model().predict(batch, batch_size=len(batch), verbose=0)
    assert onnx.shape == keras.shape == (20, 1280) and onnx.dtype == np.float32
    assert np.abs(onnx - keras).max() < 1e-4 and np.abs(keras).max() > 1  # and not two vectors of zeros
    assert encoder.onnx_path().is_file() and encoder.onnx_path().parent == encoder.cache_dir


def test_changed_weights_are_exported_again(tmp_path: Path) -> None:
    """The export's file name is keyed by the weights file: another file, or the same one rewritten, gets another export."""
    weights = tmp_path / "weights.npz"
    weights.write_bytes(b"first")
    encoder = get_encoder(weights=weights, cache_dir=tmp_path / "cache")  # cheap: nothing read yet
    first = encoder.onnx_path()
    assert first.parent == tmp_path / "cache" and first.name.startswith("efficientnet-lite0-") and first.suffix == ".onnx"
    assert get_encoder(weights=weights, cache_dir=tmp_path / "cache").onnx_path() == first
    weights.write_bytes(b"second, longer")
    assert get_encoder(weights=weights, cache_dir=tmp_path / "cache").onnx_path() != first
    assert get_encoder(cache_dir=tmp_path / "cache").onnx_path() != first  # the packaged weights
    with pytest.raises(EncoderError, match="weights not found"):
        get_encoder(weights=tmp_path / "gone.npz").onnx_path()


@pytest.mark.slow
def test_weights_of_another_member_are_a_clear_error(tmp_path: Path) -> None:
    for name, other in (("efficientnet-lite2", "efficientnet-lite1"), ("efficientnet-lite0", "efficientnet-lite1")):
        encoder = get_encoder(name, weights=packaged_weights(other), cache_dir=tmp_path)
        with pytest.raises(EncoderError, match=f"{name} weights do not fit the model"):
            encoder.embed(np.zeros((1, *encoder.input_shape), np.float32))


@pytest.mark.slow
def test_lite0_embeddings(lite: LiteEncoder, samples: list[Image.Image], pascal_dataset: Path) -> None:
    photos = [pascal_dataset / c / p.name for c in ("cat", "bus") for p in sorted((pascal_dataset / c).iterdir())[:4]]
    batch = np.stack([lite.preprocess(Image.open(p).convert("RGB")) for p in photos])
    emb = lite.embed(batch)
    assert emb.shape == (8, 1280) and emb.dtype == np.float32
    assert np.allclose(lite.embed(batch[:1])[0], emb[0], atol=1e-4)  # independent of batch size
    assert lite.embed(batch[:0]).shape == (0, 1280)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sim = unit @ unit.T
    within = (sim[:4, :4].sum() + sim[4:, 4:].sum() - 8) / 24
    assert within > sim[:4, 4:].mean() + 0.1, "cats should be closer to cats than to buses"
    with pytest.raises(ValueError, match="224, 224, 3"):
        lite.embed(np.zeros((1, 256, 256, 3), np.float32))


@pytest.mark.slow
def test_lite0_embed_is_thread_safe(lite: LiteEncoder, samples: list[Image.Image]) -> None:
    batch = np.stack([lite.preprocess(im) for im in samples])
    expected = lite.embed(batch)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(lite.embed(batch))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(np.allclose(r, expected, atol=1e-5) for r in results)


def test_vgg16_preprocess_is_caffe_bgr(samples: list[Image.Image]) -> None:
    vgg = get_encoder("vgg16", weights="random")
    red = vgg.preprocess(Image.new("RGB", (500, 300), (255, 0, 0)))
    assert red.shape == (224, 224, 3) and red.dtype == np.float32
    assert np.allclose(red[0, 0], [-103.939, -116.779, 255 - 123.68])
    assert vgg.preprocess(samples[1].convert("L")).shape == (224, 224, 3)


@pytest.mark.slow
def test_vgg16_random_weights_shapes(samples: list[Image.Image]) -> None:
    vgg = get_encoder("vgg16", weights="random")
    batch = np.stack([vgg.preprocess(im) for im in samples])
    emb = vgg.embed(batch)
    assert emb.shape == (2, 4096) and emb.dtype == np.float32
    W, b = vgg.classifier()
    assert W.shape == (4096, 1000) and b.shape == (1000,) and W.dtype == np.float32
    assert np.allclose(vgg.predict(batch).sum(axis=1), 1, atol=1e-5)


def test_vgg16_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    vgg = get_encoder("vgg16", weights=tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    with pytest.raises(EncoderError, match="VGG16 weights not found"):
        vgg.embed(np.zeros((1, 224, 224, 3), np.float32))


@pytest.mark.slow
def test_vgg16_weights_that_cannot_be_downloaded_give_a_clear_error(tmp_path: Path) -> None:
    """No cached VGG16 weights and no network (an empty KERAS_HOME; every download goes through a
    proxy that refuses): one line, naming --weights. In a fresh interpreter: Keras reads KERAS_HOME
    when it is imported."""
    code = (
        "from vector_search.imaging.encoders import EncoderError, get_encoder\n"
        "try:\n"
        "    get_encoder('vgg16').classifier()\n"
        "except EncoderError as e:\n"
        "    print('EncoderError:', e)\n"
    )
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "http_proxy": closed, "https_proxy": closed, "HTTP_PROXY": closed, "HTTPS_PROXY": closed}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [line] = [line for line in proc.stdout.splitlines() if line.startswith("EncoderError:")]
    assert "could not be downloaded" in line and "--weights" in line


@pytest.mark.slow
def test_a_store_of_one_encoder_refuses_another(tmp_path: Path, pascal_dataset: Path, family: dict[str, LiteEncoder], tmp_glove) -> None:
    """Each encoder has its own store; an engine on another encoder, or a joint model of another, is refused."""
    photos = copy_subset(tmp_path / "photos", {"cat": 3, "bus": 3})
    root, cat = tmp_path / "features", next((photos / "cat").iterdir())
    lite0, _ = update_store(photos, root, "efficientnet-lite0", encoder=family["efficientnet-lite0"])
    with pytest.raises(StoreError, match=r"no feature store at .*efficientnet-lite2.*vector-search index"):
        Engine(root, encoder_name="efficientnet-lite2").similar_images(cat)

    with pytest.raises(StoreError, match="efficientnet-lite2 encoder cannot write the efficientnet-lite0 store"):
        update_store(photos, root, "efficientnet-lite0", encoder=family["efficientnet-lite2"])
    lite2, _ = update_store(photos, root, "efficientnet-lite2", encoder=family["efficientnet-lite2"])
    assert open_store(root, "efficientnet-lite2").encoder == "efficientnet-lite2"
    assert open_store(root, "efficientnet-lite0").encoder == "efficientnet-lite0"
    assert lite0.vectors.shape == lite2.vectors.shape == (6, 1280)  # same shape, other space: only the record tells them apart
    assert not np.allclose(lite0.vectors, lite2.vectors, atol=1e-2)

    model = tmp_path / "joint-lite0.npz"
    conse_model(family["efficientnet-lite0"].classifier(), tmp_glove, "efficientnet-lite0").save(model)
    with pytest.raises(ModelMismatchError, match="trained on efficientnet-lite0 features, not efficientnet-lite2"):
        Engine(root, encoder_name="efficientnet-lite2", model_path=model).search("cat", k=3)
    outside = sorted((pascal_dataset / "cat").iterdir())[3]  # not indexed: embedded by the store's own encoder
    hits = Engine(root, encoder_name="efficientnet-lite2").similar_images(outside, k=3)
    assert {Path(h.item).parent.name for h in hits} == {"cat"}


def test_the_docs_show_the_encoder_figures_kept_in_code() -> None:
    """ENCODER_FIGURES is the one place the figures are kept: docs/encoders.md shows them as they are."""
    from vector_search.imaging.encoders import figures_table

    table = figures_table()
    assert table.count("\n") == len(ENCODER_NAMES) + 1 and "0.564 / 0.413" in table
    assert table in (Path(__file__).resolve().parents[1] / "docs" / "encoders.md").read_text(encoding="utf-8"), (
        "docs/encoders.md is stale: paste figures_table() into it"
    )
