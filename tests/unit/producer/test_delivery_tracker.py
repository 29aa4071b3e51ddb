"""DeliveryTracker: an unreported message bounds the watermark like a failed one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaError

from producer.watermarks import Confirmed, DeliveryTracker

T0 = datetime(2026, 5, 20, tzinfo=UTC)
TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_message_still_in_flight_holds_the_watermark_below_it() -> None:
    tracker = DeliveryTracker()
    reports = {m: tracker.callback("AAPL", at(m), f"e{m}") for m in (1, 2, 3)}
    reports[1](None, None)  # type: ignore[arg-type]
    reports[3](None, None)  # type: ignore[arg-type]
    assert tracker.in_flight() == 1
    assert tracker.confirmed() == {"AAPL": Confirmed(at(1), "e1")}  # not past 2, unreported
    reports[2](None, None)  # type: ignore[arg-type]  # a late report (a later poll's flush)
    assert tracker.confirmed() == {"AAPL": Confirmed(at(3), "e3")}


def test_a_late_failure_bounds_until_the_key_is_published_again() -> None:
    tracker = DeliveryTracker()
    first, second = tracker.callback("AAPL", at(1), "e1"), tracker.callback("AAPL", at(2), "e2")
    second(None, None)  # type: ignore[arg-type]
    first(TIMED_OUT, None)  # type: ignore[arg-type]
    assert tracker.failed_keys() == ["AAPL"] and tracker.confirmed() == {}
    tracker.clear_failures("AAPL")
    again = tracker.callback("AAPL", at(1), "e1")  # re-sent: in flight again
    assert tracker.confirmed() == {}
    again(None, None)  # type: ignore[arg-type]
    assert tracker.confirmed() == {"AAPL": Confirmed(at(2), "e2")}


def test_forget_drops_what_was_advanced() -> None:
    tracker = DeliveryTracker()
    tracker.callback("AAPL", at(1), "e1")(None, None)  # type: ignore[arg-type]
    confirmed = tracker.confirmed()
    tracker.forget(confirmed)
    assert tracker.confirmed() == {}
    tracker.callback("AAPL", at(0), "e0")(None, None)  # type: ignore[arg-type]
    assert tracker.confirmed() == {"AAPL": Confirmed(at(0), "e0")}  # GREATEST in SQL keeps 1
