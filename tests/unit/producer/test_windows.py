"""Which windows producer.market requests, and how delivery reports become watermarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaError

from producer.market.windows import Window, backfill_windows, live_windows, replay_windows
from producer.replay.index import ChartRange
from producer.watermarks import Confirmed, DeliveryTracker
from shared.calendar import get_calendar

XNYS = get_calendar("XNYS")
NOW = datetime(2024, 10, 9, 15, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_first_daily_backfill_starts_at_the_exchange_midnight() -> None:
    (window,) = live_windows("1d", watermark=None, now=NOW, history_days=30, calendar=XNYS)
    assert window == Window(utc("2024-09-09T04:00"), NOW)  # 00:00 New York (EDT)


def test_daily_backfill_resumes_at_the_watermark_session() -> None:
    (window,) = live_windows(
        "1d", watermark=utc("2024-10-08T00:00"), now=NOW, history_days=30, calendar=XNYS
    )
    assert window.start == utc("2024-10-08T04:00")  # its bar is asked again, and skipped


def test_backfill_resumes_at_the_watermark_in_chunks_yahoo_accepts() -> None:
    windows = live_windows(
        "1m", watermark=NOW - timedelta(days=20), now=NOW, history_days=30, calendar=XNYS
    )
    assert [w.end - w.start for w in windows] == [timedelta(days=7)] * 2 + [timedelta(days=6)]
    assert windows[0].start == NOW - timedelta(days=20) and windows[-1].end == NOW


def test_intraday_history_is_clamped_to_what_yahoo_serves() -> None:
    windows = live_windows("5m", watermark=None, now=NOW, history_days=365, calendar=XNYS)
    assert windows == [Window(NOW - timedelta(days=59), NOW)]


def test_replay_windows_skip_ranges_already_sent() -> None:
    ranges = [
        ChartRange("AAPL", "1d", utc("2025-04-30T13:30"), utc("2025-10-29T20:00:01"), False),
        ChartRange("AAPL", "1d", utc("2020-01-02T14:30"), utc("2020-12-31T14:30"), False),
    ]
    all_windows = replay_windows(ranges, "1d", watermark=None, calendar=XNYS)
    assert [w.start for w in all_windows] == [utc("2020-01-02T14:30"), utc("2025-04-30T13:30")]
    assert all_windows[0].end == utc("2020-12-31T14:30:01")  # just after its last point
    # Daily watermarks are session dates at 00:00 UTC: the 2020 range is done.
    later = replay_windows(ranges, "1d", watermark=utc("2020-12-31T00:00"), calendar=XNYS)
    assert [w.start for w in later] == [utc("2025-04-30T13:30")]


def test_replay_backfill_counts_its_days_back_from_the_newest_recorded_point() -> None:
    ranges = [
        ChartRange("AAPL", "1d", utc("2025-04-30T13:30"), utc("2025-10-29T20:00:01"), False),
        ChartRange("AAPL", "1d", utc("2020-01-02T14:30"), utc("2020-12-31T14:30"), False),
    ]
    recent = backfill_windows(ranges, days=30)
    assert recent == [Window(utc("2025-09-29T20:00:01"), utc("2025-10-29T20:00:02"))]
    everything = backfill_windows(ranges, days=3650)
    assert [w.start for w in everything] == [utc("2020-01-02T14:30"), utc("2025-04-30T13:30")]
    assert backfill_windows([], days=30) == []


def test_watermark_never_passes_a_failed_delivery() -> None:
    tracker = DeliveryTracker()
    error = KafkaError(KafkaError._MSG_TIMED_OUT)
    for minute, failed in [(1, False), (2, False), (3, True), (4, False)]:
        ts = utc(f"2024-10-02T13:3{minute}")
        tracker.callback("AAPL|1m", ts, f"e{minute}")(error if failed else None, None)  # type: ignore[arg-type]
    tracker.callback("MSFT|1m", utc("2024-10-02T13:31"), "m1")(None, None)  # type: ignore[arg-type]
    assert tracker.confirmed() == {
        "AAPL|1m": Confirmed(utc("2024-10-02T13:32"), "e2"),
        "MSFT|1m": Confirmed(utc("2024-10-02T13:31"), "m1"),
    }
    assert tracker.failed_keys() == ["AAPL|1m"]
