"""`python -m db export` on real PostgreSQL: the known replayed rows, filtered, to Parquet and
CSV, as the reader; a bad request is one line."""

from __future__ import annotations

import csv
import math
import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from db.__main__ import main as db_main
from shared.settings import PostgresSettings
from tests.integration.known_data import KnownData, load_known_data

START, END = datetime(2020, 8, 3, tzinfo=UTC), datetime(2020, 9, 15, tzinfo=UTC)


@pytest.fixture
def known(
    pg_settings: PostgresSettings, recordings: Path, monkeypatch: pytest.MonkeyPatch
) -> KnownData:
    monkeypatch.setenv("POSTGRES_DBNAME", pg_settings.dbname)
    return load_known_data(pg_settings.conninfo(), recordings)


def expected_bars(known: KnownData) -> list[tuple[datetime, float, int, float]]:
    return [
        (b.ts, b.close, b.volume, b.split_basis) for b in known.bars["AAPL"] if START <= b.ts < END
    ]


def test_parquet_holds_exactly_the_filtered_rows_with_types_and_nulls(
    known: KnownData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "aapl.parquet"
    argv = ["export", "price_bars", "-o", str(out), "--symbols", "aapl", "--interval", "1d"]
    assert db_main([*argv, "--from", "2020-08-03", "--to", "2020-09-15", "--quiet"]) == 0
    table = pq.read_table(out)
    want = expected_bars(known)
    assert f"db export: {len(want)} rows of price_bars" in capsys.readouterr().out
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("volume").type) == "int64"
    got = list(
        zip(
            table.column("ts").to_pylist(),
            table.column("close").to_pylist(),
            table.column("volume").to_pylist(),
            table.column("split_basis").to_pylist(),
            strict=True,
        )
    )
    assert got == want and len(want) == 30
    assert set(table.column("symbol").to_pylist()) == {"AAPL"}

    # A view with NULLs during the indicators' warm-up: NULL stays NULL, values are exact.
    view = tmp_path / "indicators.parquet"
    argv = ["export", "bars_with_indicators", "-o", str(view), "--symbols", "AAPL", "--quiet"]
    assert db_main(argv) == 0
    rows = pq.read_table(view).to_pylist()
    assert len(rows) == len(known.bars["AAPL"])
    for row in rows:
        sma_slow = known.indicators[row["ts"]][1]
        assert row["sma_slow"] == sma_slow or (sma_slow is None and row["sma_slow"] is None)
    assert rows[0]["sma_slow"] is None and rows[-1]["sma_slow"] is not None


def test_csv_and_text_columns(known: KnownData, tmp_path: Path) -> None:
    out = tmp_path / "bars.csv"
    assert db_main(["export", "price_bars", "-o", str(out), "--symbols", "AAPL",
                    "--from", "2020-08-03", "--to", "2020-09-15", "--quiet"]) == 0  # fmt: skip
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    want = expected_bars(known)
    assert len(rows) == len(want)
    for row, (ts, close, volume, basis) in zip(rows, want, strict=True):
        assert datetime.fromisoformat(row["ts"]) == ts
        assert math.isclose(float(row["close"]), close, rel_tol=1e-15)
        assert (int(row["volume"]), float(row["split_basis"])) == (volume, basis)
    # Headlines with commas, quotes and unicode survive the CSV round trip.
    news = tmp_path / "news.csv"
    assert db_main(["export", "news_by_symbol", "-o", str(news), "--quiet"]) == 0
    with news.open(newline="", encoding="utf-8") as handle:
        headlines = sorted(row["headline"] for row in csv.DictReader(handle))
    assert headlines == sorted(item[2] for item in known.news)


def test_a_bad_request_is_one_line(
    known: KnownData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.parquet"
    assert db_main(["export", "no_such_view", "-o", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "db export: no table or view named 'no_such_view'"
    assert db_main(["export", "macro_observations", "-o", str(out), "--symbols", "X"]) == 2
    assert "has no column 'symbol'" in capsys.readouterr().err
    # The output cannot be written after the COPY has started: one line, and the COPY's reader
    # thread is gone (the COPY cancelled, not left running).
    missing = tmp_path / "no" / "such" / "dir.parquet"
    assert db_main(["export", "price_bars", "-o", str(missing), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith(f"db export: cannot write {missing}: ")
    assert not [t for t in threading.enumerate() if t.name == "copy-reader"]
