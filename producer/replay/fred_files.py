"""Recognise recorded FRED /fred/series and /fred/series/observations bodies by their content."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer.replay.recorded import RecordedFile

logger = logging.getLogger(__name__)

SERIES = "series"
OBSERVATIONS = "series/observations"


def _day(text: Any) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def read_fred(path: Path, body: Any) -> RecordedFile | None:
    """A FRED series, observations or error body, or None for anything else.

    An observations body does not name its series: its `key` stays None until
    `assign_series` finds the series file it belongs to.
    """
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error_code"), int) and "error_message" in body:
        return RecordedFile(path, "fred", "error", status=body["error_code"])
    if isinstance(body.get("seriess"), list) and body["seriess"]:
        series = body["seriess"][0]
        if not isinstance(series, dict) or not isinstance(series.get("id"), str):
            return None
        return RecordedFile(
            path,
            "fred",
            SERIES,
            status=200,
            key=series["id"],
            first=_day(series.get("observation_start")),
            last=_day(series.get("observation_end")),
            recorded_at=_day(body.get("realtime_start")),
        )
    observations = body.get("observations")
    if not isinstance(observations, list) or "count" not in body:
        return None
    # Missing values are "." (GDP's 1946 quarters): the series metadata starts at the first value.
    valued = [o.get("date") for o in observations if isinstance(o, dict) and o.get("value") != "."]
    offset = body.get("offset") if isinstance(body.get("offset"), int) else 0
    return RecordedFile(
        path,
        "fred",
        OBSERVATIONS,
        status=200,
        first=_day(valued[0]) if valued else None,
        last=_day(valued[-1]) if valued else None,
        recorded_at=_day(body.get("realtime_start")),
        offset=offset,
        complete=body.get("count") == offset + len(observations),
    )


def assign_series(files: list[RecordedFile]) -> list[RecordedFile]:
    """Give each observations file the id of the one series file whose metadata matches it.

    A series' metadata names its first and last observation date; an observations body matches
    when its first valued date is the series' first (a first page, offset 0) and, if the body is
    complete, its last valued date is the series' last. Bodies with no match or several matches
    are left out with a log line: replay answers nothing it cannot attribute.
    """
    series = [f for f in files if f.endpoint == SERIES and f.first is not None]
    assigned: list[RecordedFile] = []
    for file in files:
        if file.endpoint != OBSERVATIONS:
            assigned.append(file)
            continue
        matches = {
            s.key
            for s in series
            if file.first is not None
            and file.offset == 0
            and s.first == file.first
            and (not file.complete or s.last == file.last)
        }
        if len(matches) == 1:
            assigned.append(replace(file, key=matches.pop()))
        else:
            logger.info(
                "replay: %s is a FRED observations body matching %s series file(s); not served",
                file.path.name,
                len(matches) or "no",
            )
    return assigned
