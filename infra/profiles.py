"""The two local stacks (`run` and `test`): fixed ports and where each keeps its data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.errors import StackError
from shared.settings import StackSettings, build, project_root

LOCAL_HOSTS = ("127.0.0.1", "localhost")
# Everything binds to the loopback address only: the local stack is never reachable from outside.
BIND_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Profile:
    """One local stack: its ports and its data directory."""

    name: str
    kafka_port: int
    controller_port: int
    postgres_port: int
    stack_dir: Path

    @property
    def root(self) -> Path:
        return self.stack_dir / self.name

    @property
    def kafka_libs_dir(self) -> Path:
        """The broker's jars, shared by both profiles."""
        return self.stack_dir / "kafka-libs"

    @property
    def kafka_dir(self) -> Path:
        return self.root / "kafka"

    @property
    def postgres_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def kafka_address(self) -> str:
        return f"{BIND_HOST}:{self.kafka_port}"

    @property
    def postgres_address(self) -> str:
        return f"{BIND_HOST}:{self.postgres_port}"


# Distinct ports, so `make test` can never silently reuse a running `make run` stack.
_PORTS = {"run": (19092, 19093, 15432), "test": (29092, 29093, 25432)}
PROFILE_NAMES = tuple(_PORTS)


def stack_dir(settings: StackSettings | None = None) -> Path:
    """LOCAL_STACK_DIR, relative to the project root unless absolute."""
    settings = settings or build(StackSettings)
    return (project_root() / settings.local_stack_dir).resolve()


def get_profile(name: str, settings: StackSettings | None = None) -> Profile:
    if name not in _PORTS:
        raise StackError(f"unknown stack profile {name!r}; expected one of {', '.join(_PORTS)}")
    kafka_port, controller_port, postgres_port = _PORTS[name]
    return Profile(name, kafka_port, controller_port, postgres_port, stack_dir(settings))


def resolve(profile: Profile | str) -> Profile:
    """Accept a Profile or its name (tests pass "test")."""
    return profile if isinstance(profile, Profile) else get_profile(profile)
