"""The registry of the pipeline's long-running services: what runs, how, and on which port.

start_pipeline.py starts exactly these (in this order), shared.health gives each its port, and
tests check docker-compose.yml and the README against them. A new service is one `_register`
line here (its module needs a `__main__` that calls `shared.service.run_service`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Replicas of a service add 100 each to its port (HEALTH_REPLICA_INDEX): offsets stay below.
REPLICA_PORT_STRIDE = 100


@dataclass(frozen=True)
class Service:
    """One long-running service of the pipeline."""

    # What it is called in logs, metrics, health, watermarks and dead letters.
    name: str
    # Run with `python -m MODULE`.
    module: str
    # /healthz and /metrics on HEALTH_BASE_PORT + port_offset (+ 100 per replica).
    port_offset: int
    description: str

    def __post_init__(self) -> None:
        if not 0 < self.port_offset < REPLICA_PORT_STRIDE:
            raise ValueError(
                f"{self.name}: port offset {self.port_offset} must be in 1..99 "
                f"(replicas add {REPLICA_PORT_STRIDE} each)"
            )

    def health_port(self, base_port: int, replica_index: int = 0) -> int:
        """Where replica `replica_index` serves /healthz and /metrics."""
        return base_port + self.port_offset + REPLICA_PORT_STRIDE * replica_index


_REGISTRY: dict[str, Service] = {}


def _register(name: str, port_offset: int, description: str, module: str | None = None) -> Service:
    service = Service(name, module or name, port_offset, description)
    clash = next((s for s in _REGISTRY.values() if s.port_offset == port_offset), None)
    if name in _REGISTRY or clash is not None:
        raise ValueError(f"{name}: name or port offset {port_offset} already registered")
    _REGISTRY[name] = service
    return service


# Start order: producers first, then the consumers that read their topics.
PRODUCER_MARKET = _register(
    "producer.market", 1, "Yahoo charts (+ Finnhub profile2) → market.bars, actions, instruments"
)
PRODUCER_NEWS = _register("producer.news", 2, "Finnhub company and market news → news.articles")
PRODUCER_MACRO = _register("producer.macro", 3, "FRED series → macro.observations")
CONSUMER_STORAGE = _register(
    "consumer.storage", 10, "every topic → PostgreSQL, rows and offsets in one transaction"
)
ANALYTICS_CONSUMER = _register(
    "analytics.consumer", 20, "market.bars → indicators (SMA, EMA, RSI, MACD, Bollinger…)"
)
ANALYTICS_FORECASTER = _register(
    "analytics.forecaster", 30, "market.bars → ARIMA forecasts with intervals, scored live"
)
ALERT_RELAY = _register(
    "analytics.alert_relay",
    40,
    "alert_events → alerts.events (+ webhook, Alertmanager), one active instance",
)
# Reads only: the web page on DASHBOARD_PORT; this offset is its /healthz and /metrics.
ANALYTICS_DASHBOARD = _register(
    "analytics.dashboard",
    70,
    "PostgreSQL → a live web page: prices, indicators, forecasts, alerts, freshness, health",
)
# Freshness, pipeline_metrics and partition upkeep: one small service, after those it watches.
PIPELINE_MONITOR = _register(
    "pipeline.monitor",
    50,
    "consumer lag, data freshness and every service's figures → pipeline_metrics; partition upkeep",
)


def all_services() -> tuple[Service, ...]:
    """Every registered service, in start order."""
    return tuple(_REGISTRY.values())


def by_name(name: str) -> Service:
    """The registered service called `name`; KeyError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(_REGISTRY)}") from None
