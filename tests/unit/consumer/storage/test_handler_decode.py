"""StorageHandler.decode: every topic's messages are validated before any write."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from consumer.storage.handler import StorageHandler
from shared.errors import ValidationError
from shared.kafka import Topics
from shared.schemas import encode
from tests.unit.shared.test_schemas import make_bar
from tests.unit.shared.test_validation import (
    RAW_BAR,
    make_action,
    make_article,
    make_dead_letter,
    make_instrument,
    make_observation,
)

TOPICS = Topics()


@dataclass(frozen=True)
class FakeMessage:
    """The two methods of confluent_kafka.Message that decode reads."""

    topic_name: str
    raw: bytes

    def topic(self) -> str:
        return self.topic_name

    def value(self) -> bytes:
        return self.raw


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        (TOPICS.market_bars, make_bar()),
        (TOPICS.market_actions, make_action()),
        (TOPICS.market_instruments, make_instrument()),
        (TOPICS.news_articles, make_article()),
        (TOPICS.macro_observations, make_observation()),
        (TOPICS.deadletter, make_dead_letter()),
    ],
)
def test_good_messages_decode(topic: str, message: object) -> None:
    assert StorageHandler(TOPICS).decode(FakeMessage(topic, encode(message))) == message


@pytest.mark.parametrize(
    ("topic", "raw", "reason"),
    [
        (
            TOPICS.market_bars,
            RAW_BAR % (b"AAPL", b"9223372036854775808"),
            "volume 9223372036854775808 does not fit a signed 64-bit integer (bigint)",
        ),
        (
            TOPICS.news_articles,
            encode(make_article()).replace(b"Reuters", b"Reu\\u0000ters"),
            "publisher contains a NUL character (PostgreSQL text cannot hold it)",
        ),
        (
            TOPICS.news_articles,
            encode(make_article(sentiment=1.5)),
            "sentiment 1.5 outside [-1, 1]",
        ),
        (
            TOPICS.market_actions,
            encode(make_action(kind="merger")),
            "unknown corporate action kind 'merger'",
        ),
        (
            TOPICS.macro_observations,
            encode(make_observation()).replace(b"2024-09-01", b"1899-09-01"),
            "obs_date 1899-09-01 is outside 1900-01-01..2200-12-31",
        ),
        (
            TOPICS.market_instruments,
            encode(make_instrument(market_cap=2e150)),
            "market_cap 2e+150 exceeds 1e+150 in magnitude (its square would overflow)",
        ),
    ],
)
def test_what_postgres_cannot_hold_is_rejected_at_decode(
    topic: str, raw: bytes, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        StorageHandler(TOPICS).decode(FakeMessage(topic, raw))
    assert str(caught.value) == reason
