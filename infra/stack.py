"""The local stack's CLI and LOCAL_STACK rules: python -m infra.stack {up,down,status,clean}."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from operator import attrgetter

from infra.alertmanager import ensure_alertmanager
from infra.chromium import ensure_chromium
from infra.host import say
from infra.kafka_broker import kafka_status, start_kafka, stop_kafka
from infra.postgres import postgres_status, remove_socket_dir, start_postgres, stop_postgres
from infra.profiles import BIND_HOST, LOCAL_HOSTS, PROFILE_NAMES, Profile, get_profile
from shared.errors import SettingsError, StackError
from shared.settings import KafkaSettings, PostgresSettings, StackSettings, build

TEST_ENV_FILE = "infra/test.env"


@dataclass(frozen=True)
class Endpoint:
    """A configured service address, with the settings that name it (for error lines)."""

    service: str
    setting: str
    addresses: tuple[tuple[str, int], ...]
    port_of: Callable[[Profile], int]
    # Why the configured service does not answer, or None when it does.
    probe: Callable[[], str | None]


def kafka_endpoint(settings: KafkaSettings) -> Endpoint:
    servers = [server.strip() for server in settings.bootstrap_servers.split(",") if server.strip()]
    addresses = tuple((host, int(port)) for host, _, port in (s.rpartition(":") for s in servers))
    setting = f"KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers}"
    return Endpoint(
        "kafka", setting, addresses, attrgetter("kafka_port"), partial(kafka_fails, settings)
    )


def postgres_endpoint(settings: PostgresSettings) -> Endpoint:
    setting = f"POSTGRES_HOST={settings.host} POSTGRES_PORT={settings.port}"
    addresses = ((settings.host, settings.port),)
    return Endpoint(
        "postgres",
        setting,
        addresses,
        attrgetter("postgres_port"),
        partial(postgres_fails, settings),
    )


def kafka_fails(settings: KafkaSettings) -> str | None:
    """Ask for metadata with the clients' own settings (SASL/SSL included); a TCP accept alone
    proves nothing (proxies and firewalls accept connections they never answer)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # log_level 0: librdkafka's own error lines would bury the one line this check prints.
    admin = AdminClient({**settings.client_config(), "log_level": 0})
    try:
        admin.list_topics(timeout=settings.connect_timeout_s)
    except KafkaException as exc:
        return str(exc.args[0].str())
    return None


def postgres_fails(settings: PostgresSettings) -> str | None:
    """Connect to POSTGRES_DBNAME as POSTGRES_USER, as every service will."""
    import psycopg

    try:
        psycopg.connect(settings.conninfo()).close()
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        return lines[-1].strip() if lines else type(exc).__name__
    return None


def local_owner(endpoint: Endpoint, stack: StackSettings) -> str | None:
    """The profile whose local stack this address is (127.0.0.1/localhost, its port), if any."""
    for name in PROFILE_NAMES:
        port = endpoint.port_of(get_profile(name, stack))
        if all(host in LOCAL_HOSTS and p == port for host, p in endpoint.addresses):
            return name
    return None


def should_start(endpoint: Endpoint, profile: Profile, stack: StackSettings) -> bool:
    """Apply LOCAL_STACK: True to start the local service, False to check the configured one."""
    mode = stack.local_stack
    if mode == "off":
        return False
    own = f"{profile.name} profile's {_local_address(endpoint, profile)}"
    owner = local_owner(endpoint, stack)
    if owner is not None and owner != profile.name:
        # Never let `make test` quietly run against the `make run` stack (or the reverse).
        hint = f", or export the settings in {TEST_ENV_FILE}" if profile.name == "test" else ""
        raise StackError(
            f"{endpoint.setting} is the {owner} profile's local address, not the {own}; "
            f"use --profile {owner}{hint}"
        )
    if mode == "on" and owner is None:
        raise StackError(
            f"{endpoint.setting} is not the {own}; LOCAL_STACK=on starts only that "
            "(LOCAL_STACK=auto or off to use this address)"
        )
    return owner == profile.name


