"""The chaos suite: every consumer (storage, analytics, forecaster, alert relay) SIGKILLed again
and again while bars stream in — at its named failpoints and at random moments — and restarted;
the tables end up equal to those of an undisturbed run of the same bars, beside it on a second
database, with no upsert conflict in any process and every stored offset at the end offset.

The short form runs in `make test`; the long form (200,000 bars, ≥ 20 random kills) with
CHAOS_LONG=1."""

from __future__ import annotations

import random
import time

import pytest

from tests.chaos.conftest import Chaos, long_form
from tests.chaos.disturbance import Disturber, plan
from tests.chaos.pipeline_run import KINDS, CpuClock, Run
from tests.chaos.tables import assert_same_tables, read_tables
from tests.integration.bar_stream import PacedPublisher, random_walk_bars
from tests.integration.processes import wait_for
from tests.integration.test_analytics_crashes import SYMBOLS


def disturbed_run_equals_undisturbed(
    *,
    bars_per_symbol: int,
    pause_s: float,
    random_kills: dict[str, int],
    max_skip: int,
    seed: int,
    chaos: Chaos,
    **settings: str,
) -> None:
    started = time.monotonic()
    cpu = CpuClock()
    rng = random.Random(seed)  # noqa: S311 - reproducible kill points, not secrets
    bars = random_walk_bars(SYMBOLS, bars_per_symbol, seed=seed)
    runs = [
        Run(name, chaos.service_env, pg, chaos.kafka, chaos.tmp_path, **settings)
        for name, pg in (("undisturbed", chaos.reference_pg), ("disturbed", chaos.pg))
    ]
    undisturbed, disturbed = runs
    # A live feed, one minute of every symbol per step, so members die with bars still coming.
    feed = PacedPublisher(chaos.kafka, chaos.topics.market_bars, bars, len(SYMBOLS), pause_s)
    disturbers = [
        Disturber(disturbed, kind, plan(rng, kind, random_kills[kind], max_skip)) for kind in KINDS
    ]
    phases: list[str] = []  # when each phase ended, printed however the test ends

    def phase(name: str) -> None:
        phases.append(f"{name} {time.monotonic() - started:.1f}s")

    try:
        undisturbed.start_each()
        phase("undisturbed started")
        feed.start()
        for disturber in disturbers:
            disturber.start()
        for disturber in disturbers:
            disturber.finish(timeout=60 + 30 * len(disturber.kills))
        phase("kills done")
        feed.finish(timeout=600)
        phase("bars published")
        for run in runs:
            run.wait_done(timeout=300)
            phase(f"{run.name} done")
            run.stop_all()
        for run in runs:  # nothing a killed member started outlives it (fit workers)
            wait_for(lambda run=run: not run.leftovers(), 15, f"run {run.name} to leave nothing")
    finally:
        feed.cancel()
        for run in runs:
            run.close()
        print(f"chaos: {', '.join(phases)}\n{ {d.kind: d.done for d in disturbers} }")
    for run in runs:
        assert run.conflicts() == 0, run.ended  # no redelivered row got through, in any process
    expected = read_tables(undisturbed.pg)
    actual = read_tables(disturbed.pg)
    assert len(expected.rows["price_bars"]) == len(bars)
    assert all(expected.counts().values()), expected.counts()  # every table has rows
    assert_same_tables(actual, expected)
    print(
        f"chaos: bars={len(bars)} kills={sum(len(d.done) for d in disturbers)}"
        f" rows={expected.counts()} ignored_timeouts={len(actual.timeouts | expected.timeouts)}"
        f" wall_s={time.monotonic() - started:.1f} {cpu}"
    )


def test_consumers_killed_at_failpoints_and_at_random_write_an_undisturbed_runs_tables(
    chaos: Chaos,
) -> None:
    disturbed_run_equals_undisturbed(
        bars_per_symbol=120,
        pause_s=0.25,
        random_kills={"storage": 1, "analytics": 1, "forecaster": 1, "relay": 2},
        max_skip=3,
        seed=15,
        chaos=chaos,
    )


@long_form
@pytest.mark.timeout(1800)
def test_long_form_200000_bars_and_twenty_random_kills(
    chaos: Chaos,
) -> None:
    disturbed_run_equals_undisturbed(
        bars_per_symbol=200_000 // len(SYMBOLS) + 1,
        pause_s=0.01,
        random_kills={"storage": 6, "analytics": 6, "forecaster": 5, "relay": 4},
        max_skip=50,
        seed=2015,
        chaos=chaos,
        FORECAST_MIN_BARS="120",
        FORECAST_WINDOW="250",
        FORECAST_EVERY="100",
        FORECAST_WORKERS="2",
    )
