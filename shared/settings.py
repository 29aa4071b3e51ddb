"""The one settings tree: pydantic-settings models read from the environment and `.env`."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.errors import SettingsError

ENV_FILE = ".env"
SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _upper_unique(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("at least one symbol is needed")
    return list(dict.fromkeys(symbol.upper() for symbol in value))


def _no_empty_path(value: Any) -> Any:
    # Path("") is the working directory: an empty setting would silently mean "here".
    if isinstance(value, str) and not value.strip():
        raise ValueError("an empty path means the working directory: name a folder, or unset it")
    return value


class KafkaSettings(BaseSettings):
    """Broker address, client security pass-through and topic naming."""

    model_config = _config("KAFKA_")

    bootstrap_servers: str = "127.0.0.1:19092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    # Mutual TLS: the client's certificate and key (PEM files), for a cluster that asks for one.
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    topic_prefix: str = ""
    # Fixed when a topic is created: symbol -> partition must not move under running state.
    partitions_market_bars: int = Field(12, ge=1)
    partitions_deadletter: int = Field(1, ge=1)
    partitions_market_actions: int = Field(12, ge=1)
    partitions_market_instruments: int = Field(3, ge=1)
    partitions_news_articles: int = Field(3, ge=1)
    partitions_macro_observations: int = Field(1, ge=1)
    partitions_alerts_events: int = Field(3, ge=1)
    # Checked on every topic by the setup step (an existing one too); created topics get both.
    replication_factor: int = Field(1, ge=1)
    # With acks=all a write is confirmed once this many replicas have it (1 for the local
    # single-broker stack; with 3 replicas, 2 survives the loss of one broker without loss).
    min_insync_replicas: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1)
    # How long the setup step and the services wait for the broker before giving up.
    connect_timeout_s: float = Field(15.0, gt=0)
    # How long a producer holds a message to send it with others (librdkafka linger.ms). Every
    # latency from a bar's CreateTime includes it, but each request costs the broker: at 5 ms
    # (the Kafka 4 clients' default) bench.alerts' broker took 33-41 % of a core instead of
    # 20-25 %, and on a busy 2-core machine that CPU came out of the tails (analytics p99
    # 238-310 ms against 93-134, four interleaved runs each). Lower it where cores are spare.
    linger_ms: float = Field(20.0, ge=0, le=1000)
    # How a consumer's fetch waits at the broker (librdkafka fetch.wait.max.ms and
    # fetch.min.bytes): the broker answers once `fetch_min_bytes` are there or `fetch_wait_max_ms`
    # has passed. librdkafka sends one produce request per partition, and with fetch.min.bytes=1
    # every one of them answered each consumer's waiting fetch: at 2,000 bars/s over 12
    # partitions a consumer fetched ~264 times a second (~92 at these defaults), and the broker
    # spent a sixth of the machine answering. A backlog fills fetch_min_bytes at once, so a
    # catching-up consumer never waits; a live one waits at most fetch_wait_max_ms, which an
    # idle machine pays as latency (bench.analytics, the consumer alone at 2,000 bars/s: p99 44
    # against 36 ms) and a busy one gets back in its tails (bench.e2e: analytics alert p99 about
    # halved). Lower it where cores are spare.
    fetch_wait_max_ms: int = Field(10, ge=0, le=10_000)
    fetch_min_bytes: int = Field(1 << 20, ge=1, le=8 << 20)

    @model_validator(mode="after")
    def _in_sync_within_replicas(self) -> KafkaSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"KAFKA_MIN_INSYNC_REPLICAS={self.min_insync_replicas} is more than "
                f"KAFKA_REPLICATION_FACTOR={self.replication_factor}: no write could be confirmed"
            )
        return self

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port…], got {server.strip()!r}")
        return value

    def client_config(self) -> dict[str, Any]:
        """The librdkafka settings every client of this pipeline shares."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            # Topics are created by the setup step only (a producer that starts first must not
            # create a 1-partition topic).
            "allow.auto.create.topics": False,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        if self.ssl_certificate_location:
            config["ssl.certificate.location"] = self.ssl_certificate_location
        if self.ssl_key_location:
            config["ssl.key.location"] = self.ssl_key_location
        if self.ssl_key_password is not None:
            config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return config


