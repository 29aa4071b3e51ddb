"""The forecaster's fit pool when the consumer that started it is SIGKILLed: its workers and
their forkserver exit with it instead of living on (they wait on each other's pipes forever)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

from tests.conftest import REPO_ROOT
from tests.integration.processes import processes_with, wait_for

# A consumer's process in miniature: a pool of two fit workers, then nothing but waiting.
STARTS_A_POOL = """
import time
from analytics.forecaster.pool import FitPool
from analytics.forecaster.service import forecast_params
from shared.settings import ForecastSettings
pool = FitPool(forecast_params(ForecastSettings()), workers=2)
print("pool ready", flush=True)
time.sleep(600)
"""


def test_a_killed_consumers_fit_workers_and_forkserver_exit_with_it() -> None:
    marker = f"FIT_POOL_TEST={uuid.uuid4().hex}"  # inherited by everything the process starts
    name, value = marker.split("=")
    consumer = subprocess.Popen(
        [sys.executable, "-c", STARTS_A_POOL],
        cwd=REPO_ROOT,
        env={**os.environ, name: value},
        stdout=subprocess.PIPE,
    )
    try:
        assert consumer.stdout is not None and consumer.stdout.readline() == b"pool ready\n"
        started = processes_with(marker.encode())
        # the consumer, the forkserver, two workers (and the resource tracker)
        assert len(started) >= 4, started
        consumer.send_signal(signal.SIGKILL)
        assert consumer.wait(30) == -signal.SIGKILL
        wait_for(
            lambda: not processes_with(marker.encode()),
            15,
            "the pool's processes to exit",
            detail=lambda: processes_with(marker.encode()),
        )
    finally:
        consumer.kill()
        consumer.wait(30)
        for pid in processes_with(marker.encode()):
            os.kill(pid, signal.SIGKILL)
