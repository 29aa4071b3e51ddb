"""Least-privilege roles (db/bootstrap.py) on real PostgreSQL: the reader only reads, the writer
writes but never changes the schema, also while the storage consumer runs under it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from db.__main__ import main as db_main
from db.bootstrap import bootstrap
from shared.kafka import Topics
from shared.settings import ConsumerSettings, KafkaSettings, PostgresSettings
from tests.integration.bar_stream import as_rows, drained, minute_bars, publish_bars, stored_bars
from tests.integration.processes import ServiceProcess, wait_for

DDL = (
    "CREATE TABLE intruder (a int)",
    "ALTER TABLE price_bars ADD COLUMN intruder int",
    "DROP VIEW latest_bars",
    "CREATE INDEX intruder ON price_bars (volume)",
    "TRUNCATE price_bars",
)
DML = (
    "INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, volume, source,"
    " event_id) VALUES ('X', '1d', now(), 1, 1, 1, 1, 1, 't', 'x')",
    "UPDATE price_bars SET close = 0",
    "DELETE FROM price_bars",
)


@pytest.fixture
def roles(pg_settings: PostgresSettings) -> Iterator[PostgresSettings]:
    """This test database bootstrapped again (idempotent; database ACLs are not copied from the
    template, so this also applies the TEMP revocation to it)."""
    report = bootstrap(pg_settings)
    assert report.created == () and report.owner == pg_settings.user
    yield pg_settings


def refused(settings: PostgresSettings, statement: str) -> bool:
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_the_reader_selects_and_is_refused_every_write_and_ddl(roles: PostgresSettings) -> None:
    reader = roles.as_reader()
    with psycopg.connect(reader.conninfo()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (roles.reader_user,)
        for relation in ("price_bars", "latest_bars", "active_alerts", "forecast_quality"):
            conn.execute(f"SELECT count(*) FROM {relation}")  # noqa: S608 - fixed names
        conn.execute("SELECT * FROM macro_as_of('GDP', '2024-01-01')")
    for statement in (*DML, *DDL, "CREATE TEMP TABLE scratch (a int)"):
        assert refused(reader, statement), statement


def test_default_privileges_cover_tables_and_partitions_created_later(
    roles: PostgresSettings,
) -> None:
    with psycopg.connect(roles.conninfo(), autocommit=True) as owner:
        owner.execute(
            "CREATE TABLE later_bars (ts timestamptz NOT NULL, v int) PARTITION BY RANGE (ts)"
        )
        owner.execute(
            "CREATE TABLE later_bars_2026_01 PARTITION OF later_bars"
            " FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')"
        )
        owner.execute("CREATE TABLE later_ids (id bigserial PRIMARY KEY)")
    writer, reader = roles.as_writer(), roles.as_reader()
    with psycopg.connect(writer.conninfo(), autocommit=True) as conn:
        conn.execute("INSERT INTO later_bars VALUES ('2026-01-05', 1)")
        conn.execute("INSERT INTO later_bars_2026_01 VALUES ('2026-01-06', 2)")
        conn.execute("INSERT INTO later_ids DEFAULT VALUES")
    with psycopg.connect(reader.conninfo()) as conn:
        assert conn.execute("SELECT count(*) FROM later_bars_2026_01").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM later_ids").fetchone() == (1,)
    assert refused(writer, "DROP TABLE later_bars_2026_01")
    assert refused(reader, "INSERT INTO later_bars VALUES ('2026-01-07', 3)")


def test_the_writer_is_refused_ddl_while_the_storage_consumer_runs_under_it(
    roles: PostgresSettings,
    kafka_settings: KafkaSettings,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    bars = minute_bars(["AAPL", "MSFT"], 20)
    publish_bars(kafka_settings, topics.market_bars, bars)
    consumer = ServiceProcess("consumer.storage", service_env, tmp_path).start()
    try:
        wait_for(
            lambda: drained(
                roles, kafka_settings, ConsumerSettings().group_storage, topics.market_bars
            ),
            60,
            "storage to drain market.bars",
        )
        assert stored_bars(roles) == as_rows(bars)
        with psycopg.connect(roles.conninfo()) as conn:
            sessions = conn.execute(
                "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s"
                " AND pid <> pg_backend_pid()",
                (roles.dbname,),
            ).fetchall()
        assert sessions == [(roles.writer_user,)]
        writer = roles.as_writer()
        for statement in DDL:
            assert refused(writer, statement), statement
        assert consumer.running
    finally:
        consumer.stop()
    assert stored_bars(roles) == as_rows(bars)


def test_bootstrap_command_creates_roles_and_prints_the_masked_reader_url(
    roles: PostgresSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Roles of this test's own (roles are cluster-wide: other tests use the default ones).
    suffix = uuid.uuid4().hex[:8]
    names = {"writer_user": f"w_{suffix}", "reader_user": f"r_{suffix}"}
    secret = f"s3cret-{suffix}"
    env = {
        "POSTGRES_DBNAME": roles.dbname,
        "POSTGRES_WRITER_USER": names["writer_user"],
        "POSTGRES_READER_USER": names["reader_user"],
        "POSTGRES_READER_PASSWORD": secret,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        assert db_main(["bootstrap"]) == 0
        assert db_main(["bootstrap"]) == 0  # idempotent
        out = capsys.readouterr().out
        assert f"(created {names['writer_user']}, {names['reader_user']})" in out
        assert f"postgresql://{names['reader_user']}:****@" in out and secret not in out
        mine = roles.model_copy(update={**names, "reader_password": SecretStr(secret)})
        with psycopg.connect(mine.as_reader().conninfo()) as conn:
            assert conn.execute("SELECT count(*) FROM latest_bars").fetchone() == (0,)
        assert refused(mine.as_reader(), DML[0])
        with psycopg.connect(mine.as_writer().conninfo(), autocommit=True) as conn:
            conn.execute(DML[0])
    finally:
        with psycopg.connect(roles.conninfo(), autocommit=True) as conn:
            for role in names.values():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_bootstraps_started_at_once_all_succeed(roles: PostgresSettings) -> None:
    # Every pytest-xdist worker starts the stack, and each bootstraps the same database: GRANTs
    # and ALTER ROLEs from several sessions at once made PostgreSQL fail one of them ("tuple
    # concurrently updated") and with it the test session of that worker.
    rounds, sessions = 5, 6
    for _ in range(rounds):
        with ThreadPoolExecutor(sessions) as pool:
            reports = list(pool.map(lambda _: bootstrap(roles), range(sessions)))
        assert {report.database for report in reports} == {roles.dbname}


def test_bootstraps_of_several_databases_creating_the_same_roles_at_once_all_succeed(
    roles: PostgresSettings,
) -> None:
    # Roles are cluster-wide and each database's bootstrap sets their passwords: two ALTER ROLEs
    # of one role at once failed one bootstrap ("tuple concurrently updated").
    suffix = uuid.uuid4().hex[:8]
    names = {"writer_user": f"w_{suffix}", "reader_user": f"r_{suffix}"}
    databases = [f"{roles.dbname}_{n}" for n in range(6)]
    with psycopg.connect(roles.conninfo(), autocommit=True) as conn:
        for database in databases:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with ThreadPoolExecutor(len(databases)) as pool:
            reports = list(
                pool.map(
                    lambda db: bootstrap(roles.model_copy(update={**names, "dbname": db}), db),
                    databases,
                )
            )
        assert sorted(report.database for report in reports) == databases
        assert sum(len(report.created) for report in reports) == 2  # each role created once
    finally:
        with psycopg.connect(roles.conninfo(), autocommit=True) as conn:
            for database in databases:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )
            for role in names.values():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
