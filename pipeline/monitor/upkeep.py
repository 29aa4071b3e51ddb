"""The hook to table-partition upkeep (db/partitions.py: partitions created ahead, retention).

Partitioning lives in its own module, run as the owner role (POSTGRES_USER: the services'
writer role has no DDL). The monitor calls it each round when it is importable, and says so
in its metrics when it is not (a checkout without it keeps monitoring).
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime

import psycopg

from shared.health import Health
from shared.metrics import PARTITION_UPKEEP
from shared.settings import PostgresSettings, Settings, build

logger = logging.getLogger(__name__)


def partition_upkeep(settings: Settings, health: Health, now: datetime) -> str:
    """Create partitions ahead and apply retention once; the outcome (ok, failed, unavailable).

    Never raises: a failure turns health red until a round succeeds.
    """
    try:
        partitions = importlib.import_module("db.partitions")
        ensure, retain = partitions.ensure_partitions, partitions.apply_retention
    except (ImportError, AttributeError):
        PARTITION_UPKEEP.labels("unavailable").inc()
        return "unavailable"
    try:
        owner = build(PostgresSettings)  # the owner login, not the services' writer
        with psycopg.connect(owner.conninfo(), autocommit=True, connect_timeout=5) as conn:
            ensure(conn, settings, now)
            retain(conn, settings, now)
    except Exception as exc:  # noqa: BLE001 (a loop boundary: counted, logged, health red)
        PARTITION_UPKEEP.labels("failed").inc()
        health.red("partitions", f"partition upkeep failed: {exc}")
        logger.warning("partition upkeep failed: %s", exc)
        return "failed"
    PARTITION_UPKEEP.labels("ok").inc()
    health.green("partitions")
    return "ok"
