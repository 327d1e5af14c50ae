"""The app's data helpers: the built-in gallery, the Pascal Sentences downloader and dataset
summary (vector_search.datasets.pascal), and the 2-D map (vector_search.store.projection)."""

from __future__ import annotations

import base64
import http.server
import io
import shutil
import socket
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import CAT, PHOTOS
from PIL import Image

from vector_search.datasets import gallery
from vector_search.datasets import pascal as datasets
from vector_search.datasets.pascal import DownloadError, download_pascal_sentences, parse_index
from vector_search.imaging.images import find_images, load_image, thumbnail_uri
from vector_search.store.projection import project_2d

# --- gallery -------------------------------------------------------------------------------------


def test_gallery_exports_real_photos_once(tmp_path: Path) -> None:
    folder = gallery.export_gallery(gallery.gallery_photos_dir(tmp_path))
    assert folder == tmp_path / "gallery" / "photos"
    paths, problems = find_images(folder)
    assert not problems
    assert len(paths) == len(gallery.PHOTOS) >= 8
    assert "cat/chelsea.png" in paths and "coffee/coffee.png" in paths and "astronaut/astronaut.png" in paths
    cat = load_image(folder / "cat" / "chelsea.png")
    assert cat.mode == "RGB" and cat.size == (451, 300)
    assert np.asarray(cat).std() > 20  # a real photo, not a blank
    assert gallery.description(folder / "cat" / "chelsea.png") == "Chelsea the cat"
    assert gallery.description(folder / "dog" / "chelsea.png") is None

    stamp = (folder / "cat" / "chelsea.png").stat().st_mtime_ns
    gallery.export_gallery(folder)  # second call: nothing rewritten
    assert (folder / "cat" / "chelsea.png").stat().st_mtime_ns == stamp
    assert not list(folder.rglob("*.tmp"))


def test_a_damaged_gallery_photo_is_exported_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A gallery photo cut short, emptied or with flipped bytes (each PNG chunk has a CRC-32) is
    written again, with one line; an intact one is left alone."""
    folder = gallery.export_gallery(tmp_path / "photos")
    cat, cup = folder / "cat" / "chelsea.png", folder / "coffee" / "coffee.png"
    good, stamp = cat.read_bytes(), cup.stat().st_mtime_ns
    for damaged in (good[: len(good) // 2], b"", good[:5000] + bytes(b ^ 0xFF for b in good[5000:5064]) + good[5064:]):
        cat.write_bytes(damaged)
        gallery.export_gallery(folder)
        assert cat.read_bytes() == good and f"the gallery photo {cat} is damaged: exporting it again" in caplog.text
    assert cup.stat().st_mtime_ns == stamp


def test_gallery_reports_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(gallery.GalleryError, match="cannot write the gallery"):
        gallery.export_gallery(blocker / "photos")


# --- dataset summary -------------------------------------------------------------------------------


def test_summarize_counts_classes_and_samples(fixture_dataset: Path) -> None:
    (fixture_dataset / "notes.txt").write_text("not an image")
    summary = datasets.summarize(fixture_dataset)
    assert summary.n_images == 12
    assert list(summary.classes) == ["cat", "cup", "rocket"]
    assert not summary.looks_like_pascal  # cups and rockets are no Pascal classes
    samples = summary.samples()
    assert set(samples) == {"cat", "cup", "rocket"}
    assert all(Path(p).is_file() and Path(p).parent.name == c for c, p in samples.items())
    assert len(summary.paths()) == 12
    shutil.rmtree(fixture_dataset / "cup")
    shutil.rmtree(fixture_dataset / "rocket")
    assert datasets.summarize(fixture_dataset).looks_like_pascal  # a subset of Pascal's classes


def test_summarize_own_folder_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "mine" / "kittens").mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "mine" / "kittens" / "a.png")
    summary = datasets.summarize(tmp_path / "mine")
    assert summary.n_images == 1 and not summary.looks_like_pascal
    with pytest.raises(FileNotFoundError):
        datasets.summarize(tmp_path / "nowhere")


def test_captions_are_read_from_the_sentence_folder_beside_the_dataset(fixture_dataset: Path) -> None:
    cat = next((fixture_dataset / "cat").iterdir())
    lines = datasets.captions(cat)
    assert len(lines) == 5 and all(line.strip() == line and line for line in lines) and "cat" in lines[0]
    assert datasets.captions(fixture_dataset / "cat" / "missing.jpg") == []


@pytest.mark.slow
def test_captions_of_the_noisy_bottle(pascal_dataset: Path) -> None:
    lines = datasets.captions(pascal_dataset / datasets.NOISY_EXAMPLE)
    assert len(lines) == 5 and all("cat" in line.lower() for line in lines)
    assert datasets.captions(pascal_dataset / "cat" / "missing.jpg") == []


def test_thumbnail_uri_is_a_small_jpeg() -> None:
    uri = thumbnail_uri(CAT, 48)
    picture = Image.open(io.BytesIO(base64.b64decode(uri.removeprefix("data:image/jpeg;base64,"))))
    assert uri.startswith("data:image/jpeg;base64,") and len(uri) < 6000 and picture.width == 48


# --- Pascal Sentences downloader -------------------------------------------------------------------

PAGE = """<html><body><table>
<tr><td><img src="cat/{cat}"></td><td><table>
  <tr><td> A cat &amp; a sofa. </td></tr><tr><td>Second caption</td></tr></table></td></tr>
