"""Atomic, pickle-free file writes and reads shared by every module that saves to disk.

Every save writes a temporary file beside its target and renames it over the target only once
it is complete, so a reader sees the old file or the new one, never half of one. When a save
fails (a full disk, a quota, a file-size limit, anything) the temporary is removed and the
target is untouched; a full disk is reported as one DiskFullError line.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import signal
import tempfile
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence

import numpy as np

from vector_search import config
from vector_search.errors import VectorSearchError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, over RLIMIT_FSIZE


class DiskFullError(VectorSearchError, OSError):
    """A save ran out of space (or quota, or allowed file size); the previous file is kept."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.errno = code


def _disk_full_code(err: OSError) -> int | None:
    """The errno of a full-disk error, else None (annoy reports it only in its message)."""
    if err.errno in DISK_FULL:
        return err.errno
    return next((code for code in DISK_FULL if f"{os.strerror(code)} ({code})" in str(err)), None)


class DamagedFileError(VectorSearchError, ValueError):
    """A file whose bytes differ from the checksum saved with it (flipped, cut, or replaced)."""


_checked: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime) -> checksum, once per process
_checked_lock = threading.Lock()


def checksum(path: str | os.PathLike) -> str:
    """CRC-32 (hex) of a file's bytes, streamed 1 MiB at a time (1 GB/s: it catches damage, not
    forgery). Computed at most once per process for each version of a file (path, inode, size, mtime)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    with _checked_lock:
        if key in _checked:
            return _checked[key]
    crc = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            crc = zlib.crc32(chunk, crc)
    with _checked_lock:
        _checked[key] = f"{crc:08x}"
    return _checked[key]


def verify(path: str | os.PathLike, expected: object) -> None:
    """Raise DamagedFileError unless `path` has the checksum `expected` (saved beside it when written):
    no file reaches a parser or a native library before it passed this."""
    if not isinstance(expected, str) or checksum(path) != expected:
        raise DamagedFileError(f"{path} is damaged (its bytes differ from the checksum saved with it)")


@contextmanager
def checked_path(path: str | os.PathLike) -> Iterator[Path]:
    """`atomic_path`, also recording the file's checksum in PATH.crc32 (both replaced as one: a
    crash between their renames leaves a mismatch, which `intact` reports): for a cached file that
    has no sidecar of its own (converted weights, an exported model)."""
    with atomic_paths(path, f"{path}.crc32") as (tmp, crc):
        yield tmp
        crc.write_text(checksum(tmp))


def intact(path: str | os.PathLike) -> bool:
    """Whether a file saved by `checked_path` is there with the checksum it was saved with."""
    try:
        verify(path, Path(f"{path}.crc32").read_text().strip())
        return True
    except (OSError, ValueError):
        return False


def sha256_of(file: BinaryIO) -> str:
    """SHA-256 (hex) of the rest of an open binary file, read 1 MiB at a time."""
    h = hashlib.sha256()
    for chunk in iter(lambda: file.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path` (atomic on POSIX)."""
    with atomic_paths(path) as (tmp,):
        yield tmp


@contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield a temporary path beside each of `paths`; when the block succeeds, fsync them all,
    then rename each over its path. Files that must agree (a model and its sidecar) are thus
    replaced together or not at all: a failure anywhere leaves every target as it was, and no
    temporary behind."""
    targets = [Path(p) for p in paths]
    refuse_in_read_only_mode(targets[0])
    tmps: list[Path] = []
    try:
        for path in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            tmps.append(Path(tmp))
        yield tmps
        for tmp in tmps:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; saved files are ordinary readable files
        for tmp, path in zip(tmps, targets):
            rename(tmp, path)
        for folder in {path.parent for path in targets}:
            fsync_dir(folder)
    except OSError as err:
        _raise_disk_full(err, targets[0])
        raise
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


_renames = 0  # atomic renames this process made (for the fault-injection hook)


def rename(source: Path, target: Path) -> None:
    """os.replace, with the fault-injection hook config.kill_at_rename (tests kill a save at every rename)."""
    global _renames
    _renames += 1
    if _renames == config.kill_at_rename():
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace(source, target)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make the renames and removals in `folder` durable (a power loss then keeps them)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ReadOnlyModeError(VectorSearchError, OSError):
    """A save refused because the server runs read-only ($VECTOR_SEARCH_READONLY): caches stay in memory.
    Its message alone when printed (an OSError of two arguments prints as a tuple), errno EROFS."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.errno = errno.EROFS


