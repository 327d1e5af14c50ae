"""Atomic, pickle-free file writes and reads shared by every module that saves to disk.

Every save writes a temporary file beside its target and renames it over the target only once
it is complete, so a reader sees the old file or the new one, never half of one. When a save
fails (a full disk, a quota, a file-size limit, anything) the temporary is removed and the
target is untouched; a full disk is reported as one DiskFullError line.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

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
            os.replace(tmp, path)
    except OSError as err:
        _raise_disk_full(err, targets[0])
        raise
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


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
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


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
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write several arrays into one .npz atomically, so they can never disagree on disk."""
    with atomic_path(path) as tmp:
        write_npz(tmp, **arrays)


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write arrays into one .npz in place (inside an atomic_paths block); never pickled."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path: str | os.PathLike | BinaryIO) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
