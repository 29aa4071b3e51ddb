"""The API producers live without their key: they say so once and idle, never fabricate."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.kafka import Topics
from shared.settings import KafkaSettings
from tests.integration.bar_stream import end_offsets
from tests.integration.processes import assert_api_idles


@pytest.mark.parametrize(
    ("module", "api", "topic"),
    [
        ("producer.news", "Finnhub", "news_articles"),
        ("producer.macro", "FRED", "macro_observations"),
    ],
)
def test_live_without_a_key_says_so_once_and_idles_without_fabricating(
    module: str,
    api: str,
    topic: str,
    service_env: dict[str, str],
    topics: Topics,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
) -> None:
    assert_api_idles(
        module,
        service_env,
        tmp_path,
        f"{api}: no API key set (DATA_SOURCE=live)",
        DATA_SOURCE="live",
        FINNHUB_API_KEY="",
        FRED_API_KEY="",
    )
    assert all(end == 0 for end in end_offsets(kafka_settings, getattr(topics, topic)).values())
