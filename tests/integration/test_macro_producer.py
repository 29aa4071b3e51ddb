"""producer.macro on recorded FRED responses through our client into macro_observations."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from producer.macro.parsing import parse_observations
from producer.macro.service import run
from producer.replay.overlay import inject
from shared.health import Health
from shared.kafka import Topics
from shared.schemas import encode
from shared.settings import DataSource, MacroSettings, Settings, SourceSettings
from tests.integration.bar_stream import end_offsets, publish
from tests.integration.processes import assert_api_idles
from tests.integration.storage_thread import fast_consumer, storage_running, wait_stored

SERIES = ["GDP", "CPIAUCSL", "WGS10YR"]


def recorded(recordings: Path, series_id: str) -> dict[str, Any]:
    path = next((recordings / "fred").glob(f"series_observations_{series_id}_rt*.json"))
    return json.loads(path.read_text())


def expected_rows(body: dict[str, Any], series_id: str) -> set[tuple[Any, ...]]:
    """Computed from the JSON: "." is NULL, every date kept, realtime_start as the vintage."""
    return {
        (
            series_id,
            date.fromisoformat(o["date"]),
            date.fromisoformat(o["realtime_start"]),
            None if o["value"] == "." else float(o["value"]),
        )
        for o in body["observations"]
    }


def stored(settings: Settings) -> set[tuple[Any, ...]]:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute(
            "SELECT series_id, obs_date, realtime_start, value FROM macro_observations"
        ).fetchall()
    return set(rows)


def macro_settings(
    settings_factory: Callable[..., Settings], replay_dir: Path, overlay: Path | None = None
) -> Settings:
    return settings_factory(
        source=SourceSettings(
            data_source=DataSource.REPLAY, replay_dir=replay_dir, replay_overlay_dir=overlay
        ),
        macro=MacroSettings(series=SERIES),
        consumer=fast_consumer(),
    )


def test_recorded_observations_are_stored_exactly_and_reruns_add_nothing(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay"
    settings = macro_settings(settings_factory, recordings, overlay)
    bodies = {s: recorded(recordings, s) for s in SERIES}
    expected = set().union(*(expected_rows(bodies[s], s) for s in SERIES))
    gdp_1946 = {r for r in expected if r[0] == "GDP" and r[1].year == 1946}
    assert len(gdp_1946) == 4 and all(r[3] is None for r in gdp_1946)

    with storage_running(settings):
        assert run(settings, threading.Event(), Health("producer.macro"), once=True) == len(
            expected
        )
        wait_stored(settings, topics.macro_observations)
        assert stored(settings) == expected
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            series = conn.execute(
                "SELECT series_id, title, frequency FROM macro_series ORDER BY 1"
            ).fetchall()
            latest = conn.execute(
                "SELECT series_id, obs_date FROM latest_macro WHERE series_id = 'GDP'"
            ).fetchall()
        assert [s[0] for s in series] == sorted(SERIES)
        assert latest == [("GDP", date(2024, 7, 1))]

        # The same responses again: nothing published, nothing stored.
        before = end_offsets(settings.kafka, topics.macro_observations)
        assert run(settings, threading.Event(), Health("producer.macro"), once=True) == 0
        assert end_offsets(settings.kafka, topics.macro_observations) == before

        # "Tomorrow" (INJECTED, derived from the recording): FRED stamps the new request date
        # as realtime_start; unchanged values add no vintage, the one changed value adds one.
        tomorrow = _shifted(bodies["GDP"], days=1)
        tomorrow["observations"][-1]["value"] = "99999.999"
        inject(
            overlay,
            "gdp-tomorrow",
            path="/fred/series/observations",
            query={"series_id": "GDP"},
            responses=[{"status": 200, "body": tomorrow}],
        )
        assert run(settings, threading.Event(), Health("producer.macro"), once=True) == 1
        wait_stored(settings, topics.macro_observations)
        last = tomorrow["observations"][-1]
        new_vintage = (
            "GDP",
            date.fromisoformat(last["date"]),
            date.fromisoformat(last["realtime_start"]),
            99999.999,
        )
        assert stored(settings) == expected | {new_vintage}

        # Storage on its own (the producer compares too, but storage must not rely on it): the
        # same values under a later realtime_start add nothing; a changed one adds a vintage.
        later = _shifted(bodies["CPIAUCSL"], days=30)["observations"][:3]
        later[2]["value"] = "1.5"
        parsed = parse_observations("CPIAUCSL", later, None, datetime.now(UTC))
        publish(
            settings.kafka,
            topics.macro_observations,
            [(b"CPIAUCSL", encode(o)) for o in parsed.observations],
        )
        wait_stored(settings, topics.macro_observations)
        changed = ("CPIAUCSL", date.fromisoformat(later[2]["date"]))
        realtime = date.fromisoformat(later[2]["realtime_start"])
        assert stored(settings) == expected | {new_vintage, (*changed, realtime, 1.5)}


def _shifted(body: dict[str, Any], days: int) -> dict[str, Any]:
    def shift(text: str) -> str:
        return (date.fromisoformat(text) + timedelta(days=days)).isoformat()

    copy = json.loads(json.dumps(body))
    copy["realtime_start"] = shift(copy["realtime_start"])
    for o in copy["observations"]:
        o["realtime_start"] = shift(o["realtime_start"])
    return copy


def test_injected_429_is_retried_and_a_bad_value_is_dead_lettered(
    settings_factory: Callable[..., Settings], topics: Topics, recordings: Path, tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay"
    settings = macro_settings(settings_factory, recordings, overlay)
    settings = settings_factory(
        source=settings.source, macro=MacroSettings(series=["CPIAUCSL"]), consumer=fast_consumer()
    )
    bad = recorded(recordings, "CPIAUCSL")
    bad["observations"][5]["value"] = "n/a"  # INJECTED: not a number and not FRED's "."
    # INJECTED: a 429 before CPIAUCSL's (altered) observations.
    cpi = inject(
        overlay,
        "cpi",
        path="/fred/series/observations",
        query={"series_id": "CPIAUCSL"},
        responses=[{"status": 429, "body": "Too Many Requests"}, {"status": 200, "body": bad}],
    )
    kept = bad["observations"][:5] + bad["observations"][6:]
    expected = expected_rows(bad | {"observations": kept}, "CPIAUCSL")
    with storage_running(settings):
        assert run(settings, threading.Event(), Health("producer.macro"), once=True) == len(kept)
        wait_stored(settings, topics.macro_observations, topics.deadletter)
        assert stored(settings) == expected  # once, although the first answer was a 429
        with psycopg.connect(settings.postgres.conninfo()) as conn:
            letters = conn.execute("SELECT service, reason, payload FROM dead_letters").fetchall()
    assert not cpi.exists()
    assert len(letters) == 1
    service, reason, payload = letters[0]
    assert service == "producer.macro" and "n/a" in reason
    assert json.loads(bytes(payload))["date"] == bad["observations"][5]["date"]


def test_401_stops_calling_fred_with_one_message_and_red_health_but_stays_up(
    service_env: dict[str, str], recordings: Path, tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay"
    # INJECTED: FRED refuses the key; three answers queued, only the first may be asked for.
    refused = inject(
        overlay,
        "fred-401",
        path="/fred/series",
        responses=[{"status": 401, "body": {"error_code": 401, "error_message": "Bad key"}}] * 3,
    )
    assert_api_idles(
        "producer.macro",
        service_env,
        tmp_path,
        "FRED refused the API key",
        refused,
        DATA_SOURCE="replay",
        REPLAY_DIR=str(recordings),
        REPLAY_OVERLAY_DIR=str(overlay),
        MACRO_POLL_INTERVAL_S="0.5",
    )
