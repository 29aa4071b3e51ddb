"""Pure reading of a raw Yahoo chart's points, and the reshaping yfinance applies to them.

The chart (`chart.result[0]` of /v8/finance/chart) is the one representation producer.market
parses. yfinance (scrapers/history.py, utils.py) reshapes the same points before it builds its
frame; the steps the bars depend on are reproduced here: 30m bars built from the 15m points it
asks for, Yahoo's live point folded into the bar it belongs to, a repeated stamp kept once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

_QUOTE_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class ChartPoint:
    """One point of the chart (or one bar resampled from several), with the bar key it gets.

    Missing values (JSON null) are None; `adjclose` is the close where Yahoo sends no
    adjusted close (intraday), as yfinance's "Adj Close" is. `payload` is the point as Yahoo
    sent it: what a dead letter carries.
    """

    key: datetime
    moment: datetime
    open: Any
    high: Any
    low: Any
    close: Any
    adjclose: Any
    volume: Any
    payload: dict[str, Any]

    @property
    def all_null(self) -> bool:
        """Every price null: one of Yahoo's gaps (its volume does not count)."""
        prices = (self.open, self.high, self.low, self.close, self.adjclose)
        return all(value is None for value in prices)


def read_points(
    chart: dict[str, Any] | None, key_of: Callable[[datetime], datetime]
) -> list[ChartPoint]:
    """The chart's points in time order, each with its bar key (`key_of` its time)."""
    if chart is None:
        return []
    indicators = chart.get("indicators") or {}
    quote = (indicators.get("quote") or [{}])[0] or {}
    adjclose = ((indicators.get("adjclose") or [{}])[0] or {}).get("adjclose")
    points = []
    for i, seconds in enumerate(chart.get("timestamp") or []):
        payload: dict[str, Any] = {"timestamp": seconds}
        for name in _QUOTE_FIELDS:
            payload[name] = _at(quote.get(name), i)
        if adjclose is not None:
            payload["adjclose"] = _at(adjclose, i)
        moment = datetime.fromtimestamp(seconds, UTC)
        values = {name: _value(payload[name]) for name in _QUOTE_FIELDS}
        adj = _value(payload["adjclose"]) if adjclose is not None else values["close"]
        points.append(ChartPoint(key_of(moment), moment, **values, adjclose=adj, payload=payload))
    # Stable: of two points with one stamp the first sent stays first (kept by `distinct`).
    return sorted(points, key=lambda point: point.moment)


def resample(points: Iterable[ChartPoint], step: timedelta) -> list[ChartPoint]:
    """Bars of `step` from finer points, as yfinance's pandas resample builds them.

    Bins are aligned to UTC midnight; open and close are the first and last values present,
    high and low the extremes present, volume the sum of those present. Only bins holding a
    point Yahoo sent become bars. A bin's payload is its first point's.
    """
    bins: dict[datetime, list[ChartPoint]] = {}
    for point in points:
        seconds = int(point.moment.timestamp())
        start = datetime.fromtimestamp(seconds - seconds % int(step.total_seconds()), UTC)
        bins.setdefault(start, []).append(point)
    return [_merged(start, members) for start, members in bins.items()]


def fold_live_point(points: list[ChartPoint], step: timedelta, prepost: bool) -> list[ChartPoint]:
    """Yahoo's live point folded into the bar it falls in (yfinance's
    fix_Yahoo_returning_live_separate).

    While a session runs, Yahoo appends the latest trade as its own point, stamped inside the
    last bar. Intraday: its close and volume complete that bar (open where the bar has none,
    high and low widened). With pre/post-market a point on a whole minute is taken for the
    first post-market bar instead. Daily: the later point of the day replaces the earlier one.
    """
    if len(points) < 2:
        return points
    earlier, live = points[-2], points[-1]
    if step >= timedelta(days=1):
        if earlier.key == live.key:
            return [*points[:-2], live]
        return points
    if live.moment == earlier.moment or live.moment - earlier.moment >= step:
        return points
    if prepost and live.moment.second == 0:
        return points
    folded = replace(
        earlier,
        open=earlier.open if earlier.open is not None else live.open,
        high=earlier.high if live.high is None else _extreme(max, [earlier.high, live.high]),
        low=earlier.low if live.low is None else _extreme(min, [earlier.low, live.low]),
        close=live.close,
        adjclose=live.adjclose,
        # A missing volume on either side makes the sum missing (pandas' NaN), so 0.
        volume=None if None in (earlier.volume, live.volume) else earlier.volume + live.volume,
    )
    return [*points[:-2], folded]


def distinct(points: Iterable[ChartPoint]) -> list[ChartPoint]:
    """The first point of each bar key (yfinance keeps the first of a repeated stamp)."""
    seen: set[datetime] = set()
    kept = []
    for point in points:
        if point.key not in seen:
            seen.add(point.key)
            kept.append(point)
    return kept


def _merged(start: datetime, members: list[ChartPoint]) -> ChartPoint:
    def present(name: str) -> list[Any]:
        return [value for p in members if (value := getattr(p, name)) is not None]

    opens, closes, adjcloses = present("open"), present("close"), present("adjclose")
    return ChartPoint(
        key=start,
        moment=start,
        open=opens[0] if opens else None,
        high=_extreme(max, present("high")),
        low=_extreme(min, present("low")),
        close=closes[-1] if closes else None,
        adjclose=adjcloses[-1] if adjcloses else None,
        volume=sum(present("volume")),
        payload=members[0].payload,
    )


def _extreme(pick: Callable[[list[Any]], Any], values: list[Any]) -> Any:
    present = [value for value in values if value is not None]
    return pick(present) if present else None


def _at(values: list[Any] | None, i: int) -> Any:
    return values[i] if values is not None and i < len(values) else None


def _value(raw: Any) -> Any:
    """JSON null (or a NaN) is a missing value; anything else is kept for the bar to check."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    return raw
