"""Datasets: what is in an image folder, and downloading Pascal Sentences.

Pascal Sentences (Rashtchian et al., 2010) is 1000 Pascal VOC 2008 photos, 20 classes x 50,
each with about 5 captions. Its home page, http://vision.cs.uiuc.edu/pascal-sentences/, is one
`index.html`: a table with a row per photo, the photo as `<img src="<class>/<id>.jpg">` and its
captions in a nested table (some mirrors link a `<class>/<id>.txt` instead). The downloader
writes the layout the project expects:

    DEST/dataset/<class>/<id>.jpg     class folders renamed to words (diningtable -> dining_table)
    DEST/sentence/<class>/<id>.txt    one caption a line
    DEST/dataset.sha256               `cd DEST/dataset && sha256sum -c ../dataset.sha256`

Every file is written atomically, so a run that is interrupted (or loses the network) can
simply be started again: files already there are kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence
from urllib.parse import unquote, urljoin, urlsplit

from vector_search import fileio
from vector_search.errors import VectorSearchError
from vector_search.imaging.images import IMAGE_EXTENSIONS, class_of, find_images

if TYPE_CHECKING:
    from vector_search.store.store import Store

log = logging.getLogger(__name__)
PASCAL_URL = "http://vision.cs.uiuc.edu/pascal-sentences/"
PASCAL_CLASSES = {"diningtable": "dining_table", "pottedplant": "potted_plant", "tvmonitor": "tv_monitor"}
PASCAL_CLASS_NAMES = frozenset(
    "aeroplane bicycle bird boat bottle bus car cat chair cow dining_table dog horse motorbike person "
    "potted_plant sheep sofa train tv_monitor".split()
)
NOISY_EXAMPLE = "bottle/2008_000112.jpg"  # labelled bottle, shows a cat in a sink
USER_AGENT = "vector-search (Pascal Sentences downloader; +https://pypi.org/project/vector_search/)"
MAX_FILE_BYTES = 20 * 2**20  # a Pascal photo is ~100 kB; anything this big is not one
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

HOW_TO_GET_DATA = """\
**Get Pascal Sentences** (1000 photos, 20 classes, ~120 MB) from its home page, {url}:

```
vector-search download pascal DEST
```

It writes `DEST/dataset/<class>/<id>.jpg` and the captions in `DEST/sentence/`; a second run
resumes an interrupted one. Then point the app at `DEST/dataset` (sidebar, or
`VECTOR_SEARCH_DATASET=DEST/dataset streamlit run app.py`); `vector-search download pascal .`
fills this project's `dataset/` folder, the app's default.

**Or use your own photos**: any folder laid out as `<folder>/<class>/<image>.jpg` (the folder
name is the label) works the same way.
"""


class CaptionsNotFoundError(VectorSearchError, FileNotFoundError):
    """A captions folder that does not exist."""


class DownloadError(VectorSearchError, RuntimeError):
    """A download that cannot go on (offline, site gone or changed); one-line message."""


# --- what is in a folder ----------------------------------------------------------------------------


@dataclass
class DatasetSummary:
    """The images of a dataset folder, by class (relative paths, sorted)."""

    folder: str
    classes: dict[str, list[str]]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)

    @property
    def n_images(self) -> int:
        return sum(len(paths) for paths in self.classes.values())

    def samples(self) -> dict[str, str]:
        """One photo per class (the first), as a path joined to the folder."""
        return {name: os.path.join(self.folder, paths[0]) for name, paths in self.classes.items()}

    @property
    def looks_like_pascal(self) -> bool:
        """Whether every class is a Pascal Sentences class (the set or a subset of it)."""
        return bool(self.classes) and set(self.classes) <= PASCAL_CLASS_NAMES

    def paths(self) -> list[str]:
        """Every photo, as a path joined to the folder, class by class."""
        return [os.path.join(self.folder, p) for paths in self.classes.values() for p in paths]


def summarize(folder: str | os.PathLike) -> DatasetSummary:
    """Count the images of a folder by class; FileNotFoundError if it is not a folder."""
    paths, problems = find_images(folder)
    classes: dict[str, list[str]] = {}
    for path in paths:
        classes.setdefault(class_of(path) or ".", []).append(path)
    return DatasetSummary(str(folder), dict(sorted(classes.items())), problems)


def captions(image: str | os.PathLike) -> list[str]:
    """The captions of a dataset photo, read from `<dataset>/../sentence/<class>/<id>.txt`; [] if none."""
    image = Path(image)
    try:
        return caption_lines(image.parent.parent.parent / "sentence" / image.parent.name / f"{image.stem}.txt")
    except OSError:
        return []


def caption_lines(path: Path) -> list[str]:
    """The non-empty lines of a caption file (undecodable bytes replaced); OSError if unreadable."""
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def default_captions_dir(dataset: str | os.PathLike) -> Path | None:
    """`<dataset>/../sentence` if it is a folder (the Pascal Sentences layout), else None."""
    folder = Path(dataset).parent / "sentence"
    return folder if folder.is_dir() else None


def store_captions(store: Store, folder: str | os.PathLike | bool = True) -> list[list[str]] | None:
    """Each photo of a feature store's captions, from `folder` (True: `<dataset>/../sentence` if it
    exists, False: none); None when there is no folder or no photo has a caption. An unreadable
    caption file is logged and costs its photo's captions only."""
    root = default_captions_dir(store.dataset) if folder is True else (Path(folder) if folder else None)
    if root is None:
        return None
    found, problems = read_captions(root, [item.path for item in store.items])
    for problem in problems:
        log.warning("caption file skipped: %s", problem)
    return found if any(found) else None


