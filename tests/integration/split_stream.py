"""Recorded split charts, and the pre-split stream a live observer would have seen (derived)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shared.schemas import Bar, event_id

NEW_YORK = ZoneInfo("America/New_York")
SPLIT_FILES = {
    "AAPL": "chart_AAPL_1d_2020-08-31_2020-11-06_split4for1.json",
    "NVDA": "chart_NVDA_1d_2021-02-01_2022-01-28_split4for1.json",
}
DIVIDEND_FILE = "chart_MSFT_1d_2021-02-01_2022-01-28_dividends.json"
# The days before AAPL's split file starts come from the full-year recording.
HISTORY_FILES = {"AAPL": "chart_AAPL_1d_2020.json", "NVDA": SPLIT_FILES["NVDA"]}


def chart(yahoo: Path, name: str) -> dict[str, Any]:
    return json.loads((yahoo / name).read_text())["chart"]["result"][0]


def session_key(stamp: int) -> datetime:
    day = datetime.fromtimestamp(stamp, UTC).astimezone(NEW_YORK).date()
    return datetime.combine(day, time(), UTC)


def recorded_closes(result: dict[str, Any]) -> dict[datetime, float]:
    closes = result["indicators"]["quote"][0]["close"]
    return {session_key(t): closes[i] for i, t in enumerate(result["timestamp"])}


def split_of(result: dict[str, Any]) -> tuple[datetime, float]:
    (split,) = result["events"]["splits"].values()
    return session_key(split["date"]), split["numerator"] / split["denominator"]


def relabelled_split(
    yahoo: Path, name: str, numerator: int, denominator: int, folder: Path
) -> Path:
    """A copy in `folder` of the recorded chart `name`, its one split relabelled
    `numerator`:`denominator` (DERIVED when the ratio differs from the recorded one).

    The recorded prices are split-adjusted as of the recording, i.e. on the newest basis
    whatever the ratio, so only the event changes: the producer then records the pre-split days
    on basis numerator/denominator, and `derived_pre_split_bars` with the same ratio gives the
    stream a live observer would have seen. Ratios that are not powers of two (3:1, 3:2) make
    rescaling round, which the recorded 4:1 splits cannot show.
    """
    body = json.loads((yahoo / name).read_text())
    (split,) = body["chart"]["result"][0]["events"]["splits"].values()
    if (split["numerator"], split["denominator"]) == (numerator, denominator):
        return Path(shutil.copy(yahoo / name, folder / name))  # the recording itself
    split.update(
        numerator=numerator, denominator=denominator, splitRatio=f"{numerator}:{denominator}"
    )
    target = folder / f"{Path(name).stem}_relabelled_{numerator}for{denominator}.json"
    target.write_text(json.dumps(body))
    return target


def derived_pre_split_bars(result: dict[str, Any], split_day: datetime, ratio: float) -> list[Bar]:
    """DERIVED, not recorded: what a live observer saw before the split (recorded prices are
    split-adjusted as of the recording, so they are multiplied back by the ratio, basis 1)."""
    quote = result["indicators"]["quote"][0]
    symbol = result["meta"]["symbol"]
    bars = []
    for i, stamp in enumerate(result["timestamp"]):
        ts = session_key(stamp)
        if ts >= split_day:
            continue
        bars.append(
            Bar(
                event_id=event_id("replay", symbol, "1d", ts),
                source="replay",
                symbol=symbol,
                interval="1d",
                ts=ts,
                open=quote["open"][i] * ratio,
                high=quote["high"][i] * ratio,
                low=quote["low"][i] * ratio,
                close=quote["close"][i] * ratio,
                adj_close=None,
                volume=round(quote["volume"][i] / ratio),
                split_basis=1.0,
                fetched_at=ts,
            )
        )
    return bars
