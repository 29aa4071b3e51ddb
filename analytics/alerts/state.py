"""One series' alert state: its rules' machines, its bar clock and the recent bars rules look
back on, all on the current split basis (pure, exact through JSON)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

# 2: a machine is a list in Machine.FIELDS order; 1: an object with those keys (still loaded).
STATE_VERSION = 2


@dataclass(frozen=True)
class Machine:
    """One rule's machine on one series: replaced (never changed) at each transition."""

    firing: bool
    since_bar: int  # the series' bar number of the last transition (cooldown counts from it)
    since_ts: datetime  # that bar's ts
    rule_digest: str  # the rule's content when the machine moved: another one means a new rule
    severity: str  # kept for the resolve of a rule that is gone
    key: str  # the rule's direction (upper, up, above…): part of the alert's fingerprint

    FIELDS = ("firing", "since_bar", "since_ts", "rule_digest", "severity", "key")

    def to_state(self) -> list[Any]:
        """A list in FIELDS order: every touched series' machines are saved with each batch,
        and their key names were a third of an analytics state's bytes (~1 kB of ~3 kB with
        the default rules) and of the time spent encoding it. Shared, not to be mutated."""
        return self._stored

    @cached_property
    def _stored(self) -> list[Any]:
        # Made once: a machine is immutable and is saved with every bar of its series until it
        # moves, and formatting `since_ts` each time was most of a state's encoding.
        return [
            self.firing,
            self.since_bar,
            self.since_ts.isoformat(),
            self.rule_digest,
            self.severity,
            self.key,
        ]

    @classmethod
    def from_state(cls, state: list[Any] | dict[str, Any]) -> Machine:
        """A machine as to_state writes it, or as an object keyed by FIELDS (alert state
        version 1)."""
        if isinstance(state, dict):
            state = [state[name] for name in cls.FIELDS]
        firing, since_bar, since_ts, rule_digest, severity, key = state
        return cls(
            bool(firing),
            int(since_bar),
            datetime.fromisoformat(since_ts),
            str(rule_digest),
            str(severity),
            str(key),
        )


def _window(maxlen: int) -> deque[float]:
    return deque(maxlen=maxlen)


@dataclass
class AlertState:
    """Alert state of one (symbol, interval) in one service, saved beside its series state.

    `bars` is the series' bar clock (cooldowns count it). `closes` and `volumes` hold the
    previous bars (not the one being evaluated), newest last, as many as the largest `bars` of
    the rules that need them, expressed on `split_basis` like the indicators: on a split they
    are rescaled (prices divided by the ratio, volumes multiplied) and `basis_bars` restarts, so
    a rule can tell whether its look-back window reaches back across the split.
    """

    machines: dict[str, Machine] = field(default_factory=dict)  # rule id -> machine
    closes: deque[float] = field(default_factory=lambda: _window(0))
    volumes: deque[float] = field(default_factory=lambda: _window(0))
    split_basis: float | None = None
    basis_bars: int = 0  # previous bars on `split_basis` (the bar being evaluated excluded)
    bars: int = 0  # bars evaluated, the current one included once it has started
    # The rules version every machine was last checked against (in memory only: a restored
    # state is checked again on its first bar). A machine only ever moves under the rules in
    # force, so it stays valid until the version changes.
    reconciled: str | None = field(default=None, compare=False)

    def copy(self) -> AlertState:
        """An independent copy (Machine is immutable, so the dict is copied shallowly)."""
        return AlertState(
            dict(self.machines),
            self.closes.copy(),
            self.volumes.copy(),
            self.split_basis,
            self.basis_bars,
            self.bars,
            self.reconciled,
        )

    def start_bar(self, split_basis: float) -> bool:
        """Advance the bar clock to a new bar; True when that bar is the first after a split."""
        self.bars += 1
        split = self.split_basis is not None and split_basis != self.split_basis
        if split:
            ratio = split_basis / self.split_basis  # new shares per old share
            factor = 1.0 / ratio  # as analytics.series: prices move to price / ratio
            self.closes = deque((c * factor for c in self.closes), self.closes.maxlen)
            self.volumes = deque((v * ratio for v in self.volumes), self.volumes.maxlen)
            self.basis_bars = 0
        self.split_basis = split_basis
        return split

    def fit_windows(self, closes: int, volumes: int) -> None:
        """Size the windows for the rules in force (a shrink keeps the newest bars)."""
        if self.closes.maxlen != closes:
            self.closes = deque(self.closes, closes)
        if self.volumes.maxlen != volumes:
            self.volumes = deque(self.volumes, volumes)

    def end_bar(self, close: float, volume: int) -> None:
        """The bar has been evaluated: it becomes the newest previous bar."""
        self.closes.append(close)
        self.volumes.append(float(volume))
        self.basis_bars += 1

    def to_state(self) -> dict[str, Any]:
        """JSON-ready exact state (floats round-trip exactly through JSON and MessagePack)."""
        return {
            "version": STATE_VERSION,
            "machines": {rule_id: m.to_state() for rule_id, m in self.machines.items()},
            "closes": {"maxlen": self.closes.maxlen, "values": list(self.closes)},
            "volumes": {"maxlen": self.volumes.maxlen, "values": list(self.volumes)},
            "split_basis": self.split_basis,
            "basis_bars": self.basis_bars,
            "bars": self.bars,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AlertState:
        if state.get("version") not in (1, STATE_VERSION):
            raise ValueError(f"unknown alert state version {state.get('version')!r}")
        closes, volumes = state["closes"], state["volumes"]
        basis = state["split_basis"]
        return cls(
            {rule_id: Machine.from_state(m) for rule_id, m in state["machines"].items()},
            deque((float(v) for v in closes["values"]), int(closes["maxlen"])),
            deque((float(v) for v in volumes["values"]), int(volumes["maxlen"])),
            None if basis is None else float(basis),
            int(state["basis_bars"]),
            int(state["bars"]),
        )