def read_captions(captions_dir: str | os.PathLike, items: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """Each photo's captions, one file per photo and one caption a line: `items` are paths relative
    to the dataset (`cat/1.jpg` -> `<captions_dir>/cat/1.txt`), [] for a photo without a file.
    Also one line per file that could not be read: a bad file costs its own photo's captions only."""
    root = Path(captions_dir)
    if not root.is_dir():
        raise CaptionsNotFoundError(f"no captions folder at {root}")
    found: list[list[str]] = []
    problems: list[str] = []
    for item in items:
        path = root / Path(item).with_suffix(".txt")
        try:
            found.append(caption_lines(path))
        except FileNotFoundError:
            found.append([])
        except OSError as err:
            problems.append(f"{path}: {err.strerror or err}")
            found.append([])
    return found, problems


# --- downloading Pascal Sentences ----------------------------------------------------------------


@dataclass
class PascalPhoto:
    """One row of the Pascal Sentences page."""

    category: str  # the class folder, renamed (dining_table)
    filename: str  # 2008_000032.jpg
    image_url: str
    sentences: list[str] = field(default_factory=list)
    sentence_url: str | None = None


@dataclass
class DownloadReport:
    images: int = 0  # downloaded now
    sentences: int = 0  # caption files written now
    kept: int = 0  # photos already there from an earlier run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)


class _IndexParser(HTMLParser):
    """Collects <img> photos, the text of the leaf table cells after each (captions), and .txt links."""

    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.photos: list[PascalPhoto] = []
        self._cells: list[list[str]] = []  # text buffers of the open <td>s
        self._leaf: list[bool] = []  # whether each open <td> has no <td> inside
        self._links = 0  # open <a> elements: link text is never a caption

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "td":
            if self._leaf:
                self._leaf[-1] = False
            self._cells.append([])
            self._leaf.append(True)
        elif tag == "img" and attr.get("src"):
            photo = _photo_from_url(urljoin(self.base_url, attr["src"] or ""))
            if photo is not None:
                self.photos.append(photo)
        elif tag == "a":
            self._links += 1
            href = urljoin(self.base_url, attr.get("href") or "")
            if self.photos and urlsplit(href).path.lower().endswith(".txt"):
                self.photos[-1].sentence_url = href

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._links = max(0, self._links - 1)
        elif tag == "td" and self._cells:
            text = " ".join("".join(self._cells.pop()).split())
            leaf = self._leaf.pop()
            if leaf and text and self.photos:
                self.photos[-1].sentences.append(text)

    def handle_data(self, data: str) -> None:
        if self._cells and not self._links:
            self._cells[-1].append(data)


def _photo_from_url(url: str) -> PascalPhoto | None:
    """A photo whose URL ends in `<class>/<file>.<image extension>`, with safe names; else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if len(segments) < 2:
        return None
    category, filename = segments[-2], segments[-1]
    if not (_SAFE_NAME.fullmatch(category) and _SAFE_NAME.fullmatch(filename)):
        return None
    if Path(filename).suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    return PascalPhoto(PASCAL_CLASSES.get(category, category), filename, url)


def parse_index(html: str, base_url: str = PASCAL_URL) -> list[PascalPhoto]:
    """The photos listed on a Pascal Sentences page, in page order, without duplicates."""
    parser = _IndexParser(base_url)
    parser.feed(html)
    parser.close()
    seen: set[tuple[str, str]] = set()
    photos = []
    for photo in parser.photos:
        key = (photo.category, photo.filename)
        if key not in seen:
            seen.add(key)
            photos.append(photo)
    return photos


def _offline(url: str) -> DownloadError:
    host = urlsplit(url).netloc or url
    return DownloadError(
        f"cannot reach {host}: you seem to be offline; connect and run again (finished files are kept), "
        "or use a folder of your own photos (<folder>/<class>/<image>.jpg)"
    )


def _is_network_down(err: BaseException) -> bool:
    """Errors that mean no connection at all (no DNS, refused, unreachable), not a bad file."""
    if isinstance(err, urllib.error.HTTPError):
        return False
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    return isinstance(reason, (socket.gaierror, ConnectionError, OSError)) and not isinstance(reason, TimeoutError)


def fetch(url: str, timeout: float = 30.0, retries: int = 3, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """GET a URL. Timeouts and server errors (5xx, 429) are retried with backoff.

    Raises DownloadError (offline) when there is no connection, urllib.error.HTTPError for a
    missing file, and TimeoutError when every attempt timed out.
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise urllib.error.HTTPError(url, 413, f"larger than {max_bytes // 2**20} MiB", {}, None)  # type: ignore[arg-type]
            return data
        except urllib.error.HTTPError as err:
            if err.code < 500 and err.code != 429 or attempt == retries:
                raise
        except (TimeoutError, socket.timeout) as err:
            if attempt == retries:
                raise TimeoutError(f"timed out after {retries + 1} attempts") from err
        except (urllib.error.URLError, OSError) as err:
            if isinstance(err, urllib.error.URLError) and isinstance(err.reason, (TimeoutError, socket.timeout)):
                if attempt == retries:
                    raise TimeoutError(f"timed out after {retries + 1} attempts") from err
            elif _is_network_down(err):
                raise _offline(url) from None
            elif attempt == retries:
                raise
        time.sleep(min(2.0**attempt, 8.0))
    raise AssertionError("unreachable")


def download_pascal_sentences(
    dest: str | os.PathLike,
    progress: Callable[[int, int], None] | None = None,
    url: str = PASCAL_URL,
    timeout: float = 30.0,
    retries: int = 3,
) -> DownloadReport:
    """Download Pascal Sentences into `dest` (see the module docstring); resumes an earlier run.

    `progress(done, total)` is called after each photo. Raises DownloadError when the page cannot
    be reached (offline) or lists no photos, or when the connection drops midway (run again to
    resume); files that fail on their own (HTTP 404, a timeout) are listed in the report.
    """
    dest = Path(dest)
    try:
        page = fetch(url, timeout, retries)
    except TimeoutError:
        raise DownloadError(f"cannot reach {url}: timed out; you may be offline or the site is down") from None
    except urllib.error.HTTPError as err:
        raise DownloadError(f"cannot get {url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"cannot get {url}: {getattr(err, 'reason', err)}") from None
    photos = parse_index(page.decode("utf-8", errors="replace"), url)
    if not photos:
        raise DownloadError(f"no photos found on {url}: has the page changed?")

    report = DownloadReport()
    images = dest / "dataset"
    for done, photo in enumerate(photos, 1):
        image_file = images / photo.category / photo.filename
        text_file = dest / "sentence" / photo.category / f"{Path(photo.filename).stem}.txt"
        try:
            if image_file.is_file() and image_file.stat().st_size > 0:
                report.kept += 1
            else:
                _write(image_file, fetch(photo.image_url, timeout, retries))
                report.images += 1
            if not text_file.is_file():
                lines = photo.sentences
                if photo.sentence_url and not lines:
                    text = fetch(photo.sentence_url, timeout, retries).decode("utf-8", errors="replace")
                    lines = [line.strip() for line in text.splitlines() if line.strip()]
                if lines:
                    _write(text_file, "".join(f"{line}\n" for line in lines).encode("utf-8"))
                    report.sentences += 1
        except DownloadError as err:
            raise DownloadError(f"{err} ({done - 1} of {len(photos)} photos done)") from None
        except urllib.error.HTTPError as err:
            report.failed.append((photo.image_url, f"HTTP {err.code} {err.reason}"))
        except (TimeoutError, urllib.error.URLError) as err:
            report.failed.append((photo.image_url, str(getattr(err, "reason", err))))
        except OSError as err:
            raise DownloadError(f"cannot write to {dest}: {err.strerror or err}") from None
        if progress:
            progress(done, len(photos))
    write_checksums(images)
    return report


def _write(path: Path, data: bytes) -> None:
    with fileio.atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_checksums(folder: str | os.PathLike) -> Path:
    """Write `<folder>/../<folder name>.sha256` for the images under folder (`sha256sum -c` format)."""
    folder = Path(folder)
    paths, _ = find_images(folder)
    lines = []
    for rel in paths:
        h = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
        lines.append(f"{h}  ./{Path(rel).as_posix()}\n")
    out = folder.parent / f"{folder.name}.sha256"
    with fileio.atomic_path(out) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
    return out
