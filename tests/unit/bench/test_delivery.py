"""The benches' pure accounting: durable settings, and where each message went."""

from __future__ import annotations

from bench.delivery import behind, below_stored, beyond
from bench.harness import DURABLE, durability_problems

TOPIC = "market.bars"
MARKS = {(TOPIC, 0): (0, 10), (TOPIC, 1): (5, 8), ("other", 0): (0, 99)}


def test_durable_settings_pass_and_each_other_one_is_named() -> None:
    durable = {name: allowed[0] for name, allowed in DURABLE.items()}
    assert durability_problems(durable) == []
    assert durability_problems({**durable, "pg_synchronous_commit": "remote_apply"}) == []
    observed = {**durable, "pg_fsync": "off", "kafka_acks": "1"}
    assert durability_problems(observed) == ["pg_fsync=off (needs on)", "kafka_acks=1 (needs all)"]
    assert durability_problems({**durable, "pg_synchronous_commit": "off"}) == [
        "pg_synchronous_commit=off (needs on or local or remote_write or remote_apply)"
    ]


def test_a_missing_setting_is_not_durable() -> None:
    observed = {k: v[0] for k, v in DURABLE.items() if k != "pg_unlogged_tables"}
    assert durability_problems(observed) == ["pg_unlogged_tables=None (needs 0)"]


def test_behind_counts_from_the_stored_offset_or_the_log_start() -> None:
    stored = {("g", TOPIC, 0): 7}
    # partition 0: 10 - 7; partition 1 has no stored offset: everything from its log start.
    assert behind("g", TOPIC, stored, MARKS) == 3 + 3
    assert behind("g", TOPIC, {("g", TOPIC, 0): 10, ("g", TOPIC, 1): 8}, MARKS) == 0


def test_an_offset_stored_past_the_end_is_counted_beyond() -> None:
    stored = {("g", TOPIC, 0): 12, ("g", TOPIC, 1): 8, ("h", TOPIC, 0): 50}
    assert beyond("g", TOPIC, stored, MARKS) == 2
    assert behind("g", TOPIC, stored, MARKS) == 0


def test_a_claimed_partition_without_an_offset_yet_is_behind_from_its_log_start() -> None:
    stored = {("g", TOPIC, 0): None, ("g", TOPIC, 1): 8}
    assert behind("g", TOPIC, stored, MARKS) == 10
    assert beyond("g", TOPIC, stored, MARKS) == 0
    assert below_stored([(b"A", 0, 0), (b"B", 1, 5)], "g", TOPIC, stored) == {"B": 1}


def test_below_stored_counts_each_key_s_committed_messages() -> None:
    placed = [(b"A", 0, 0), (b"A", 0, 1), (b"B", 1, 5), (b"A", 0, 2), (b"B", 1, 6)]
    stored = {("g", TOPIC, 0): 2, ("g", TOPIC, 1): 6}
    assert below_stored(placed, "g", TOPIC, stored) == {"A": 2, "B": 1}
    assert below_stored(placed, "other", TOPIC, stored) == {}


def test_a_quantile_past_the_largest_finite_bucket_is_reported_as_above_it() -> None:
    from bench.e2e import quantile_ms

    buckets = [({"le": "0.01"}, 5.0), ({"le": "10.0"}, 50.0), ({"le": "+Inf"}, 100.0)]
    assert quantile_ms(buckets, 0.04) == 8.0
    assert quantile_ms(buckets, 0.99) == ">10000"
    assert quantile_ms([], 0.5) == "nan"
