"""Analytics-consumer bench: drain a pre-filled topic, then latency at a steady rate.

`python -m bench.analytics` (full) or `--smoke` (the size `make test` runs). Prints name=value:
the settings, `bars_per_s` (bars turned into indicators rows, with their state and offsets, per
second) and `p50_latency_ms` / `p99_latency_ms` at a steady rate (Kafka CreateTime → COMMIT).
"""

from __future__ import annotations

import psycopg

from analytics.consumer.service import configured_params
from bench.harness import (
    consumer_arguments,
    emit_settings,
    fresh_target,
    measure_consumer,
    prefill_topic,
)
from shared.settings import AnalyticsSettings, build


def main(argv: list[str] | None = None) -> int:
    args = consumer_arguments("python -m bench.analytics").parse_args(argv)
    if args.smoke:
        args.bars, args.seconds, args.symbols = 5_000, 3.0, 50

    with fresh_target("analytics") as target:
        published = prefill_topic(target, args.symbols, args.bars)
        params = configured_params(build(AnalyticsSettings))
        emit_settings(
            target,
            symbols=args.symbols,
            batch_size=args.batch_size,
            topic_bars=published,
            params=",".join(f"{k}={v}" for k, v in params.to_json().items()),
        )
        consumed = measure_consumer(target, "analytics.consumer", args, published)
        with psycopg.connect(target.postgres.conninfo()) as conn:
            rows, states = conn.execute(
                "SELECT (SELECT count(*) FROM indicators), (SELECT count(*) FROM analytics_state)"
            ).fetchone()
        # Every bench bar is newer than its series' last: each one must have its row.
        if (rows, states) != (consumed, args.symbols):
            raise SystemExit(
                f"bench.analytics: {rows} indicators rows and {states} states, expected"
                f" {consumed} and {args.symbols}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