def check_answers(endpoint: Endpoint, profile: Profile, stack: StackSettings) -> None:
    """A configured (non-local) service must answer: a typo is an error, never a local stand-in."""
    reason = endpoint.probe()
    if reason is None:
        say(f"{endpoint.service} {endpoint.setting}: answers (LOCAL_STACK={stack.local_stack})")
        return
    if stack.local_stack == "off":
        why = "LOCAL_STACK=off starts nothing"
    else:
        local = _local_address(endpoint, profile)
        why = f"LOCAL_STACK=auto starts the local stack only for {local}"
    raise StackError(f"{endpoint.setting} does not answer ({reason}); {why}")


def _local_address(endpoint: Endpoint, profile: Profile) -> str:
    return f"{BIND_HOST}:{endpoint.port_of(profile)}"


def up(profile: Profile, stack: StackSettings) -> None:
    """Start what LOCAL_STACK says to start; check that the rest answers."""
    started = time.monotonic()
    kafka = kafka_endpoint(build(KafkaSettings))
    postgres_settings = build(PostgresSettings)
    postgres = postgres_endpoint(postgres_settings)
    # Decide everything before starting anything: a bad setting fails before any side effect.
    start_kafka_here = should_start(kafka, profile, stack)
    start_postgres_here = should_start(postgres, profile, stack)
    if not start_kafka_here:
        check_answers(kafka, profile, stack)
    if not start_postgres_here:
        check_answers(postgres, profile, stack)
    if start_kafka_here:
        start_kafka(profile)
    if start_postgres_here:
        start_postgres(profile, postgres_settings)
        bootstrap_roles(profile, postgres_settings)
    if profile.name == "test":
        # The alert relay's tests run a real Alertmanager (Debian's package).
        say(f"alertmanager: {ensure_alertmanager()}")
        # The dashboard's end-to-end test drives Debian's headless Chromium.
        say(f"chromium: {ensure_chromium()}")
    say(f"{profile.name} stack ready in {time.monotonic() - started:.1f}s")


def bootstrap_roles(profile: Profile, settings: PostgresSettings) -> None:
    """The writer and reader roles on the local cluster (`python -m db bootstrap`), and the
    reader's connection string for people, its password masked."""
    import psycopg

    from db.bootstrap import bootstrap, reader_url
    from shared.errors import PipelineError

    try:
        bootstrap(settings)
    except (psycopg.Error, PipelineError) as exc:
        raise StackError(f"postgres {profile.postgres_port}: db bootstrap failed: {exc}") from None
    say(
        f"postgres {profile.postgres_port}: roles {settings.writer_user} (services) and "
        f"{settings.reader_user} ready; read with {reader_url(settings)}"
    )


def down(profile: Profile, stack: StackSettings) -> None:
    stopped = [stop_kafka(profile), stop_postgres(profile)]
    if not any(stopped):
        say(f"{profile.name}: nothing running")


def status(profile: Profile, stack: StackSettings) -> None:
    say(f"{profile.name} kafka    {profile.kafka_address}: {kafka_status(profile)}")
    say(f"{profile.name} postgres {profile.postgres_address}: {postgres_status(profile)}")


def clean(profile: Profile, stack: StackSettings) -> None:
    """Stop the profile's stack and delete its data (the downloaded Kafka jars stay)."""
    down(profile, stack)
    remove_socket_dir(profile)
    if profile.root.exists():
        shutil.rmtree(profile.root)
        say(f"{profile.name}: removed {profile.root}")


COMMANDS: dict[str, Callable[[Profile, StackSettings], None]] = {
    "up": up,
    "down": down,
    "status": status,
    "clean": clean,
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.stack", description=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        help="`up` defaults to run; down, status and clean default to both profiles",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        stack = build(StackSettings)
        if args.profile:
            names: tuple[str, ...] = (args.profile,)
        else:
            names = ("run",) if args.command == "up" else PROFILE_NAMES
        for name in names:
            COMMANDS[args.command](get_profile(name, stack), stack)
    except (StackError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[stack] interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
