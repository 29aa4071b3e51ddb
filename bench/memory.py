"""Memory bench: the analytics consumer's and the forecaster's peak resident set with many series.

`python -m bench.memory` (full: 5,000 symbols) or `--smoke`. `--bars` one-minute random-walk
bars per symbol (source 'bench'; the default 60 fills every indicator window: the longest,
SMA 50, holds 50 closes) are in market.bars before the two services start; both consume the
whole topic, each in its own group, side by side. Prints name=value:

- `peak_rss_mb`: analytics.consumer's VmHWM (/proc/<pid>/status: the kernel's high-water mark
  of the process's resident set, MB = 10^6 bytes) once every series has its state;
  `analytics_ready_rss_mb` its VmRSS when it first answered on its health port (before any bar).
- `forecaster_peak_rss_mb`: the same for analytics.forecaster's own process, and
  `forecaster_tree_peak_rss_mb` the largest sum of VmRSS over it and its fit processes, sampled
  every 0.2 s. With fewer bars per series than FORECAST_MIN_BARS (120) no origin is due and
  each series holds only its closes so far (the window is FORECAST_WINDOW = 500); `--bars 130`
  makes every series fit (slow: thousands of fits).
"""

from __future__ import annotations

import argparse
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.delivery import publish_steady, wait_drained
from bench.forecast_service import random_walk
from bench.harness import Service, emit, emit_settings, fresh_target, stop_all
from bench.processes import process_tree
from shared.settings import ConsumerSettings, build

START = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` in MB (0 when it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


class TreeSampler(threading.Thread):
    """The largest sum of VmRSS over a process tree, sampled every 0.2 s until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.peak_mb = max(self.peak_mb, sum(rss_mb(p) for p in process_tree(self.pid)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for make test")
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--bars", type=int, default=60, help="bars per symbol")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    if args.smoke:
        args.symbols, args.bars = 50, 60

    stamps = [START + timedelta(minutes=i) for i in range(args.bars)]
    messages = random_walk(args.symbols, stamps, "1m", seed=9)
    with fresh_target("memory") as target:
        emit_settings(
            target,
            symbols=args.symbols,
            bars_per_symbol=args.bars,
            bars=len(messages),
            batch_size=build(ConsumerSettings).batch_size,
        )
        deliveries = publish_steady(target, messages, None)
        if deliveries.confirmed != len(messages):
            raise SystemExit(f"bench.memory: bars not delivered: {deliveries.first_error}")
        analytics = Service("analytics.consumer", target)
        forecaster = Service("analytics.forecaster", target)
        sampler = TreeSampler(forecaster.process.pid)
        sampler.start()
        try:
            analytics.wait_ready()
            emit("analytics_ready_rss_mb", rss_mb(analytics.process.pid))
            groups = [analytics.group("analytics"), forecaster.group("forecaster")]
            wait_drained(target, groups, args.timeout)
            peak, forecaster_peak = analytics.peak_rss_mb(), forecaster.peak_rss_mb()
        finally:
            sampler.done.set()
            stop_all((analytics, forecaster))
        emit("peak_rss_mb", peak)
        emit("forecaster_peak_rss_mb", forecaster_peak)
        emit("forecaster_tree_peak_rss_mb", sampler.peak_mb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
