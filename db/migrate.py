"""Apply db/migrations/NNNN_*.sql in order, once each, each in its own transaction; then the
partition upkeep, so a fresh database never meets a missing time partition."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from db.partitions import ensure_partitions
from shared.errors import StorageError
from shared.settings import RetentionSettings, build

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Serializes concurrent `migrate` runs (two services starting at once).
_LOCK_KEY = 0x6D696772  # "migr"

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    filename    text        NOT NULL,
    sha256      text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED = "SELECT version, filename, sha256 FROM schema_migrations"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, filename, sha256) VALUES (%s, %s, %s)"


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise StorageError(f"migration file {path.name} is not named NNNN_what.sql")
        migrations.append(Migration(match.group(1), path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise StorageError(f"two migration files share a number in {directory}")
    return migrations


def migrate(
    conninfo: str,
    directory: Path = MIGRATIONS_DIR,
    retention: RetentionSettings | None = None,
) -> list[str]:
    """Apply the pending migrations, then ensure the time partitions (db/partitions.py; with
    `retention`, else RETENTION_* as built here); return the file names applied."""
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(CREATE_LEDGER)
            applied = {row[0]: row for row in conn.execute(SELECT_APPLIED).fetchall()}
            for migration in discover(directory):
                done = applied.get(migration.version)
                if done is not None:
                    if done[2] != migration.sha256:
                        raise StorageError(
                            f"migration {migration.path.name} was changed after it was applied "
                            "(migrations are forward-only: add a new file)"
                        )
                    continue
                _apply(conn, migration)
                applied_now.append(migration.path.name)
            # Still under the lock: two starting services never create the same partition.
            ensure_partitions(conn, retention or build(RetentionSettings), datetime.now(UTC))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(INSERT_APPLIED, (migration.version, migration.path.name, migration.sha256))
    except psycopg.Error as exc:
        raise StorageError(
            f"migration {migration.path.name} failed and was rolled back: {exc}"
        ) from exc
    logger.info("applied %s", migration.path.name)
