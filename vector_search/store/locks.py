"""One writer at a time per feature store and per joint model, across processes and threads.

Writers (`Engine.index`, `Engine.train`, hence `vector-search index/train` and the app's
Regenerate/Retrain) hold an OS file lock beside what they write: `flock(2)` through the
`filelock` library. Readers take no lock: every file is replaced atomically (fileio.py), so they
never wait and never see half a file. The kernel drops a flock when its holder dies, even by
SIGKILL, so a lock left by a killed process is simply free again: nothing to detect or clean.
Each acquisition opens its own descriptor, so two threads of one process exclude each other too.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from vector_search.errors import VectorSearchError

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"


class LockBusyError(VectorSearchError, RuntimeError):
    """Another writer holds the lock and the caller chose not to wait."""


def lock_file(target: str | os.PathLike) -> Path:
    """The lock file that guards `target` (a store folder or a model file): `<target>.lock` beside it."""
    target = Path(target)
    return target.with_name(target.name + LOCK_SUFFIX)


@contextmanager
def writer_lock(target: str | os.PathLike, what: str, wait: bool = True) -> Iterator[None]:
    """Hold the writer lock of `target` (`what` names it in messages) for the `with` block.

    When another writer holds it: with `wait`, say so in the log (the CLI prints it) and wait for
    it to finish; without, raise LockBusyError at once.
    """
    path = lock_file(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise LockBusyError(f"{what} is being written by another process (lock {path}): try again when it is done") from None
        log.warning(f"waiting for another writer of {what} to finish (lock {path})")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
