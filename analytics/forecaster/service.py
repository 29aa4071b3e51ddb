"""Wires the forecaster: settings → its own consumer group on market.bars → the fit pool → loop."""

from __future__ import annotations

import os
import threading

from analytics.alerts.live import RulesInForce
from analytics.forecaster import store
from analytics.forecaster.handler import ForecastHandler
from analytics.forecaster.pool import FitPool
from ml.params import ForecastParams
from shared import services
from shared.db import check_database
from shared.health import Health
from shared.kafka import check_broker, topics_for
from shared.loop import run_consumer
from shared.settings import ForecastSettings, Settings

SERVICE = services.ANALYTICS_FORECASTER.name


def forecast_params(settings: ForecastSettings) -> ForecastParams:
    return ForecastParams(
        horizon=settings.horizon,
        every=settings.every,
        min_bars=settings.min_bars,
        window=settings.window,
        refits=settings.refits,
        max_p=settings.max_p,
        max_q=settings.max_q,
        maxiter=settings.maxiter,
        time_budget_s=settings.time_budget_s,
    )


def run(settings: Settings, stop: threading.Event, health: Health) -> None:
    # The reload handler first: until it is in place a SIGHUP ends the process (the default).
    rules = RulesInForce(settings.alert_rules.rules_path)
    rules.install_sighup()
    check_broker(settings.kafka)
    check_database(settings.postgres)
    forecast = settings.forecast
    workers = (os.cpu_count() or 1) if forecast.workers is None else forecast.workers
    pool = FitPool(forecast_params(forecast), workers, forecast.fit_nice, forecast.fit_idle)
    try:
        handler = ForecastHandler(
            settings.consumer.group_forecaster,
            forecast_params(forecast),
            forecast.exchange,
            pool,
            forecast.max_origins_per_batch,
            rules,
            settings.alert_rules.historical_age_s,
        )
        run_consumer(
            settings,
            stop,
            health,
            service=SERVICE,
            group_id=settings.consumer.group_forecaster,
            topics=[topics_for(settings.kafka).market_bars],
            handler=handler,
            configure=store.prepare_connection,
        )
    finally:
        pool.close()
