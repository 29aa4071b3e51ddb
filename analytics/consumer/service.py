"""Wires the analytics consumer: settings → its own consumer group → exactly-once loop."""

from __future__ import annotations

import threading
from dataclasses import fields

from analytics import store
from analytics.alerts.live import RulesInForce
from analytics.consumer.handler import AnalyticsHandler
from analytics.indicators import IndicatorParams
from analytics.indicators.sessions import exchange_sessions
from shared import services
from shared.db import check_database, on_new_connection
from shared.errors import SettingsError
from shared.health import Health
from shared.kafka import check_broker, topics_for
from shared.loop import run_consumer
from shared.settings import AnalyticsSettings, Settings

SERVICE = services.ANALYTICS_CONSUMER.name


def configured_params(settings: AnalyticsSettings) -> IndicatorParams:
    return IndicatorParams(**{f.name: getattr(settings, f.name) for f in fields(IndicatorParams)})


def check_exchange(exchange: str) -> None:
    """Fail fast on an exchange the calendars do not know (it was found at the first bar)."""
    try:
        exchange_sessions(exchange)
    except ValueError as exc:
        raise SettingsError(f"ANALYTICS_EXCHANGE={exchange}: {exc}") from None


def run(settings: Settings, stop: threading.Event, health: Health) -> None:
    # The reload handler first: until it is in place a SIGHUP ends the process (the default).
    rules = RulesInForce(settings.alert_rules.rules_path)
    rules.install_sighup()
    check_exchange(settings.analytics.exchange)
    check_broker(settings.kafka)
    check_database(settings.postgres)
    params = configured_params(settings.analytics)
    # Registered (and committed) before any batch can refer to it.
    params_id = on_new_connection(settings.postgres, lambda conn: store.params_id(conn, params))
    group = settings.consumer.group_analytics
    handler = AnalyticsHandler(
        group,
        params,
        params_id,
        settings.analytics.exchange,
        rules,
        settings.alert_rules.historical_age_s,
    )
    run_consumer(
        settings,
        stop,
        health,
        service=SERVICE,
        group_id=group,
        topics=[topics_for(settings.kafka).market_bars],
        handler=handler,
        configure=store.prepare_connection,
    )
