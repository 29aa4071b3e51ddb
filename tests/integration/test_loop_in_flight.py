"""A batch written in flight (shared/loop/flight.py) that fails while the next batch has been
processed against the outcome it was expected to have: the next batch is dropped and read again,
the failed one retried, and the tables end exactly as if nothing had failed — for storage
(stateless) and for analytics (each batch's states built on the one before)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shared.kafka import Topics
from shared.schemas import Bar
from shared.settings import Settings
from tests.integration.analytics_run import wait_analyzed
from tests.integration.bar_stream import (
    as_rows,
    drained,
    publish_bars,
    random_walk_bars,
    stored_bars,
    stored_offsets,
)
from tests.integration.held_lock import HeldLock
from tests.integration.processes import ServiceProcess, storage_member, wait_for
from tests.integration.test_analytics_crashes import (
    BARS_PER_SYMBOL,
    SYMBOLS,
    analytics,
    assert_no_conflicts,
    assert_written_once,
)

# Small batches: while one waits on the held lock, the next is already fetched and processed.
IN_FLIGHT = {
    "CONSUMER_BATCH_SIZE": "10",
    "POSTGRES_LOCK_TIMEOUT_MS": "300",
    "CONSUMER_RETRY_MAX_S": "1",
}
LOCK_OFFSETS = "SELECT * FROM consumer_offsets WHERE consumer_group = %s FOR UPDATE"
# Only a batch's state upsert waits on these (a starting member reads them without a lock).
LOCK_STATES = "SELECT * FROM analytics_state WHERE consumer_group = %s FOR UPDATE"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """This test's topics, database and consumer groups (conftest's own_consumer_groups)."""
    return settings_factory()


def fail_writes_for_a_while(
    settings: Settings, member: ServiceProcess, group: str, topic: str, bars: list[Bar]
) -> None:
    """With the first bars of each symbol committed (so the group's offset rows exist), lock
    those rows as an analyst's open transaction would, publish the rest, let the member's writes
    time out on the lock until one failed with the next batch already processed, release."""
    first, rest = bars[: len(SYMBOLS)], bars[len(SYMBOLS) :]
    publish_bars(settings.kafka, topic, first)
    wait_for(lambda: sum(stored_offsets(settings.postgres, group, topic).values()) == len(first),
             60, "the first bars to be committed")  # fmt: skip
    with HeldLock(settings.postgres.conninfo(), LOCK_OFFSETS, (group,)):
        publish_bars(settings.kafka, topic, rest)
        wait_for(
            lambda: member.metrics().get("pipeline_reread_batches_total", 0) >= 1,
            30,
            "a failed write with the next batch processed",
        )
    wait_for(lambda: drained(settings.postgres, settings.kafka, group, topic), 60, "the drain")


def states_then_waiting_bars(
    settings: Settings, service_env: dict[str, str], tmp_path: Path, topic: str, seed: int
) -> tuple[list[Bar], list[Bar]]:
    """A member commits the first bar of each symbol (every series has a state) and stops;
    three more per symbol are published to wait for the next member, which fetches them
    together. Returns (all the bars, those still to publish)."""
    bars = random_walk_bars(SYMBOLS, BARS_PER_SYMBOL, seed=seed)
    first, waiting = bars[: len(SYMBOLS)], bars[len(SYMBOLS) : 4 * len(SYMBOLS)]
    group = settings.consumer.group_analytics
    member = analytics(settings, service_env, tmp_path, **IN_FLIGHT).start()
    try:
        publish_bars(settings.kafka, topic, first)
        committed = lambda: sum(stored_offsets(settings.postgres, group, topic).values())  # noqa: E731
        wait_for(lambda: committed() == len(first), 60, "the first bars to be committed")
    finally:
        assert member.stop() == 0, member.log()
    publish_bars(settings.kafka, topic, waiting)
    return bars, bars[4 * len(SYMBOLS) :]


def drain_with_no_late_bar(
    settings: Settings, member: ServiceProcess, topic: str, rest: list[Bar]
) -> None:
    """Publish the rest, drain: no bar was kept as late, no upsert conflicted."""
    group = settings.consumer.group_analytics
    publish_bars(settings.kafka, topic, rest)
    wait_for(lambda: drained(settings.postgres, settings.kafka, group, topic), 60, "the drain")
    wait_analyzed(settings, timeout=60)
    skipped = member.samples().get(("pipeline_bars_skipped_total", (("reason", "late"),)), 0)
    assert skipped == 0
    assert_no_conflicts(member)


def test_storage_drops_the_batch_processed_meanwhile_and_stores_every_bar_once(
    settings: Settings, topics: Topics, service_env: dict[str, str], tmp_path: Path
) -> None:
    group = settings.consumer.group_storage
    bars = random_walk_bars(SYMBOLS, 12, seed=5)
    member = storage_member(service_env, tmp_path, group, **IN_FLIGHT).start()
    try:
        fail_writes_for_a_while(settings, member, group, topics.market_bars, bars)
        metrics = member.metrics()
        assert metrics["pipeline_batch_failures_total"] >= 1
        assert metrics["pipeline_upsert_conflicts_total"] == 0
        # Rewound (not refused at a wrong start), and retried from the memory before the
        # failed batch (not fenced for expecting offsets the database never stored).
        assert metrics.get("pipeline_refused_positions_total", 0) == 0
        assert metrics.get("pipeline_fenced_batches_total", 0) == 0
    finally:
        assert member.stop() == 0, member.log()
    assert sorted(stored_bars(settings.postgres)) == sorted(as_rows(bars))


def test_analytics_recomputes_the_batch_processed_meanwhile_from_the_committed_states(
    settings: Settings, topics: Topics, service_env: dict[str, str], tmp_path: Path
) -> None:
    bars = random_walk_bars(SYMBOLS, BARS_PER_SYMBOL, seed=17)
    member = analytics(settings, service_env, tmp_path, **IN_FLIGHT).start()
    try:
        group = settings.consumer.group_analytics
        fail_writes_for_a_while(settings, member, group, topics.market_bars, bars)
        wait_analyzed(settings, timeout=60)
        metrics = member.metrics()
        assert metrics.get("pipeline_refused_positions_total", 0) == 0
        assert metrics.get("pipeline_fenced_batches_total", 0) == 0
        assert_no_conflicts(member)
    finally:
        assert member.stop() == 0, member.log()
    # Row for row what one consumer that never failed writes, states at each series' newest.
    assert_written_once(settings, topics.market_bars, bars)


def test_analytics_reads_again_the_states_the_batch_processed_meanwhile_changed(
    settings: Settings, topics: Topics, service_env: dict[str, str], tmp_path: Path
) -> None:
    """Three bars per symbol wait in the topic while the member is down: fewer per partition
    than a batch holds, and fetched together when it starts, so the batch processed while the
    first one fails (on the held state rows) holds partitions the failed one does not. Processed
    in place (Handler.in_place), their states are read again with the failed batch's, or their
    bars, read again, would count as fed already (kept as late bars, indicators never written)."""
    group, topic = settings.consumer.group_analytics, topics.market_bars
    bars, rest = states_then_waiting_bars(settings, service_env, tmp_path, topic, seed=23)
    member = analytics(settings, service_env, tmp_path, **IN_FLIGHT)
    try:
        with HeldLock(settings.postgres.conninfo(), LOCK_STATES, (group,)):
            member.start()
            wait_for(
                lambda: member.metrics().get("pipeline_reread_batches_total", 0) >= 1,
                30,
                "a failed write with the next batch processed",
                detail=member.log,
            )
        drain_with_no_late_bar(settings, member, topic, rest)
    finally:
        assert member.stop() == 0, member.log()
    assert_written_once(settings, topic, bars)


def test_analytics_reads_again_the_states_a_batch_that_raised_had_changed_in_place(
    settings: Settings, topics: Topics, service_env: dict[str, str], tmp_path: Path
) -> None:
    """A batch processed in place whose process then raises (the failpoint raises once its
    process has returned: the states hold its bars already) goes the usual path, which must
    start from the committed states: without reading them again its bars would count as fed
    (kept as late bars, their indicators never written)."""
    topic = topics.market_bars
    bars, rest = states_then_waiting_bars(settings, service_env, tmp_path, topic, seed=29)
    member = analytics(
        settings, service_env, tmp_path, failpoint="raise_after_process_once", **IN_FLIGHT
    ).start()
    try:
        wait_for(
            lambda: "failpoint raise_after_process_once: raising" in member.log(),
            30,
            "the first batch to raise",
            detail=member.log,
        )
        drain_with_no_late_bar(settings, member, topic, rest)
    finally:
        assert member.stop() == 0, member.log()
    assert_written_once(settings, topic, bars)
