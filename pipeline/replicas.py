"""Every replica of a service: where each answers, what each said, and the service as a whole.

Replica i answers on HEALTH_BASE_PORT + the service's offset + 100 × i (shared/health.py). How
many a service runs is PROMETHEUS_REPLICAS (the count `make monitor` scrapes too; 1 for a service
not named): one of those that does not answer is red. Past that count, replicas are read while
they answer, so one started by hand is never missed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline_supervisor.status import Totals, message_rate, scrape
from shared.services import Service

# What scrape() returns: /metrics totals (None: no answer), red reasons, notes.
Reading = tuple[Totals | None, tuple[str, ...], tuple[str, ...]]

MAX_REPLICAS = 20  # looked for past the expected count (ports stay below 65535 for any base)


def read_replicas(service: Service, host: str, base_port: int, expected: int) -> dict[int, Reading]:
    """Each expected replica's reading, then those past the count up to the first silent one."""
    readings: dict[int, Reading] = {}
    for index in range(MAX_REPLICAS):
        reading = scrape(f"http://{host}:{service.health_port(base_port, index)}")
        if index >= expected and reading[0] is None:
            break
        readings[index] = reading
    return readings


@dataclass(frozen=True)
class ReplicaView:
    index: int
    up: bool  # answered its /metrics
    healthy: bool | None  # None when it did not answer
    rate: float | None  # messages per second between the two readings
    rows: float | None
    messages: float | None


@dataclass(frozen=True)
class ServiceView:
    """The replicas together: rates, rows and messages summed over those that answered."""

    up: bool  # some replica answered
    healthy: bool | None  # None when none answered; False when any is red or one expected is down
    rate: float | None
    rows: float | None
    messages: float | None
    reasons: tuple[str, ...]  # "replica N: …" when there are several
    notes: tuple[str, ...]
    replicas: tuple[ReplicaView, ...]


def combine(
    first: Mapping[int, Reading], second: Mapping[int, Reading], expected: int
) -> ServiceView:
    """The service from two readings of its replicas (`first` only for the rates)."""
    shown = {i: r for i, r in second.items() if i < expected or r[0] is not None}
    several = len(shown) > 1
    views, reasons, notes = [], [], []
    for index, (totals, red, said) in sorted(shown.items()):
        up = totals is not None
        earlier = first.get(index)
        views.append(
            ReplicaView(
                index,
                up,
                None if not up else not red,
                message_rate(None if earlier is None else earlier[0], totals),
                None if totals is None else totals.rows,
                None if totals is None else totals.messages,
            )
        )
        name = f"replica {index}: " if several else ""
        if not up and several:
            red = ("not answering",)
        reasons += [f"{name}{reason}" for reason in (red if up or several else ())]
        notes += [f"{name}{note}" for note in said]
    answered = [view for view in views if view.up]
    if not answered:
        return ServiceView(False, None, None, None, None, (), tuple(notes), tuple(views))
    return ServiceView(
        True,
        not reasons,
        _sum(view.rate for view in answered),
        _sum(view.rows for view in answered),
        _sum(view.messages for view in answered),
        tuple(reasons),
        tuple(notes),
        tuple(views),
    )


def _sum(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None
