"""One series' streaming state: its indicators, the newest bar fed, the split basis (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.indicators import IndicatorParams, IndicatorSet, IndicatorValues


@dataclass
class SeriesState:
    """Indicators of one (symbol, interval) plus what is needed to continue them exactly.

    `split_basis` is the basis the indicator state is expressed in. A bar on another basis
    means a split happened between the two bars (the producer records on every bar the
    cumulative split factor its prices are expressed in): the state is rescaled by the ratio of
    the two bases before the bar is fed, so the indicators continue on split-adjusted prices.
    Reading the split off the bars, not off `market.actions`, keeps the result independent of
    how the two topics interleave, so a rerun always computes the same rows.
    """

    indicators: IndicatorSet
    last_ts: datetime | None = None
    split_basis: float | None = None

    @classmethod
    def new(cls, params: IndicatorParams, annualization: float) -> SeriesState:
        return cls(IndicatorSet(params, annualization))

    def feed(self, ts: datetime, close: float, split_basis: float) -> IndicatorValues:
        """Feed the next bar (newer than `last_ts`)."""
        if self.split_basis is not None and split_basis != self.split_basis:
            self.indicators.rescale(split_basis / self.split_basis)
        values = self.indicators.update(close)
        self.split_basis = split_basis
        self.last_ts = ts
        return values

    def copy(self) -> SeriesState:
        """An independent copy: a batch processed on copies leaves the committed state as it was.
        Through the exact state (the same numbers bit for bit): a generic copier cannot build a
        class compiled by mypyc (shared/hot_path.py), and only the loop's retries copy (the
        analytics consumer processes in place, Handler.in_place)."""
        return SeriesState(
            IndicatorSet.from_state(self.indicators.to_state()), self.last_ts, self.split_basis
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-ready exact state (`last_ts` is kept beside it, in its own column)."""
        return {"indicators": self.indicators.to_state(), "split_basis": self.split_basis}

    @classmethod
    def from_state(cls, state: dict[str, Any], last_ts: datetime) -> SeriesState:
        return cls(IndicatorSet.from_state(state["indicators"]), last_ts, state["split_basis"])
