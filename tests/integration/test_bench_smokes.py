"""Each bench's `--smoke` form runs to the end on the test stack and prints its figures.

Run here, beside the other tests, rather than one after another after pytest: a smoke spends
most of its time waiting for services to start and drain, time the other workers fill. The
figures themselves are not judged (a smoke is too small for them): the full forms are.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.stacks import TestStack

# Each bench and the figures its smoke must print (a number unless listed in TEXT).
FIGURES = {
    "ingest": ("bars_per_s", "p99_latency_ms", "ceiling_rows_per_s", "ratio_to_ceiling"),
    "indicators": ("updates_per_s", "speedup_vs_talipp"),
    "analytics": ("bars_per_s", "p50_latency_ms", "p99_latency_ms"),
    "forecast": ("fit_ms_p50", "backfill_origins", "live_cpu_share"),
    "alerts": ("analytics_p99_latency_ms", "forecaster_p99_latency_ms", "notify_to_watch_ms_p99"),
    "export": ("rows_per_s", "peak_rss_mb"),
    "e2e": (
        "settle_s",
        "steady_bars",
        "lost",
        "duplicated",
        "upsert_conflicts",
        "wal_bytes_per_bar",
        "analytics_cpu_us_per_bar",
        "postgres_cpu_us_per_bar",
        "machine_busy_share",
    ),
    "backfill": ("seconds", "bars_per_s", "indicators_rows"),
    "memory": ("peak_rss_mb", "forecaster_peak_rss_mb"),
}
# Figures that are 0 in every run, smoke or full.
ZERO = {"lost", "duplicated", "upsert_conflicts"}
TEXT = {"pg_fsync", "pg_synchronous_commit", "kafka_acks"}


def figures(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


@pytest.mark.parametrize("bench", sorted(FIGURES))
def test_a_bench_smoke_runs_and_prints_its_figures(stack: TestStack, bench: str) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", f"bench.{bench}", "--smoke"],
        cwd=REPO_ROOT,
        env={**os.environ, "LOCAL_STACK": "off"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    printed = figures(done.stdout)
    for name in FIGURES[bench]:
        assert name in printed, f"{name} missing from:\n{done.stdout}"
        assert math.isfinite(float(printed[name])), f"{name}={printed[name]}"
        if name in ZERO:
            assert float(printed[name]) == 0, f"{name}={printed[name]}"
    # Durable settings, printed with the figures (the benches refuse to run otherwise).
    for name in TEXT & printed.keys():
        assert printed[name] in {"on", "all"}, f"{name}={printed[name]}"
