"""Settings: one clear line per problem, secrets never echoed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.errors import SettingsError
from shared.kafka import consumer_config, producer_config
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


def test_kafka_mutual_tls_is_passed_through_with_a_secret_key_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CERTIFICATE_LOCATION", "/etc/pipeline/client.pem")
    monkeypatch.setenv("KAFKA_SSL_KEY_LOCATION", "/etc/pipeline/client.key")
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", SECRET)
    settings = build(KafkaSettings)
    assert SECRET not in repr(settings)
    config = settings.client_config()
    assert config["security.protocol"] == "SSL"
    assert config["ssl.certificate.location"] == "/etc/pipeline/client.pem"
    assert config["ssl.key.location"] == "/etc/pipeline/client.key"
    assert config["ssl.key.password"] == SECRET


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


# --- A mistyped setting name is refused, naming the one meant -------------------------------

# Variables the Kafka and PostgreSQL images (and compose itself) read: they are not near misses.
CONTAINER_VARIABLES = (
    "CLUSTER_ID",
    "KAFKA_NODE_ID",
    "KAFKA_PROCESS_ROLES",
    "KAFKA_CONTROLLER_QUORUM_VOTERS",
    "KAFKA_CONTROLLER_LISTENER_NAMES",
    "KAFKA_LISTENERS",
    "KAFKA_ADVERTISED_LISTENERS",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    "KAFKA_INTER_BROKER_LISTENER_NAME",
    "KAFKA_LOG_DIRS",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS",
    "KAFKA_LOG_RETENTION_MS",
    "KAFKA_LOG_RETENTION_HOURS",
    "KAFKA_NUM_PARTITIONS",
    "KAFKA_DEFAULT_REPLICATION_FACTOR",
    "KAFKA_HEAP_OPTS",
    "KAFKA_OPTS",
    "KAFKA_SASL_ENABLED_MECHANISMS",
    "KAFKA_SSL_KEYSTORE_LOCATION",
    "KAFKA_HOST_PORT",
    "POSTGRES_DB",
    "POSTGRES_INITDB_ARGS",
    "POSTGRES_INITDB_WALDIR",
    "POSTGRES_HOST_AUTH_METHOD",
    "POSTGRES_PASSWORD_FILE",
    "POSTGRES_USER_FILE",
    "POSTGRES_DB_FILE",
    "POSTGRES_HOST_PORT",
    "PGDATA",
    "PIPELINE_IMAGE_TAG",
    "COMPOSE_PROFILES",
)


def compose_variables() -> set[str]:
    """Every variable docker-compose.yml sets in a container or interpolates (`${NAME…}`)."""
    import re

    import yaml

    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "docker-compose.yml").read_text()
    names = set(re.findall(r"\$\{(\w+)", text))
    for spec in yaml.safe_load(text)["services"].values():
        names |= set(spec.get("environment") or {})
    return names


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("MARKET_SYMBOL", "MARKET_SYMBOLS"),
        ("market_symbol", "MARKET_SYMBOLS"),
        ("NEWS_SYMBOL", "NEWS_SYMBOLS"),
        ("FINHUB_API_KEY", "FINNHUB_API_KEY"),
        ("DATA_SOURCES", "DATA_SOURCE"),
        ("KAFKA_BOOTSTRAP_SERVER", "KAFKA_BOOTSTRAP_SERVERS"),
        ("POSTGRES_PASWORD", "POSTGRES_PASSWORD"),
        ("MARKET_INTREVAL", "MARKET_INTERVAL"),
        ("LOG_LEVL", "LOG_LEVEL"),
    ],
)
def test_a_near_miss_is_refused_naming_the_setting_meant(
    typo: str, meant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(typo, SECRET)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"unknown setting {typo}: did you mean {meant}?"
    assert SECRET not in str(caught.value)  # the name only, never the value


def test_container_and_compose_variables_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import near_miss, setting_names

    names = set(CONTAINER_VARIABLES) | compose_variables()
    assert {"KAFKA_NODE_ID", "POSTGRES_DB"} <= names
    assert {name: near_miss(name) for name in names if near_miss(name)} == {}
    for name in names - setting_names():
        monkeypatch.setenv(name, "1")
    load_settings()


def test_a_near_miss_in_the_dotenv_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(MarketSettings.model_config, "env_file", ENV_FILE)
    (tmp_path / ".env").write_text("MARKET_SYMBOLS=TSLA\nPOSTGRES_DB=x\nMARKET_INTERVALL=5m\n")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "unknown setting MARKET_INTERVALL (in .env): did you mean MARKET_INTERVAL?"
    )


# --- Values that failed later are refused at start ------------------------------------------


def test_news_until_is_a_date(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date

    from shared.settings import NewsSettings

    monkeypatch.setenv("NEWS_UNTIL", "2024/01/05")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid setting NEWS_UNTIL: expected a date as YYYY-MM-DD, got '2024/01/05'"
    )
    monkeypatch.setenv("NEWS_UNTIL", "2024-01-05")
    assert build(NewsSettings).until == date(2024, 1, 5)
    monkeypatch.setenv("NEWS_UNTIL", "")
    assert build(NewsSettings).until is None


@pytest.mark.parametrize("name", ["RECORD_DIR", "REPLAY_DIR", "REPLAY_OVERLAY_DIR"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_path_is_refused(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^invalid setting {name}: an empty path means"):
        build(SourceSettings)


def test_news_symbols_default_to_the_market_symbols_upper_cased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARKET_SYMBOLS", "tsla,amd")
    assert load_settings().news.symbols == ["TSLA", "AMD"]
    monkeypatch.setenv("NEWS_SYMBOLS", "")
    assert load_settings().news.symbols == ["TSLA", "AMD"]
    monkeypatch.setenv("NEWS_SYMBOLS", "aapl, msft,AAPL")
    assert load_settings().news.symbols == ["AAPL", "MSFT"]


def test_history_defaults_per_interval_and_is_refused_beyond_what_yahoo_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert build(MarketSettings).history_days == 400  # daily: a trading year and more
    monkeypatch.setenv("MARKET_INTERVAL", "1m")
    assert build(MarketSettings).history_days == 29
    monkeypatch.setenv("MARKET_HISTORY_DAYS", "30")
    with pytest.raises(SettingsError) as caught:
        build(MarketSettings)
    assert str(caught.value) == (
        "invalid setting MARKET_HISTORY_DAYS: Yahoo serves 1m bars for the last 30 days only; "
        "at most 29 with MARKET_INTERVAL=1m, got 30"
    )
    monkeypatch.setenv("MARKET_INTERVAL", "1d")
    assert build(MarketSettings).history_days == 30  # an explicit value is kept


def test_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import LogSettings

    assert build(LogSettings).log_level == "INFO"
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert build(LogSettings).log_level == "DEBUG"
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    with pytest.raises(SettingsError, match="^invalid setting LOG_LEVEL: "):
        build(LogSettings)


def test_producers_linger_as_long_as_the_setting_says(monkeypatch: pytest.MonkeyPatch) -> None:
    assert producer_config(build(KafkaSettings), "p")["linger.ms"] == 20
    monkeypatch.setenv("KAFKA_LINGER_MS", "5")
    assert producer_config(build(KafkaSettings), "p")["linger.ms"] == 5


def test_consumers_fetch_as_the_settings_say(monkeypatch: pytest.MonkeyPatch) -> None:
    timeouts = {"max_poll_interval_ms": 300_000, "session_timeout_ms": 45_000}
    config = consumer_config(build(KafkaSettings), "g", **timeouts)
    assert (config["fetch.wait.max.ms"], config["fetch.min.bytes"]) == (10, 1 << 20)
    monkeypatch.setenv("KAFKA_FETCH_WAIT_MAX_MS", "100")
    monkeypatch.setenv("KAFKA_FETCH_MIN_BYTES", "1")
    config = consumer_config(build(KafkaSettings), "g", **timeouts)
    assert (config["fetch.wait.max.ms"], config["fetch.min.bytes"]) == (100, 1)
    monkeypatch.setenv("KAFKA_FETCH_MIN_BYTES", "0")
    with pytest.raises(SettingsError, match="^invalid setting KAFKA_FETCH_MIN_BYTES: "):
        build(KafkaSettings)
