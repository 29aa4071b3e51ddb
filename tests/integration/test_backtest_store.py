"""`python -m ml.backtest --source postgres --save` on stored daily bars: rows in
forecast_evaluations equal to the same run over the series in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from ml import backtest
from ml.params import ForecastParams
from ml.yahoo_recordings import read_chart
from shared.settings import PostgresSettings

INSERT_BAR = """
INSERT INTO price_bars (symbol, interval, ts, open, high, low, close, volume, source, event_id)
VALUES (%s, '1d', %s, %s, %s, %s, %s, 1, 'test', %s)
"""


def test_backtest_reads_stored_bars_and_saves_its_evaluation(
    pg_settings: PostgresSettings,
    recordings: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    series = read_chart(recordings / "yahoo" / "chart_AAPL_1d_2020.json")
    with psycopg.connect(pg_settings.conninfo()) as conn, conn.cursor() as cur:
        cur.executemany(
            INSERT_BAR,
            [
                ("AAPL", datetime(d.year, d.month, d.day, tzinfo=UTC), c, c, c, c, f"a{i}")
                for i, (d, c) in enumerate(zip(series.days, series.closes, strict=True))
            ],
        )
    monkeypatch.setenv("POSTGRES_DBNAME", pg_settings.dbname)
    backtest.main(["--source", "postgres", "--save", "--smoke"])
    printed = dict(
        line.split("=", 1) for line in capsys.readouterr().out.splitlines() if "=" in line
    )
    assert printed["series"] == "1" and printed["evaluation_rows"] == "6"
    expected = backtest.run(lambda: [series], ForecastParams(), max_origins=backtest.SMOKE_ORIGINS)
    with psycopg.connect(pg_settings.conninfo()) as conn:
        rows = conn.execute(
            "SELECT model, step, series, origins, mase, coverage95 FROM forecast_evaluations"
            " WHERE run_id = %s ORDER BY step, model",
            (printed["run_id"],),
        ).fetchall()
    assert len(rows) == 6
    for model, step, n_series, origins, mase, coverage95 in rows:
        scores = expected.score(model, step)
        assert n_series == 1 and origins == len(scores.scaled_errors) > 0
        assert mase == pytest.approx(sum(scores.scaled_errors) / origins, rel=1e-12)
        assert coverage95 == scores.inside95 / origins
