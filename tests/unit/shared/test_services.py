"""The service registry: well-formed, runnable, and the README's table of services agrees."""

from __future__ import annotations

import importlib.util
import re

import pytest

from shared import services
from shared.health import health_port
from shared.services import Service, all_services, by_name
from shared.settings import HealthSettings
from tests.conftest import REPO_ROOT

README_HEADER = "| service | run alone | health port | what it does |"


def readme_services() -> dict[str, tuple[str, int]]:
    """The README's table of services: name -> (run-alone command, health port)."""
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert README_HEADER in lines, f"README.md has no table headed {README_HEADER!r}"
    rows: dict[str, tuple[str, int]] = {}
    for line in lines[lines.index(README_HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        name, command, port, _what = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name.strip("`")] = (command.strip("`"), int(port))
    return rows


def test_names_modules_and_ports_are_unique() -> None:
    registered = all_services()
    assert registered
    for attribute in ("name", "module", "port_offset"):
        values = [getattr(service, attribute) for service in registered]
        assert len(set(values)) == len(values), attribute


@pytest.mark.parametrize("service", all_services(), ids=lambda service: service.name)
def test_each_module_runs_with_python_m(service: Service) -> None:
    spec = importlib.util.find_spec(service.module)
    assert spec is not None and spec.submodule_search_locations is not None, service.module
    assert importlib.util.find_spec(f"{service.module}.__main__"), f"{service.module}: no __main__"
    assert service.description and "\n" not in service.description


def test_lookup_by_name() -> None:
    assert by_name("consumer.storage") is services.CONSUMER_STORAGE
    with pytest.raises(KeyError, match="unknown service 'consumer.storag'; known: producer.market"):
        by_name("consumer.storag")


def test_offsets_leave_room_for_replicas() -> None:
    with pytest.raises(ValueError, match="must be in 1..99"):
        Service("too.far", "too.far", services.REPLICA_PORT_STRIDE, "clashes with replica 1")
    health = HealthSettings(base_port=18080, replica_index=1)
    assert health_port(health, "producer.market") == 18080 + 1 + 100


def test_readme_lists_every_registered_service_with_its_port() -> None:
    health = HealthSettings(base_port=HealthSettings.model_fields["base_port"].default)
    expected = {
        service.name: (f"python -m {service.module}", health_port(health, service.name))
        for service in all_services()
    }
    assert readme_services() == expected


def test_service_names_are_written_only_in_the_registry() -> None:
    # Each service's SERVICE constant is a lookup (services.X.name), never the name again.
    literal = re.compile(r"^SERVICE\s*=\s*[\"']", re.MULTILINE)
    code = [
        path
        for top in ("producer", "consumer", "analytics", "shared")
        for path in (REPO_ROOT / top).rglob("*.py")
    ]
    assert code
    assert [str(path) for path in code if literal.search(path.read_text())] == []