def refuse_in_read_only_mode(target: Path) -> None:
    """Every save goes through here: in read-only mode (config.read_only) nothing is written anywhere."""
    if config.read_only():
        raise ReadOnlyModeError(f"read-only mode ($VECTOR_SEARCH_READONLY): {target} is not saved")


def _raise_disk_full(err: OSError, target: Path) -> None:
    """Raise a one-line DiskFullError for `err` if it means a full disk (else return)."""
    code = _disk_full_code(err)
    if code is not None and not isinstance(err, DiskFullError):
        raise DiskFullError(f"cannot save {target}: {os.strerror(code).lower()}; the previous version is kept", code) from err


@contextmanager
def appending(path: str | os.PathLike, keep_bytes: int) -> Iterator[Callable[[bytes | memoryview], None]]:
    """Open `path` (created if absent) to write after its first `keep_bytes` bytes, which are never
    touched: whatever lies past them (left by a killed writer) is cut first, and cut again if the
    block fails, so the file ends as it was. Yields `write(data)`; on success the new bytes are fsynced."""
    path = Path(path)
    refuse_in_read_only_mode(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+b", buffering=0) as f:  # unbuffered: nothing is left to land after a cut

        def write(data: bytes | memoryview) -> None:
            view = memoryview(data).cast("B")
            while view:
                view = view[f.write(view):]

        try:
            f.truncate(keep_bytes)
            f.seek(keep_bytes)
            yield write
            os.fsync(f.fileno())
        except BaseException as err:
            f.truncate(keep_bytes)
            if isinstance(err, OSError):
                _raise_disk_full(err, path)
            raise


def remove_temporaries(*paths: str | os.PathLike) -> None:
    """Delete what saves of `paths` killed mid-way left beside them; only their writer, holding
    their lock, may call it (a save in progress would lose its temporary)."""
    for path in map(Path, paths):
        for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike, max_age_seconds: float = 3600) -> list[Path]:
    """Delete temporary files that `atomic_path` left in `folder` when its process was killed.

    Only files older than `max_age_seconds` go (a write in progress is seconds old), so a writer
    running at the same time is never disturbed. Returns what was removed.
    """
    removed = []
    cutoff = time.time() - max_age_seconds
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def save_json(path: str | os.PathLike, data: Any) -> None:
    """Write `data` as JSON atomically."""
    with atomic_path(path) as tmp:
        write_json(tmp, data)


def write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON in place (inside an atomic_paths block)."""
    path.write_bytes(json_bytes(data))


def json_bytes(data: Any) -> bytes:
    """`data` as indented JSON in UTF-8. Names of any bytes (kept as lone surrogates, as os.fsdecode
    makes them) are written as \\udcXX escapes: they read back the same."""
    try:
        return json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, indent=1).encode("ascii")


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array as .npy atomically (never pickled)."""
    with atomic_path(path) as tmp:
        write_npy(tmp, array)


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write one array as .npy in place (inside an atomic_paths block); never pickled."""
    with open(path, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def load_npy(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """The array in a .npy; ValueError if it is not one (numpy says EOFError for an empty file)."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except EOFError as err:
        raise ValueError(f"{path}: {err}") from None


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write several arrays into one .npz atomically, so they can never disagree on disk."""
    with atomic_path(path) as tmp:
        write_npz(tmp, **arrays)


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write arrays into one .npz in place (inside an atomic_paths block); never pickled."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path: str | os.PathLike | BinaryIO, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz (only `names`, if given: the others are not read)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in (data.files if names is None else names)}