<tr><td><img src="diningtable/{table}"/></td><td><table><tr><td>A table.</td></tr></table></td></tr>
<tr><td><img src="tvmonitor/{tv}"></td><td><a href="tvmonitor/{tv_txt}">captions</a></td></tr>
<tr><td><img src="cat/2008_999999.jpg"></td><td><table><tr><td>Gone.</td></tr></table></td></tr>
<tr><td><img src="../../../etc/passwd"></td></tr>
</table></body></html>"""


@pytest.fixture
def pascal_site(tmp_path: Path):
    """A local copy of the Pascal Sentences page layout serving 3 real photos (and one 404)."""
    site = tmp_path / "site"
    photos = dict(zip(["cat", "diningtable", "tvmonitor"], sorted(PHOTOS.glob("*/*.jpg"))[::4]))
    for folder, photo in photos.items():
        (site / folder).mkdir(parents=True)
        shutil.copy(photo, site / folder / photo.name)
    tv = photos["tvmonitor"]
    (site / "tvmonitor" / f"{tv.stem}.txt").write_text("A screen.\n\nAn old monitor.\n")
    (site / "index.html").write_text(
        PAGE.format(cat=photos["cat"].name, table=photos["diningtable"].name, tv=tv.name, tv_txt=f"{tv.stem}.txt")
    )
    handler = partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", photos
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_parse_index_reads_photos_captions_and_links() -> None:
    photos = parse_index(PAGE.format(cat="a.jpg", table="b.jpg", tv="c.jpg", tv_txt="c.txt"), "http://x.org/p/")
    assert [(p.category, p.filename) for p in photos] == [
        ("cat", "a.jpg"),
        ("dining_table", "b.jpg"),
        ("tv_monitor", "c.jpg"),
        ("cat", "2008_999999.jpg"),
    ]
    assert photos[0].sentences == ["A cat & a sofa.", "Second caption"]
    assert photos[0].image_url == "http://x.org/p/cat/a.jpg"
    assert photos[2].sentences == [] and photos[2].sentence_url == "http://x.org/p/tvmonitor/c.txt"


def test_download_writes_the_project_layout_and_resumes(tmp_path: Path, pascal_site) -> None:
    url, photos = pascal_site
    dest = tmp_path / "pascal"
    calls: list[tuple[int, int]] = []
    report = download_pascal_sentences(dest, progress=lambda d, t: calls.append((d, t)), url=url, retries=0)
    assert report.images == 3 and report.kept == 0 and report.sentences == 3
    assert [u.rsplit("/", 1)[1] for u, _ in report.failed] == ["2008_999999.jpg"]
    assert "404" in report.failed[0][1]
    assert calls[-1] == (4, 4) and len(calls) == 4
    cat = dest / "dataset" / "cat" / photos["cat"].name
    assert cat.read_bytes() == photos["cat"].read_bytes()
    assert (dest / "dataset" / "dining_table" / photos["diningtable"].name).is_file()  # renamed class folder
    assert (dest / "sentence" / "cat" / f"{photos['cat'].stem}.txt").read_text() == "A cat & a sofa.\nSecond caption\n"
    tv_text = dest / "sentence" / "tv_monitor" / f"{photos['tvmonitor'].stem}.txt"
    assert tv_text.read_text() == "A screen.\nAn old monitor.\n"
    sums = (dest / "dataset.sha256").read_text().splitlines()
    assert len(sums) == 3 and all(line.split("  ")[1].startswith("./") for line in sums)
    assert not list(dest.rglob("*.tmp")) and not (tmp_path / "etc").exists()

    cat.unlink()  # an interrupted run: the rest is kept, the missing photo fetched again
    report = download_pascal_sentences(dest, url=url, retries=0)
    assert (report.images, report.kept, report.sentences) == (1, 2, 0)
    assert cat.read_bytes() == photos["cat"].read_bytes()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_offline_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"^cannot reach 127\.0\.0\.1:\d+: you seem to be offline; ") as info:
        download_pascal_sentences(tmp_path, url=f"http://127.0.0.1:{_closed_port()}/", timeout=2)
    assert "\n" not in str(info.value)
    assert not any(tmp_path.iterdir())


def test_download_timeout_is_reported(tmp_path: Path) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(DownloadError, match="timed out"):
            download_pascal_sentences(tmp_path, url=url, timeout=0.3, retries=0)


def test_download_rejects_a_page_without_photos(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html><body>Moved.</body></html>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DownloadError, match="no photos found"):
            download_pascal_sentences(tmp_path / "out", url=f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()


# --- 2-D projection --------------------------------------------------------------------------------


def test_project_2d_separates_clusters_deterministically() -> None:
    rng = np.random.default_rng(0)
    centres = np.abs(rng.normal(size=(3, 64))) * 3
    vectors = np.concatenate([c + np.abs(rng.normal(size=(20, 64))) * 0.3 for c in centres]).astype(np.float32)
    labels = np.repeat(np.arange(3), 20)
    for method in ("tsne", "pca"):
        points = project_2d(vectors, method=method)
        assert points.shape == (60, 2) and points.dtype == np.float32 and np.isfinite(points).all()
        assert np.array_equal(points, project_2d(vectors, method=method))
        # every point's nearest neighbour on the map is from its own cluster
        d = np.linalg.norm(points[:, None] - points[None], axis=2)
        np.fill_diagonal(d, np.inf)
        assert (labels[d.argmin(axis=1)] == labels).mean() > 0.95


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5])
def test_project_2d_small_sets(n: int) -> None:
    points = project_2d(np.random.default_rng(1).random((n, 8)))
    assert points.shape == (n, 2) and np.isfinite(points).all()


def test_project_2d_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown projection"):
        project_2d(np.ones((4, 3)), method="umap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        project_2d(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        project_2d(np.array([[1.0, np.nan], [0.0, 1.0]]))
    assert not project_2d(np.ones((6, 3))).any()  # identical points: all at the origin
