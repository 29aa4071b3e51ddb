"""Scale-out: three storage, three analytics and two forecaster members (and two alert relays,
one active) on the 12 partitions of market.bars, members stopped and new ones started while bars
stream in: the tables equal those of a run with one member of each, beside it on a second
database."""

from __future__ import annotations

import random
import time

from tests.chaos.conftest import Chaos
from tests.chaos.pipeline_run import CpuClock, Run
from tests.chaos.tables import assert_same_tables, read_tables
from tests.integration.bar_stream import PacedPublisher, random_walk_bars
from tests.integration.processes import wait_for
from tests.integration.test_analytics_crashes import SYMBOLS

SCALED = {"storage": 3, "analytics": 3, "forecaster": 2, "relay": 2}
CHANGES = 6  # members stopped, each followed by a new one of its kind


def test_replicas_stopped_and_started_during_a_run_write_a_single_consumers_tables(
    chaos: Chaos,
) -> None:
    started = time.monotonic()
    cpu = CpuClock()
    rng = random.Random(12)  # noqa: S311 - reproducible changes, not secrets
    bars = random_walk_bars(SYMBOLS, 100, seed=12)
    single = Run("single", chaos.service_env, chaos.reference_pg, chaos.kafka, chaos.tmp_path)
    scaled = Run("scaled", chaos.service_env, chaos.pg, chaos.kafka, chaos.tmp_path)
    feed = PacedPublisher(chaos.kafka, chaos.topics.market_bars, bars, len(SYMBOLS), 0.1)
    changes: list[str] = []  # when, what, and whether bars were still being published
    try:
        single.start_each()
        scaled.start_each(SCALED)
        assert all(len(scaled.live(kind)) == count for kind, count in SCALED.items())
        feed.start()
        # While the bars come in: a member of some kind stops (SIGTERM), and a new one joins.
        for _ in range(CHANGES):
            time.sleep(rng.uniform(0.0, 1.0))
            kind = rng.choice(list(SCALED))
            streaming = feed.is_alive()
            scaled.stop(rng.choice(scaled.live(kind)))
            scaled.start(kind)
            changes.append(f"{time.monotonic() - started:.1f}s {kind} {streaming=}")
        feed.finish(timeout=300)
        for run in (single, scaled):
            run.wait_done(timeout=300)
            run.stop_all()
            wait_for(lambda run=run: not run.leftovers(), 15, f"run {run.name} to leave nothing")
    finally:
        feed.cancel()
        for run in (single, scaled):
            run.close()
        wall_s = time.monotonic() - started
        print(f"scale-out: changes {changes} wall_s={wall_s:.1f} {cpu}")
    for run in (single, scaled):
        assert run.conflicts() == 0, run.ended  # no member found its rows already written
    assert "streaming=True" in changes[0], changes  # the group changed while bars came in
    expected = read_tables(single.pg)
    assert len(expected.rows["price_bars"]) == len(bars)
    assert all(expected.counts().values()), expected.counts()
    assert_same_tables(read_tables(scaled.pg), expected)