class PostgresSettings(BaseSettings):
    """Where the pipeline's database is and how the pool behaves."""

    model_config = _config("POSTGRES_")

    host: str = "127.0.0.1"
    port: int = Field(15432, ge=1, le=65535)
    dbname: str = "pipeline"
    user: str = "pipeline"
    password: SecretStr = SecretStr("pipeline")
    # POSTGRES_USER is the owner (migrations, partition upkeep, `python -m db bootstrap`); the
    # services connect as the writer (DML and TEMP, no DDL), people as the reader (SELECT).
    writer_user: str = "pipeline_writer"
    writer_password: SecretStr = SecretStr("pipeline_writer")
    reader_user: str = "pipeline_reader"
    reader_password: SecretStr = SecretStr("pipeline_reader")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(4, ge=1)
    connect_timeout_s: int = Field(5, ge=1)
    # Server-side limits of the services' sessions. Unset: a fifth (statement) and a tenth
    # (lock) of CONSUMER_MAX_POLL_INTERVAL_MS, so a slow statement or a held lock never costs a
    # consumer its place in the group; set explicitly, they must stay at most half of it.
    statement_timeout_ms: int | None = Field(None, ge=1)
    lock_timeout_ms: int | None = Field(None, ge=1)
    # A session idle inside a transaction this long is ended by the server (0: never).
    idle_in_transaction_timeout_ms: int = Field(600_000, ge=0)
    # TCP keepalives (libpq): a dead server or network path is noticed in about
    # idle + interval * count seconds instead of the kernel's two hours.
    keepalives_idle_s: int = Field(30, ge=1)
    keepalives_interval_s: int = Field(10, ge=1)
    keepalives_count: int = Field(3, ge=1)

    @field_validator("statement_timeout_ms", "lock_timeout_ms", mode="before")
    @classmethod
    def _empty_is_derived(cls, value: Any) -> Any:
        return None if value == "" else value

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq connection string; keep it out of logs (it holds the password)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            dbname=dbname or self.dbname,
            user=self.user,
            password=self.password.get_secret_value(),
            sslmode=self.sslmode,
            connect_timeout=self.connect_timeout_s,
            application_name="market-pipeline",
            keepalives=1,
            keepalives_idle=self.keepalives_idle_s,
            keepalives_interval=self.keepalives_interval_s,
            keepalives_count=self.keepalives_count,
        )

    def as_writer(self) -> PostgresSettings:
        """The same database as the services' login, `pipeline_writer` (db/bootstrap.py)."""
        return self.model_copy(update={"user": self.writer_user, "password": self.writer_password})

    def login_names(self) -> str:
        """The settings that give this login (for error lines): the writer's, reader's or
        owner's user and password."""
        for role, prefix in ((self.writer_user, "WRITER_"), (self.reader_user, "READER_")):
            if self.user == role:
                return f"POSTGRES_{prefix}USER/POSTGRES_{prefix}PASSWORD"
        return "POSTGRES_USER/POSTGRES_PASSWORD"

    def as_reader(self) -> PostgresSettings:
        """The same database as the read-only login, `pipeline_reader` (db/bootstrap.py)."""
        return self.model_copy(update={"user": self.reader_user, "password": self.reader_password})

    def session_timeouts(self, max_poll_interval_ms: int) -> dict[str, int]:
        """statement_timeout, lock_timeout and idle_in_transaction_session_timeout (ms) for a
        consumer's sessions, checked against the consumer's max.poll.interval.ms."""
        statement = self.statement_timeout_ms or max_poll_interval_ms // 5
        lock = self.lock_timeout_ms or max_poll_interval_ms // 10
        for name, value in (("STATEMENT_TIMEOUT_MS", statement), ("LOCK_TIMEOUT_MS", lock)):
            if value > max_poll_interval_ms // 2:
                raise SettingsError(
                    f"invalid setting POSTGRES_{name}: {value} ms is not well below "
                    f"CONSUMER_MAX_POLL_INTERVAL_MS ({max_poll_interval_ms} ms); at most half"
                )
        return {
            "statement_timeout": statement,
            "lock_timeout": lock,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_timeout_ms,
        }

    def describe(self) -> str:
        """Where the database is, without the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


class DataSource(StrEnum):
    LIVE = "live"
    REPLAY = "replay"


def bundled_recordings() -> Path:
    """The recorded API responses shipped with the project (recordings/, see its PROVENANCE.md)."""
    return project_root() / "recordings"


class SourceSettings(BaseSettings):
    """Live APIs or recorded responses (README: `DATA_SOURCE`, `REPLAY_DIR`)."""

    model_config = _config("")

    data_source: DataSource = DataSource.LIVE
    # DATA_SOURCE=replay with nothing else set replays the bundled recordings (offline demo).
    replay_dir: Path = Field(default_factory=bundled_recordings)
    # Writable folder of injected response sequences (fault tests); never the recorded data.
    replay_overlay_dir: Path | None = None
    record_dir: Path | None = None
    http_timeout_s: float = Field(20.0, gt=0)

    _paths = field_validator("replay_dir", "replay_overlay_dir", "record_dir", mode="before")(
        _no_empty_path
    )

    @model_validator(mode="after")
    def _replay_needs_dir(self) -> SourceSettings:
        if self.data_source is DataSource.REPLAY and not self.replay_dir.is_dir():
            raise ValueError(f"REPLAY_DIR={self.replay_dir} is not a directory")
        if self.data_source is DataSource.REPLAY and self.record_dir is not None:
            raise ValueError("RECORD_DIR records live responses; unset it when DATA_SOURCE=replay")
        return self


# How many days back Yahoo serves each interval (yfinance 1.7 scrapers/history.py: 1m 30 days,
# 2m-90m 60 days, 60m/1h 730 days; daily bars back to the listing, and yfinance's own "max" asks
# for 99 years), less a day of margin so a slow request stays inside the limit.
YAHOO_HISTORY_LIMIT_DAYS = {
    "1m": 29,
    "2m": 59,
    "5m": 59,
    "15m": 59,
    "30m": 59,
    "60m": 729,
    "90m": 59,
    "1h": 729,
    "1d": 99 * 365,
}
# MARKET_HISTORY_DAYS unset: a year of bars where Yahoo serves it, else all it serves. Daily: 400
# calendar days hold at least 252 sessions (a trading year), enough to warm every indicator
# (SMA 50, MACD 26/9, volatility 20) and a forecast's 120 bars well before today.
DEFAULT_HISTORY_DAYS = {
    interval: min(limit, 400 if interval == "1d" else 365)
    for interval, limit in YAHOO_HISTORY_LIMIT_DAYS.items()
}


class MarketSettings(BaseSettings):
    """What producer.market polls and how fast."""

    model_config = _config("MARKET_")

    symbols: Annotated[list[str], NoDecode] = ["AAPL", "MSFT", "NVDA", "SPY"]
    interval: Literal["1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d"] = "1d"
    # Unset (or empty): DEFAULT_HISTORY_DAYS of the interval; at most what Yahoo serves.
    history_days: int = Field(None, ge=1, validate_default=True)  # type: ignore[assignment]
    poll_interval_s: float = Field(60.0, gt=0)
    requests_per_minute: int = Field(30, ge=1)
    settle_delay_s: float = Field(5.0, ge=0)
    include_prepost: bool = False
    exchange: str = "XNYS"

    _split_symbols = field_validator("symbols", mode="before")(_split_csv)
    _symbols = field_validator("symbols")(_upper_unique)

    @field_validator("history_days", mode="before")
    @classmethod
    def _history_for_interval(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_HISTORY_DAYS[info.data.get("interval", "1d")]
        return value

    @field_validator("history_days")
    @classmethod
    def _within_what_yahoo_serves(cls, value: int, info: ValidationInfo) -> int:
        interval = info.data.get("interval")
        limit = YAHOO_HISTORY_LIMIT_DAYS.get(interval or "")
        if limit is not None and value > limit:
            raise ValueError(
                f"Yahoo serves {interval} bars for the last {limit + 1} days only; "
                f"at most {limit} with MARKET_INTERVAL={interval}, got {value}"
            )
        return value


class ApiSettings(BaseSettings):
    """API keys: secrets, never logged; live mode without one idles instead of fabricating."""

    model_config = _config("")

    finnhub_api_key: SecretStr | None = None
    fred_api_key: SecretStr | None = None
    # One limiter per API per process, below the providers' limits (Finnhub 60/min, FRED 120/min).
    finnhub_requests_per_minute: int = Field(55, ge=1)
    fred_requests_per_minute: int = Field(110, ge=1)
    # The one retry around each Finnhub/FRED request (429, 5xx, timeouts): attempts, and the
    # first backoff (doubling, full jitter, at most 60 s).
    api_retry_attempts: int = Field(5, ge=1)
    api_retry_backoff_s: float = Field(1.0, gt=0)

    @field_validator("finnhub_api_key", "fred_api_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


def _market_symbols() -> list[str]:
    return build(MarketSettings).symbols


class NewsSettings(BaseSettings):
    """What producer.news polls and how fast."""

    model_config = _config("NEWS_")

    # Unset (or empty): the symbols of MARKET_SYMBOLS.
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=_market_symbols)
    general: bool = True
    general_category: str = "general"
    # Finnhub's window is in dates and its lists are only mostly sorted: re-ask this overlap.
    overlap_days: int = Field(1, ge=1)
    history_days: int = Field(7, ge=1)
    poll_interval_s: float = Field(300.0, gt=0)
    # replay: the window ends here instead of today (recordings are dated)
    until: date | None = None

    _symbols = field_validator("symbols")(_upper_unique)

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_or_market(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return _market_symbols()
        return _split_csv(value)

    @field_validator("until", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}") from None


class MacroSettings(BaseSettings):
    """Which FRED series producer.macro polls and how often."""

    model_config = _config("MACRO_")

    series: Annotated[list[str], NoDecode] = [
        "DGS10",
        "DGS2",
        "T10Y2Y",
        "FEDFUNDS",
        "UNRATE",
        "CPIAUCSL",
        "GDP",
    ]
    poll_interval_s: float = Field(3600.0, gt=0)
    # After the first load only observations this recent are asked for.
    recent_days: int = Field(400, ge=1)
    page_limit: int = Field(100_000, ge=1, le=100_000)

    _split_series = field_validator("series", mode="before")(_split_csv)


class ConsumerSettings(BaseSettings):
    """Batch consumption knobs shared by the consumers."""

    model_config = _config("CONSUMER_")

    group_storage: str = "storage"
    group_analytics: str = "analytics"
    # The forecaster's own group on market.bars: fits never sit in the indicators' latency.
    group_forecaster: str = "forecaster"
    batch_size: int = Field(5000, ge=1)
    poll_timeout_s: float = Field(0.5, gt=0, le=1.0)
    max_poll_interval_ms: int = Field(300_000, ge=1000)
    session_timeout_ms: int = Field(45_000, ge=1000)
    # The first wait after a transient database failure (doubling up to retry_max_s).
    db_retry_s: float = Field(1.0, gt=0)
    # How long a batch, a state load or a sweep waits for a pooled connection before the
    # database counts as unavailable (it was db_retry_s: a short backoff made every wait fail).
    pool_wait_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(30.0, gt=0)
    # How often a batch PostgreSQL refuses (read-only, privileges, a missing table) or a state
    # that cannot be restored is tried again, with health red meanwhile.
    refused_retry_s: float = Field(30.0, gt=0)
    # A batch whose messages the database rejects one by one is dead-lettered message by
    # message, up to this share of the batch (at least poison_max_in_row); past it the member
    # pauses, because the fault is then the database's, not the messages'.
    poison_max_share: float = Field(0.1, gt=0, le=1)
    # ... and at most this many in a row with nothing stored between them: a database that
    # rejects everything (a constraint added by mistake) pauses the member after a few.
    poison_max_in_row: int = Field(3, ge=1)


class AnalyticsSettings(BaseSettings):
    """Indicator periods of the analytics consumer (a change is a new params_id)."""

    model_config = _config("ANALYTICS_")

    sma_fast: int = Field(20, ge=1)
    sma_slow: int = Field(50, ge=1)
    ema_fast: int = Field(12, ge=1)
    ema_slow: int = Field(26, ge=1)
    rsi: int = Field(14, ge=1)
    macd_fast: int = Field(12, ge=1)
    macd_slow: int = Field(26, ge=2)
    macd_signal: int = Field(9, ge=1)
    bb_period: int = Field(20, ge=1)
    bb_k: float = Field(2.0, gt=0)
    volatility: int = Field(20, ge=2)
    # The exchange calendar that turns a bar interval into bars per year (volatility).
    exchange: str = "XNYS"

    @field_validator("macd_slow")
    @classmethod
    def _slow_above_fast(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("macd_fast")
        if fast is not None and slow <= fast:
            raise ValueError(f"must be above ANALYTICS_MACD_FAST ({fast}), got {slow}")
        return slow


class ForecastSettings(BaseSettings):
    """The forecaster: when an origin falls due, what is fitted, and how the work is bounded."""

    model_config = _config("FORECAST_")

    horizon: int = Field(5, ge=1, le=50)  # H: steps forecast at each origin
    every: int = Field(5, ge=1)  # N: an origin every N bars of the exchange clock
    min_bars: int = Field(120, ge=10)  # M: bars a series needs before its first origin
    window: int = Field(500, ge=10)  # W: trailing bars fitted
    refits: int = Field(5, ge=0)  # K: refits of a found order before it is searched again
    max_p: int = Field(3, ge=0, le=5)
    max_q: int = Field(3, ge=0, le=5)
    maxiter: int = Field(50, ge=1)  # optimizer iterations per likelihood fit
    # One origin's fit gives up after this much CPU time ("timeout"; CPU, so not the load).
    time_budget_s: float = Field(2.0, gt=0)
    # Fit processes (0: fit in the consumer's own process); unset: one per core.
    workers: int | None = Field(None, ge=0)
    # How much lower the fit processes' CPU priority is (os.nice): fits yield to the services
    # whose latency counts. 0 keeps the consumer's priority.
    fit_nice: int = Field(10, ge=0, le=19)
    # The fit processes run under SCHED_IDLE: only on CPU time nothing else wants (a busy
    # machine delays forecasts, never the other services' batches). Off: niceness alone.
    fit_idle: bool = True
    # Due origins one batch hands the pool at most; the rest of the batch waits for the next.
    max_origins_per_batch: int = Field(200, ge=1)
    exchange: str = "XNYS"

    @field_validator("workers", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _window_holds_min_bars(self) -> ForecastSettings:
        if self.min_bars > self.window:
            raise ValueError(
                f"FORECAST_MIN_BARS {self.min_bars} exceeds FORECAST_WINDOW {self.window}"
            )
        return self


def _http_url_or_none(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not value.strip().startswith(("http://", "https://")):
        # Not echoed: a webhook URL often carries its token.
        raise ValueError("expected an http:// or https:// URL")
    return value.strip()


class AlertRulesSettings(BaseSettings):
    """The alert rules the analytics consumer and the forecaster evaluate."""

    model_config = _config("ALERT_")

    # The rules file (TOML), read at start and again on SIGHUP (kept only if valid).
    rules_path: Path = Field(default_factory=lambda: project_root() / "rules" / "alerts.toml")
    # Alerts computed for a bar published this long after it closed (a backfill) or consumed
    # this long after it was published (catching up, a replay) are written historical: kept in
    # alert_events, never sent to the webhook or Alertmanager.
    historical_age_s: float = Field(3600.0, gt=0)

    @field_validator("rules_path")
    @classmethod
    def _readable(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value


class AlertSettings(BaseSettings):
    """The alert relay: where alert events go besides alerts.events, and how it retries.

    No prefix of its own, so the names read as documented: ALERT_* and ALERTMANAGER_*.
    """

    model_config = _config("")

    # Each event POSTed as JSON with its id in an Idempotency-Key header. Unset: no webhook.
    # Secret (webhook URLs often carry a token): never logged.
    alert_webhook_url: SecretStr | None = None
    # Alertmanager's base URL (the relay posts to /api/v2/alerts). Unset: no Alertmanager.
    alertmanager_url: str | None = None
    # How often the relay re-posts the alerts still firing: Alertmanager resolves an alert it
    # has not heard of for endsAt (4 of these) the way it does for Prometheus.
    alertmanager_resend_s: float = Field(60.0, gt=0)
    alert_http_timeout_s: float = Field(10.0, gt=0)
    # A failed delivery is retried after this, doubling up to ALERT_RETRY_MAX_S, until it
    # succeeds: nothing is dropped, the sink's backlog and health say it is behind.
    alert_retry_initial_s: float = Field(1.0, gt=0)
    alert_retry_max_s: float = Field(60.0, gt=0)
    # LISTEN/NOTIFY wakes the relay at once; this poll is the safety net.
    alert_relay_poll_s: float = Field(5.0, gt=0)
    alert_relay_batch_size: int = Field(500, ge=1)

    _urls = field_validator("alert_webhook_url", "alertmanager_url", mode="before")(
        _http_url_or_none
    )

    @model_validator(mode="after")
    def _retry_cap_above_first(self) -> AlertSettings:
        if self.alert_retry_max_s < self.alert_retry_initial_s:
            raise ValueError(
                f"ALERT_RETRY_MAX_S {self.alert_retry_max_s:g} is below ALERT_RETRY_INITIAL_S "
                f"{self.alert_retry_initial_s:g}"
            )
        return self


class DashboardSettings(BaseSettings):
    """The live dashboard (`python -m analytics.dashboard`): where it serves, as whom it reads."""

    model_config = _config("DASHBOARD_")

    host: str = "127.0.0.1"
    port: int = Field(18050, ge=1, le=65535)
    # The page asks for new bars this often (short polling: no connection held per viewer).
    refresh_s: float = Field(5.0, gt=0, le=300)
    # Bars of the chosen series drawn at most (the newest ones).
    bars: int = Field(250, ge=10, le=20_000)
    # reader: the read-only POSTGRES_READER_USER login (`python -m db bootstrap` creates it);
    # writer: the services' POSTGRES_WRITER_USER login, for a database without that role.
    read_as: Literal["reader", "writer"] = "reader"
    # Where the service-health panel asks each service's /healthz: {name} is the service's
    # name with dashes (its compose host name), {port} its health port.
    health_url: str = "http://127.0.0.1:{port}/healthz"

    @field_validator("health_url")
    @classmethod
    def _template(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or "{port}" not in value:
            raise ValueError("expected an http:// URL with {port} (and optionally {name})")
        return value

    def login(self, postgres: PostgresSettings) -> PostgresSettings:
        """The PostgreSQL settings the dashboard connects with (DASHBOARD_READ_AS)."""
        return postgres.as_reader() if self.read_as == "reader" else postgres.as_writer()


class HealthSettings(BaseSettings):
    """Where each service serves /healthz and /metrics."""

    model_config = _config("HEALTH_")

    host: str = "127.0.0.1"
    # Each service adds its own offset, each replica 100: see shared/services.py.
    base_port: int = Field(18080, ge=1, le=65000)
    port: int | None = Field(None, ge=0, le=65535)
    replica_index: int = Field(0, ge=0)


class FreshnessSettings(BaseSettings):
    """Per-domain data-freshness SLAs (pipeline/freshness.py says how each is counted).

    Bars, indicators and forecasts: after the session close that owed them (daily) or in
    in-session time (intraday); articles: after a session close; observations: wall-clock age.
    """

    model_config = _config("FRESHNESS_")

    bars_sla_s: float = Field(3600.0, gt=0)
    indicators_sla_s: float = Field(3600.0, gt=0)
    forecasts_sla_s: float = Field(3600.0, gt=0)
    articles_sla_s: float = Field(86400.0, gt=0)
    # FRED publishes monthly and quarterly series: a quarter and a bit.
    observations_sla_s: float = Field(120 * 86400.0, gt=0)


class MonitorSettings(BaseSettings):
    """The monitor service (python -m pipeline.monitor): how often it records its figures."""

    model_config = _config("MONITOR_")

    interval_s: float = Field(60.0, gt=0)
    # pipeline_metrics rows older than this are deleted (a minute's worth each round).
    retention_days: float = Field(30.0, gt=0)


def _replica_counts(value: Any) -> Any:
    """`consumer.storage=3,analytics.consumer=2` → {name: count}; names checked by the model."""
    if not isinstance(value, str):
        return value
    counts: dict[str, Any] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        name, sep, count = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected SERVICE=COUNT, got {part!r}")
        if not count.strip().isdigit():
            raise ValueError(f"expected a whole number of replicas, got {part!r}")
        counts[name.strip()] = int(count)
    return counts


class PrometheusSettings(BaseSettings):
    """`make monitor`: the local Prometheus that scrapes every service and replica
    (infra/prometheus.py writes its scrape configuration from the service registry)."""

    model_config = _config("PROMETHEUS_")

    host: str = "127.0.0.1"
    # Beside the local stack's 19092 / 15432; 9090 is often taken by another Prometheus.
    port: int = Field(19090, ge=1, le=65535)
    # How often targets are scraped and rules evaluated.
    scrape_interval_s: float = Field(15.0, gt=0, le=3600)
    # Replicas each service runs with (HEALTH_REPLICA_INDEX 0..N-1), e.g.
    # `consumer.storage=3,analytics.consumer=2`; a service not named runs one.
    replicas: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)

    _replicas = field_validator("replicas", mode="before")(_replica_counts)

    @field_validator("replicas")
    @classmethod
    def _known_services(cls, value: dict[str, int]) -> dict[str, int]:
        from shared.services import all_services  # the registry imports no settings

        known = [service.name for service in all_services()]
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(known)}")
        low = sorted(name for name, count in value.items() if count < 1)
        if low:
            raise ValueError(f"replica count below 1 for {', '.join(low)}")
        return value


def _days_per_interval(value: Any) -> Any:
    """`1m=90,1d=forever` → {interval: days or None (kept forever)}; intervals checked by the
    model."""
    if not isinstance(value, str):
        return value
    days: dict[str, int | None] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        interval, sep, amount = (piece.strip() for piece in part.partition("="))
        if not sep or not interval:
            raise ValueError(f"expected INTERVAL=DAYS, got {part!r}")
        if amount.lower() == "forever":
            days[interval] = None
        elif amount.isdigit() and int(amount) >= 1:
            days[interval] = int(amount)
        else:
            raise ValueError(f"expected whole days >= 1 or 'forever', got {part!r}")
    return days


# 1-minute bars are kept three months, other intraday bars a year or two, daily bars forever.
DEFAULT_BAR_RETENTION = "1m=90,2m=180,5m=365,15m=365,30m=365,90m=365,60m=730,1h=730"


class RetentionSettings(BaseSettings):
    """Time partitions and retention (db/partitions.py; upkeep by `python -m db migrate` and
    the monitor service). Retention drops whole partitions, so a partition goes when its newest
    possible row is older than the retention: rows are kept at least that long, at most one
    partition span longer."""

    model_config = _config("RETENTION_")

    # Months per time partition (1: monthly); partitions start on a multiple of it in the year.
    partition_months: int = Field(1, ge=1, le=12)
    # Partitions created beyond the current one, so no insert waits for upkeep at a boundary.
    partitions_ahead: int = Field(2, ge=1, le=24)
    # Per interval: days of price_bars / indicators kept; an interval not named is kept forever.
    price_bars_days: Annotated[dict[str, int | None], NoDecode] = Field(
        default_factory=lambda: _days_per_interval(DEFAULT_BAR_RETENTION)
    )
    indicators_days: Annotated[dict[str, int | None], NoDecode] = Field(
        default_factory=lambda: _days_per_interval(DEFAULT_BAR_RETENTION)
    )
    # By origin_ts. forecast_quality scores the newest 100 origins (two years of daily origins).
    forecasts_days: int | None = Field(730, ge=1)
    forecast_errors_days: int | None = Field(730, ge=1)
    # By received_at, deleted in small batches (these tables are not partitioned).
    dead_letters_days: int | None = Field(90, ge=1)
    late_bars_days: int | None = Field(90, ge=1)
    # `drop` deletes an expired partition; `detach` keeps it as a plain table to archive.
    action: Literal["drop", "detach"] = "drop"
    # Upkeep gives up a step (retried next round) rather than queue every reader behind its lock.
    lock_timeout_ms: int = Field(2000, ge=1)

    _per_interval = field_validator("price_bars_days", "indicators_days", mode="before")(
        _days_per_interval
    )

    @field_validator(
        "forecasts_days",
        "forecast_errors_days",
        "dead_letters_days",
        "late_bars_days",
        mode="before",
    )
    @classmethod
    def _forever(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("forever", ""):
            return None
        return value

    @field_validator("partition_months")
    @classmethod
    def _divides_a_year(cls, value: int) -> int:
        if 12 % value:
            raise ValueError("must divide 12 (1, 2, 3, 4, 6 or 12), so every year starts one")
        return value

    @field_validator("price_bars_days", "indicators_days")
    @classmethod
    def _known_intervals(cls, value: dict[str, int | None]) -> dict[str, int | None]:
        from shared.validation import INTERVALS  # no settings import there: no cycle

        unknown = sorted(set(value) - INTERVALS)
        if unknown:
            raise ValueError(
                f"unknown interval(s) {', '.join(unknown)}; known: {', '.join(sorted(INTERVALS))}"
            )
        return value


class StackSettings(BaseSettings):
    """The local Kafka + Postgres the project starts for `make run` and `make test`."""

    model_config = _config("")

    local_stack: Literal["auto", "on", "off"] = "auto"
    local_stack_dir: Path = Path(".local")

    _paths = field_validator("local_stack_dir", mode="before")(_no_empty_path)


class LogSettings(BaseSettings):
    """How much every service logs (to stderr)."""

    model_config = _config("")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


@dataclass(frozen=True)
class Settings:
    """Every settings group, built once in `main()` and passed down."""

    kafka: KafkaSettings
    postgres: PostgresSettings
    source: SourceSettings
    market: MarketSettings
    consumer: ConsumerSettings
    health: HealthSettings
    stack: StackSettings
    api: ApiSettings = field(default_factory=ApiSettings)
    news: NewsSettings = field(default_factory=NewsSettings)
    macro: MacroSettings = field(default_factory=MacroSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    alert_rules: AlertRulesSettings = field(default_factory=AlertRulesSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    log: LogSettings = field(default_factory=LogSettings)
    freshness: FreshnessSettings = field(default_factory=FreshnessSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    # Its replica counts are how many replicas the status screen and the monitor read, too.
    prometheus: PrometheusSettings = field(default_factory=PrometheusSettings)


_ENV_NAMES = {
    KafkaSettings: "KAFKA_",
    PostgresSettings: "POSTGRES_",
    SourceSettings: "",
    MarketSettings: "MARKET_",
    ConsumerSettings: "CONSUMER_",
    HealthSettings: "HEALTH_",
    StackSettings: "",
    ApiSettings: "",
    NewsSettings: "NEWS_",
    MacroSettings: "MACRO_",
    AnalyticsSettings: "ANALYTICS_",
    ForecastSettings: "FORECAST_",
    AlertSettings: "",
    AlertRulesSettings: "ALERT_",
    DashboardSettings: "DASHBOARD_",
    LogSettings: "",
    FreshnessSettings: "FRESHNESS_",
    MonitorSettings: "MONITOR_",
    RetentionSettings: "RETENTION_",
    PrometheusSettings: "PROMETHEUS_",
}
# A name this close to a setting is taken for a mistyped one (MARKET_SYMBOL, FINHUB_API_KEY):
# similar by difflib's ratio and at most two characters added, dropped or changed. Farther names
# pass, because the Kafka and PostgreSQL images read KAFKA_* and POSTGRES_* variables of their own
# (KAFKA_LOG_RETENTION_MS, POSTGRES_DB) and compose reads its own (POSTGRES_HOST_PORT).
NEAR_MISS_RATIO = 0.85
NEAR_MISS_CHARACTERS = 2


def _one_line(model: type[BaseSettings], exc: ValidationError) -> str:
    # include_input=False: a rejected value may be a secret, so it is never echoed.
    error = exc.errors(include_input=False, include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"])
    name = (_ENV_NAMES[model] + field).upper() if field else model.__name__
    message = str(error["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid setting {name}: {message}{more}"


def build(model: type[SettingsT]) -> SettingsT:
    """Build one settings group, turning validation errors into a one-line SettingsError."""
    try:
        return model()
    except ValidationError as exc:
        raise SettingsError(_one_line(model, exc)) from None


def setting_names() -> frozenset[str]:
    """Every environment variable the settings read (upper case; pydantic ignores case)."""
    return frozenset(
        (prefix + name).upper()
        for model, prefix in _ENV_NAMES.items()
        for name in model.model_fields
    )


def near_miss(name: str) -> str | None:
    """The setting `name` is most likely a typo of; None for a setting or a name not close."""
    known = setting_names()
    upper = name.upper()
    if upper in known:
        return None
    for candidate in difflib.get_close_matches(upper, known, n=3, cutoff=NEAR_MISS_RATIO):
        matcher = difflib.SequenceMatcher(None, upper, candidate, autojunk=False)
        same = sum(block.size for block in matcher.get_matching_blocks())
        if len(upper) + len(candidate) - 2 * same <= NEAR_MISS_CHARACTERS:
            return candidate
    return None


def _env_file_names() -> list[tuple[str, str]]:
    """(file, name) of every entry of the `.env` files the settings models read."""
    from dotenv import dotenv_values

    files = {model.model_config.get("env_file") for model in _ENV_NAMES}
    found = []
    for file in sorted(str(f) for f in files if f):
        if Path(file).is_file():
            found.extend((file, name) for name in dotenv_values(file))
    return found


def check_setting_names(environ: Mapping[str, str] | None = None) -> None:
    """Refuse an environment variable (of `environ`, default os.environ) or a `.env` entry that
    is a near miss of a setting."""
    environ = os.environ if environ is None else environ
    for where, name in [("", name) for name in sorted(environ)] + _env_file_names():
        meant = near_miss(name)
        if meant is not None:
            origin = f" (in {where})" if where else ""
            raise SettingsError(f"unknown setting {name}{origin}: did you mean {meant}?")


def load_settings() -> Settings:
    """Read every settings group; raise SettingsError with one clear line on the first bad one.

    A mistyped setting name (a near miss of a known one) is refused first: ignored, it would
    silently leave the default in place.
    """
    check_setting_names()
    settings = Settings(
        kafka=build(KafkaSettings),
        # Services log in as the writer: DML and TEMP, no DDL (db/bootstrap.py).
        postgres=build(PostgresSettings).as_writer(),
        source=build(SourceSettings),
        market=build(MarketSettings),
        consumer=build(ConsumerSettings),
        health=build(HealthSettings),
        stack=build(StackSettings),
        api=build(ApiSettings),
        news=build(NewsSettings),
        macro=build(MacroSettings),
        analytics=build(AnalyticsSettings),
        forecast=build(ForecastSettings),
        alerts=build(AlertSettings),
        alert_rules=build(AlertRulesSettings),
        dashboard=build(DashboardSettings),
        log=build(LogSettings),
        freshness=build(FreshnessSettings),
        monitor=build(MonitorSettings),
        retention=build(RetentionSettings),
        prometheus=build(PrometheusSettings),
    )
    # Settings that depend on each other are checked at start, not when first used.
    settings.postgres.session_timeouts(settings.consumer.max_poll_interval_ms)
    return settings


def project_root() -> Path:
    """The checkout this code runs from (the local stack keeps its data under it)."""
    return Path(__file__).resolve().parent.parent
