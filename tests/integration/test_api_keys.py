"""The API producers live without their key: disabled, green with a note, never fabricate."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.kafka import Topics
from shared.settings import KafkaSettings
from tests.integration.bar_stream import end_offsets
from tests.integration.processes import assert_api_idles


@pytest.mark.parametrize(
    ("module", "key", "topic"),
    [
        ("producer.news", "FINNHUB_API_KEY", "news_articles"),
        ("producer.macro", "FRED_API_KEY", "macro_observations"),
    ],
)
def test_live_without_a_key_is_disabled_green_and_idles_without_fabricating(
    module: str,
    key: str,
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
        f"disabled: no {key}",
        red=False,
        DATA_SOURCE="live",
        FINNHUB_API_KEY="",
        FRED_API_KEY="",
    )
    assert all(end == 0 for end in end_offsets(kafka_settings, getattr(topics, topic)).values())
