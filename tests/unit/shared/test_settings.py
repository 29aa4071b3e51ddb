"""Settings: one clear line per problem, secrets never echoed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.errors import SettingsError
from shared.settings import (
    ENV_FILE,
    KafkaSettings,
    MarketSettings,
    PostgresSettings,
    SourceSettings,
    build,
    bundled_recordings,
    load_settings,
)

SECRET = "s3cr3t-do-not-print"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the `.env` tests below write theirs here, never in the checkout


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_PORT", "POSTGRES_HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert (settings.postgres.host, settings.postgres.port) == ("127.0.0.1", 15432)


def test_bad_bootstrap_servers_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost")
    with pytest.raises(SettingsError) as caught:
        build(KafkaSettings)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("invalid setting KAFKA_BOOTSTRAP_SERVERS:")


def test_password_is_secret_and_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", SECRET)
    settings = build(PostgresSettings)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in settings.describe()
    monkeypatch.setenv("POSTGRES_PORT", SECRET)  # a secret pasted in the wrong place
    with pytest.raises(SettingsError) as caught:
        build(PostgresSettings)
    assert SECRET not in str(caught.value)
    assert "POSTGRES_PORT" in str(caught.value)


def test_kafka_sasl_password_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    settings = build(KafkaSettings)
    assert SECRET not in repr(settings)
    assert settings.client_config()["sasl.password"] == SECRET


def test_replay_defaults_to_the_bundled_recordings(
    monkeypatch: pytest.MonkeyPatch, recordings: Path
) -> None:
    monkeypatch.setenv("DATA_SOURCE", "replay")
    assert build(SourceSettings).replay_dir == recordings


def test_replay_needs_an_existing_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_SOURCE", "replay")
    monkeypatch.setenv("REPLAY_DIR", "/nonexistent/replay")
    with pytest.raises(SettingsError, match="REPLAY_DIR=/nonexistent/replay is not a directory"):
        build(SourceSettings)


def test_unknown_data_source_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_SOURCE", "recorded")
    with pytest.raises(SettingsError, match="^invalid setting DATA_SOURCE:"):
        build(SourceSettings)


def test_symbols_are_comma_separated_upper_and_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKET_SYMBOLS", "aapl, MSFT,,AAPL")
    assert build(MarketSettings).symbols == ["AAPL", "MSFT"]


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # tests/conftest.py turns `.env` off for the tests: turn it back on, as the product has it.
    monkeypatch.setitem(MarketSettings.model_config, "env_file", ENV_FILE)
    (tmp_path / ".env").write_text("MARKET_INTERVAL=5m\n")
    assert build(MarketSettings).interval == "5m"


def test_tests_ignore_a_dotenv_file(tmp_path: Path) -> None:
    # The working directory is tmp_path (the fixture above): a developer's `.env` there.
    (tmp_path / ".env").write_text("MARKET_SYMBOLS=ZZZ\nREPLAY_DIR=/nonexistent\n")
    assert build(MarketSettings).symbols == ["AAPL", "MSFT", "NVDA", "SPY"]
    assert build(SourceSettings).replay_dir == bundled_recordings()


def test_tests_see_no_pipeline_setting_of_the_caller() -> None:
    # `REPLAY_DIR=/x MARKET_SYMBOLS=ZZZ pytest` must change nothing: conftest removes them.
    from tests.conftest import TEST_STACK_ENV, pipeline_env_names

    names = pipeline_env_names()
    assert {"REPLAY_DIR", "MARKET_SYMBOLS", "POSTGRES_PASSWORD", "LOCAL_STACK"} <= names
    assert set(TEST_STACK_ENV) <= names
    assert not {"REPLAY_DIR", "DATA_SOURCE", "MARKET_SYMBOLS", "HEALTH_BASE_PORT"} & set(os.environ)


def test_env_example_documents_every_setting() -> None:
    from shared.settings import _ENV_NAMES
    from tests.conftest import REPO_ROOT

    documented = (REPO_ROOT / ".env.example").read_text()
    missing = [
        (prefix + name).upper()
        for model, prefix in _ENV_NAMES.items()
        for name in model.model_fields
        if (prefix + name).upper() not in documented
    ]
    assert missing == []


def test_macd_slow_must_be_above_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import AnalyticsSettings

    monkeypatch.setenv("ANALYTICS_MACD_FAST", "26")
    with pytest.raises(SettingsError) as caught:
        build(AnalyticsSettings)
    assert str(caught.value) == (
        "invalid setting ANALYTICS_MACD_SLOW: must be above ANALYTICS_MACD_FAST (26), got 26"
    )
