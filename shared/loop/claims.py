"""Taking partitions: the claim in consumer_offsets, then the handler's committed states."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from shared.errors import StateRestoreError
from shared.loop.contract import Handler, PartitionKey
from shared.loop.failures import describe
from shared.loop.offsets import claim_partitions

logger = logging.getLogger(__name__)

# Each partition's stored offset, its state, and why a state could not be restored.
Claimed = tuple[dict[PartitionKey, int | None], dict[PartitionKey, Any], dict[PartitionKey, str]]


def claim(
    pool: ConnectionPool,
    handler: Handler,
    keys: Sequence[PartitionKey],
    *,
    group: str,
    owner: str,
    timeout_s: float,
) -> Claimed:
    """Make `owner` the owner of `keys` (committed at once), then load their states.
    Database errors raise; a state that cannot be restored is named in the third dict."""
    with pool.connection(timeout=timeout_s) as conn:
        with conn.transaction():
            stored = claim_partitions(conn, group, owner, keys)
        states, broken = load_states(conn, handler, keys)
    return stored, states, broken


def load_states(
    conn: psycopg.Connection, handler: Handler, keys: Sequence[PartitionKey]
) -> tuple[dict[PartitionKey, Any], dict[PartitionKey, str]]:
    """The handler's states of `keys`; if loading fails for a reason other than the database,
    each partition is loaded alone so one bad state pauses only its own partition."""
    try:
        with conn.transaction():
            return handler.load(conn, keys), {}
    except psycopg.Error:
        raise
    except Exception as exc:  # noqa: BLE001 (told apart partition by partition just below)
        logger.warning("loading states failed (%s): loading them one by one", describe(exc))
    states: dict[PartitionKey, Any] = {}
    broken: dict[PartitionKey, str] = {}
    for key in keys:
        try:
            with conn.transaction():
                states.update(handler.load(conn, [key]))
        except psycopg.Error:
            raise
        except Exception as exc:  # noqa: BLE001 (a state this code cannot read: pause it)
            reason = exc if isinstance(exc, StateRestoreError) else describe(exc)
            broken[key] = f"state of {key[0]}[{key[1]}] cannot be restored: {reason}"
    return states, broken
