"""observe_many leaves a histogram exactly where one observe() per value would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from shared.loop.latency import observe_many

BUCKETS = (0.002, 0.005, 0.01, 0.05, 0.1, 1.0)


def samples(histogram: Histogram) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_batch_equals_one_observe_per_value() -> None:
    rng = random.Random(7)  # noqa: S311 (reproducible test values, not secrets)
    # Boundaries exactly, negatives (clock skew), values past the last bound, and an empty batch.
    amounts = [*BUCKETS, -0.5, 0.0, 3.0, 1e9, *(rng.uniform(-0.01, 2.0) for _ in range(2000))]
    one_by_one = Histogram("one", "x", buckets=BUCKETS, registry=CollectorRegistry())
    batched = Histogram("one", "x", buckets=BUCKETS, registry=CollectorRegistry())
    for amount in amounts:
        one_by_one.observe(amount)
    observe_many(batched, amounts[:100])
    observe_many(batched, [])
    observe_many(batched, amounts[100:])
    expected, got = samples(one_by_one), samples(batched)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key
