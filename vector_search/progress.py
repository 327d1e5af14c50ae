"""Photos per second and time left of a long job (indexing), for progress texts."""

from __future__ import annotations

import time


def duration(seconds: float) -> str:
    """A rough human duration: "40 s", "3 min 20 s", "2 h 05 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Rate:
    """Rate and ETA measured from the first report on, so the model build before the first batch
    does not count (that first report only starts the clock)."""

    def __init__(self, unit: str = "photos") -> None:
        self.unit = unit
        self._start: tuple[int, float] | None = None

    def text(self, done: int, total: int, now: float | None = None) -> str:
        """"12.3 photos/s, about 1 min 05 s left" (or "" on the first report, with no rate yet)."""
        now = time.monotonic() if now is None else now
        if self._start is None:
            self._start = (done, now)
        first, since = self._start
        if done <= first or now <= since:
            return ""
        rate = (done - first) / (now - since)
        return f"{rate:.1f} {self.unit}/s, about {duration((total - done) / rate)} left"
