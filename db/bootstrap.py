"""Least-privilege roles: `pipeline_writer` for the services, `pipeline_reader` for people.

The owner (POSTGRES_USER) runs migrations and partition upkeep and owns every object. The writer
gets DML and TEMP (the services' staging tables) but no DDL: it owns nothing and may not CREATE
in the schema. The reader gets SELECT. `ALTER DEFAULT PRIVILEGES FOR ROLE <owner>` extends the
same grants to tables, partitions and sequences the owner creates later, so a new migration or a
new monthly partition needs no grant of its own.

Roles are cluster-wide, grants belong to one database: run it once per database (idempotent:
roles are created when missing, their passwords set again, the grants repeated). Creating roles
needs a superuser or CREATEROLE once. Passwords come from settings and reach the server only as
SCRAM verifiers computed here, never as text in a statement or an SQL file.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql
from pydantic import SecretStr

from shared.errors import StorageError
from shared.settings import PostgresSettings

logger = logging.getLogger(__name__)

ROLE_EXISTS = "SELECT 1 FROM pg_roles WHERE rolname = %s"
CREATE_ROLE = "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
SET_ROLE_VERIFIER = "ALTER ROLE {role} PASSWORD {verifier}"
# Statements per database; {owner}, {writer}, {reader}, {db} are identifiers.
GRANTS = (
    # Only the owner creates objects in the schema (PUBLIC's CREATE is gone since PostgreSQL 15;
    # revoked here for older servers).
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    # Temporary tables only for the writer (the services' COPY staging tables).
    "REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC",
    "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {writer}",
    "GRANT CONNECT ON DATABASE {db} TO {reader}",
    "GRANT USAGE ON SCHEMA public TO {writer}, {reader}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {writer}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {writer}",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}",
    "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {reader}",
    # The migration ledger is the owner's business.
    "REVOKE INSERT, UPDATE, DELETE ON TABLE schema_migrations FROM {writer}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
    " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {writer}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
    " GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {writer}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT ON TABLES TO {reader}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
    " GRANT SELECT ON SEQUENCES TO {reader}",
)
LEDGER_EXISTS = "SELECT to_regclass('public.schema_migrations') IS NOT NULL"
# One bootstrap of a database at a time (an advisory lock is per database): GRANTs and ALTER
# DEFAULT PRIVILEGES from two sessions at once update the same catalog row, and PostgreSQL fails
# one of them ("tuple concurrently updated"). Every pytest-xdist worker bootstraps at its start.
BOOTSTRAP_LOCK_KEY = 0x626F6F74  # "boot"
# An ALTER ROLE racing another database's bootstrap (roles are cluster-wide) is tried again.
ROLE_ATTEMPTS = 5


@dataclass(frozen=True)
class BootstrapReport:
    created: tuple[str, ...]
    database: str
    owner: str


def bootstrap(settings: PostgresSettings, dbname: str | None = None) -> BootstrapReport:
    """Create or update the writer and reader roles and grant them their privileges on
    `dbname` (default POSTGRES_DBNAME), connected as the owner POSTGRES_USER."""
    roles = {
        settings.writer_user: settings.writer_password,
        settings.reader_user: settings.reader_password,
    }
    created = []
    with psycopg.connect(settings.conninfo(dbname), autocommit=True) as conn:
        owner = conn.execute("SELECT current_user").fetchone()[0]  # type: ignore[index]
        if owner in roles:
            raise StorageError(
                f"POSTGRES_USER={owner} is the writer or reader role itself: bootstrap runs as "
                "the owner (POSTGRES_USER), with POSTGRES_WRITER_USER / POSTGRES_READER_USER "
                "naming the other two"
            )
        conn.execute("SELECT pg_advisory_lock(%s)", (BOOTSTRAP_LOCK_KEY,))  # until closed
        for role, password in roles.items():
            if _ensure_role(conn, role):
                created.append(role)
            _set_password(conn, settings, role, password)
        names = {
            "owner": sql.Identifier(owner),
            "writer": sql.Identifier(settings.writer_user),
            "reader": sql.Identifier(settings.reader_user),
            "db": sql.Identifier(conn.info.dbname),
        }
        has_ledger = conn.execute(LEDGER_EXISTS).fetchone()[0]  # type: ignore[index]
        with conn.transaction():
            for statement in GRANTS:
                if "schema_migrations" in statement and not has_ledger:
                    continue
                conn.execute(sql.SQL(statement).format(**names))
        database = conn.info.dbname
    for role in created:
        logger.info("created role %s", role)
    return BootstrapReport(tuple(created), database, owner)


def _ensure_role(conn: psycopg.Connection, role: str) -> bool:
    """CREATE ROLE unless it exists; True if this call created it. Two bootstraps of two
    databases may race here (roles are cluster-wide): the loser sees the winner's role."""
    if conn.execute(ROLE_EXISTS, (role,)).fetchone() is not None:
        return False
    try:
        conn.execute(sql.SQL(CREATE_ROLE).format(role=sql.Identifier(role)))
    except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        return False
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StorageError(
            f"POSTGRES_USER={conn.info.user} may not create role {role}: run "
            "`python -m db bootstrap` once as a superuser (or a role with CREATEROLE)"
        ) from exc
    return True


def _set_password(
    conn: psycopg.Connection, settings: PostgresSettings, role: str, password: SecretStr
) -> None:
    """Give `role` this password unless it has it already. ALTER ROLE on one role from two
    sessions at once fails one of them ("tuple concurrently updated"): the loser looks again."""
    for attempt in range(ROLE_ATTEMPTS):
        if _password_works(settings, role, password, conn.info.dbname):
            return
        verifier = conn.pgconn.encrypt_password(
            password.get_secret_value().encode(), role.encode(), b"scram-sha-256"
        )
        statement = sql.SQL(SET_ROLE_VERIFIER).format(
            role=sql.Identifier(role), verifier=sql.Literal(verifier.decode())
        )
        try:
            conn.execute(statement)
            return
        except psycopg.errors.InternalError_ as exc:
            if "concurrently updated" not in str(exc) or attempt == ROLE_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _password_works(
    settings: PostgresSettings, role: str, password: SecretStr, dbname: str
) -> bool:
    login = settings.model_copy(update={"user": role, "password": password})
    try:
        psycopg.connect(login.conninfo(dbname)).close()
    except psycopg.OperationalError:
        return False
    return True


def reader_url(settings: PostgresSettings, dbname: str | None = None) -> str:
    """The reader's connection string with the password masked (for people, for logs)."""
    return (
        f"postgresql://{settings.reader_user}:****@{settings.host}:{settings.port}/"
        f"{dbname or settings.dbname}"
    )
