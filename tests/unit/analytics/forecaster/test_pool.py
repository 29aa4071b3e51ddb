"""The fit workers run at the lower CPU priority FORECAST_FIT_NICE and FORECAST_FIT_IDLE ask for."""

from __future__ import annotations

import os

from analytics.forecaster.pool import FitPool
from ml.params import ForecastParams


def test_workers_run_niced_and_the_consumer_keeps_its_priority() -> None:
    mine, my_policy = os.nice(0), os.sched_getscheduler(0)
    pool = FitPool(ForecastParams(), workers=1, nice=5)
    try:
        assert pool._executor is not None  # noqa: SLF001 (the workers' own niceness)
        worker = pool._executor.submit(os.nice, 0).result(timeout=60)  # noqa: SLF001
        policy = pool._executor.submit(os.sched_getscheduler, 0).result(timeout=60)  # noqa: SLF001
    finally:
        pool.close()
    assert worker == min(19, mine + 5)
    assert policy == my_policy  # FORECAST_FIT_IDLE off: niceness alone
    assert os.nice(0) == mine


def test_idle_workers_run_under_sched_idle_and_the_consumer_keeps_its_policy() -> None:
    mine = os.sched_getscheduler(0)
    pool = FitPool(ForecastParams(), workers=1, idle=True)
    try:
        assert pool._executor is not None  # noqa: SLF001 (the worker's own policy)
        policy = pool._executor.submit(os.sched_getscheduler, 0).result(timeout=60)  # noqa: SLF001
    finally:
        pool.close()
    assert policy == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == mine
