"""The topic setup's comparison of a topic's layout with the settings (pure)."""

from __future__ import annotations

import pytest

from shared.errors import SettingsError
from shared.settings import KafkaSettings, build
from shared.topic_layout import TopicLayout, layout_problem

WANTED = TopicLayout(partitions=12, replication_factor=3, min_insync_replicas=2)


def test_an_equal_layout_is_no_problem() -> None:
    assert layout_problem("market.bars", WANTED, WANTED) is None


@pytest.mark.parametrize(
    ("found", "line"),
    [
        (
            TopicLayout(6, 3, 2),
            "topic market.bars has 6 partitions, the settings say 12; partition counts are fixed"
            " at creation (see README: re-keying)",
        ),
        (
            TopicLayout(12, 1, 2),
            "topic market.bars has replication factor 1, the settings say 3"
            " (KAFKA_REPLICATION_FACTOR)",
        ),
        (
            TopicLayout(12, 3, 1),
            "topic market.bars has min.insync.replicas=1, the settings say 2"
            " (KAFKA_MIN_INSYNC_REPLICAS)",
        ),
    ],
)
def test_a_difference_is_one_line_naming_topic_found_and_expected(
    found: TopicLayout, line: str
) -> None:
    assert layout_problem("market.bars", found, WANTED) == line


def test_partitions_are_reported_before_replication() -> None:
    problem = layout_problem("market.bars", TopicLayout(6, 1, 1), WANTED)
    assert problem is not None and "6 partitions" in problem and "replication" not in problem


def test_min_insync_above_the_replication_factor_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "1")
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(SettingsError, match="KAFKA_MIN_INSYNC_REPLICAS=2 is more than"):
        build(KafkaSettings)
