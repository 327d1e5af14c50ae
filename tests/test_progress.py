"""progress.py: photos/s and time left, measured from the first report (timestamps given)."""

from __future__ import annotations

from vector_search.progress import Rate, duration


def test_rate_starts_at_first_report_and_gives_eta() -> None:
    rate = Rate("photos")
    assert rate.text(32, 1000, now=100.0) == ""  # the model was built before this: no rate yet
    assert rate.text(64, 1000, now=102.0) == "16.0 photos/s, about 58 s left"
    assert rate.text(512, 1000, now=130.0) == "16.0 photos/s, about 30 s left"
    assert rate.text(1000, 1000, now=160.5) == "16.0 photos/s, about 0 s left"


def test_duration() -> None:
    assert [duration(s) for s in (0.4, 59, 65, 3599, 7500)] == ["0 s", "59 s", "1 min 05 s", "59 min 59 s", "2 h 05 min"]
