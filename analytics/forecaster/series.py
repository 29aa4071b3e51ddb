"""One series' forecasting state (pure): its trailing log closes, its bar count, the cached
ARIMA order, and the forecasts still open for evaluation. Saved with the rows it produced."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analytics.alerts.state import AlertState

# 2: the window's log closes up to `base_bars` are stored apart (forecaster_windows) and the
# state holds the ones fed since; 1: the state held the whole window (still loaded).
STATE_VERSION = 2
# The stored window is rewritten once this many bars were fed since it was (or at a split).
REBASE_AFTER = 64
# (median, lo80, hi80, lo95, hi95) per step, step k at index k - 1.
Steps = tuple[tuple[float, float, float, float, float], ...]


@dataclass(frozen=True)
class OpenOrigin:
    """An origin whose steps have not all arrived: scored as its target bars come in."""

    origin_ts: datetime
    bars: int  # the series' bar count at the origin: step k is bar number bars + k
    split_basis: float  # the basis its forecasts are expressed in
    scale: float  # MASE scale: the window's mean absolute one-step change (price scale)
    forecasts: dict[str, Steps]  # model -> steps

    def to_state(self) -> dict[str, Any]:
        return {
            "origin_ts": self.origin_ts.isoformat(),
            "bars": self.bars,
            "split_basis": self.split_basis,
            "scale": self.scale,
            "forecasts": {
                model: [list(step) for step in steps] for model, steps in self.forecasts.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OpenOrigin:
        return cls(
            datetime.fromisoformat(state["origin_ts"]),
            int(state["bars"]),
            float(state["split_basis"]),
            float(state["scale"]),
            {
                model: tuple(tuple(float(v) for v in step) for step in steps)  # type: ignore[misc]
                for model, steps in state["forecasts"].items()
            },
        )


@dataclass(frozen=True)
class ForecastBar:
    """What the forecaster needs of a bar: what it feeds, scores and checks, and when Kafka took
    it (its alerts' latency, and whether they are historical). A series keeps such bars in its
    state while they are held (`ForecastSeries.held`)."""

    ts: datetime
    close: float
    volume: int
    split_basis: float
    fetched_at: datetime
    created_ms: int

    def to_state(self) -> list[Any]:
        return [
            self.ts.isoformat(),
            self.close,
            self.volume,
            self.split_basis,
            self.fetched_at.isoformat(),
            self.created_ms,
        ]

    @classmethod
    def from_state(cls, state: list[Any]) -> ForecastBar:
        ts, close, volume, split_basis, fetched_at, created_ms = state
        return cls(
            datetime.fromisoformat(ts),
            float(close),
            int(volume),
            float(split_basis),
            datetime.fromisoformat(fetched_at),
            int(created_ms),
        )


@dataclass
class ForecastSeries:
    """What the forecaster keeps per (symbol, interval)."""

    log_closes: deque[float]  # the last W log closes on the current split basis
    bars: int = 0  # bars fed so far (the M threshold counts these)
    last_ts: datetime | None = None
    split_basis: float | None = None
    order: tuple[int, int, int] | None = None  # cached ARIMA order
    refits_left: int = 0
    open: list[OpenOrigin] = field(default_factory=list)
    alerts: AlertState = field(default_factory=AlertState)  # the forecast-breach machines
    # The last bar is an origin whose fit runs in the background: the batch that made it
    # committed without waiting. Its fit job is this state's window, order and refits_left
    # (the next bar of the series, or a sweep once the fit is done, applies the outcome
    # first), so a restart fits it again from the state alone.
    pending: bool = False
    # The bar count when the window was last stored in forecaster_windows; None: not stored on
    # the current split basis (a new series, a split, a state loaded from version 1).
    base_bars: int | None = None
    # Bars that came after the pending origin while its fit was still running, oldest first:
    # none of them is fed yet (the window stays the origin's, so a restart fits it again from
    # the state alone). Empty unless `pending`.
    held: list[ForecastBar] = field(default_factory=list)

    @classmethod
    def new(cls, window: int) -> ForecastSeries:
        return cls(deque(maxlen=window))

    def copy(self) -> ForecastSeries:
        """An independent copy (a batch works on copies; OpenOrigin is immutable)."""
        return ForecastSeries(
            self.log_closes.copy(),
            self.bars,
            self.last_ts,
            self.split_basis,
            self.order,
            self.refits_left,
            list(self.open),
            self.alerts.copy(),
            self.pending,
            self.base_bars,
            list(self.held),
        )

    @property
    def newest_ts(self) -> datetime | None:
        """The newest bar this series has taken, fed or held: an older one is late."""
        return self.held[-1].ts if self.held else self.last_ts

    def feed(self, ts: datetime, close: float, split_basis: float) -> None:
        """Append a bar newer than `last_ts`. A bar on a new split basis first moves the window
        to that basis (prices divide by the ratio), so a split never looks like a crash."""
        if self.split_basis is not None and split_basis != self.split_basis:
            shift = math.log(self.split_basis / split_basis)
            self.log_closes = deque((v + shift for v in self.log_closes), self.log_closes.maxlen)
            self.base_bars = None  # every stored value moved: the window is stored again
        self.log_closes.append(math.log(close))
        self.split_basis = split_basis
        self.last_ts = ts
        self.bars += 1

    def to_state(self) -> dict[str, Any]:
        """The whole state as one document (version 1: the window's closes included)."""
        return {**self._fields(), "version": 1, "log_closes": list(self.log_closes)}

    def stored(self) -> tuple[dict[str, Any], list[float] | None]:
        """What a save writes: the state document (the closes fed since the stored window) and
        the whole window when it is due to be stored again (else None).

        The window is ~4 kB at FORECAST_WINDOW=500 and changes by one value a bar; writing it
        with the rest on every batch was most of the forecaster's bytes to PostgreSQL. Marks
        this copy's window as stored: called once, by the save of the batch that owns it."""
        window = None
        if self.base_bars is None or self.bars - self.base_bars >= REBASE_AFTER:
            window, self.base_bars = list(self.log_closes), self.bars
        fed_since = min(self.bars - self.base_bars, len(self.log_closes))
        tail = list(self.log_closes)[len(self.log_closes) - fed_since :]
        document = {**self._fields(), "version": STATE_VERSION, "base_bars": self.base_bars}
        return {**document, "tail": tail}, window

    def _fields(self) -> dict[str, Any]:
        return {
            "window": self.log_closes.maxlen,
            "bars": self.bars,
            "split_basis": self.split_basis,
            "order": list(self.order) if self.order else None,
            "refits_left": self.refits_left,
            "open": [origin.to_state() for origin in self.open],
            "alerts": self.alerts.to_state(),
            "pending": self.pending,
            "held": [bar.to_state() for bar in self.held],
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        last_ts: datetime,
        stored_window: tuple[int, list[float]] | None = None,
    ) -> ForecastSeries:
        """A state document (version 1, or 2 with `stored_window`: (its bar count, its closes)
        from forecaster_windows)."""
        version = state.get("version")
        base_bars = None
        if version == 1:
            closes = state["log_closes"]
        elif version == STATE_VERSION:
            base_bars = int(state["base_bars"])
            if stored_window is None or stored_window[0] != base_bars:
                found = "none" if stored_window is None else f"bar {stored_window[0]}"
                raise ValueError(
                    f"the state continues the window stored at bar {base_bars}, found {found}"
                )
            closes = [*stored_window[1], *state["tail"]]
        else:
            raise ValueError(f"unknown forecaster state version {version!r}")
        order = state["order"]
        return cls(
            deque((float(v) for v in closes), maxlen=int(state["window"])),
            int(state["bars"]),
            last_ts,
            state["split_basis"],
            (int(order[0]), int(order[1]), int(order[2])) if order else None,
            int(state["refits_left"]),
            [OpenOrigin.from_state(origin) for origin in state["open"]],
            AlertState.from_state(state["alerts"]) if "alerts" in state else AlertState(),
            bool(state.get("pending", False)),
            base_bars,
            [ForecastBar.from_state(bar) for bar in state.get("held", ())],
        )
