"""`python -m analytics.chart AAPL --interval 1d --days 250 -o aapl.png`: one series as a PNG.

Three panels: the close with Bollinger bands, the newest forecast's 80% / 95% cone, alert
markers (firing ▲, resolved ▼) and split lines; RSI with its 30 / 70 guides; MACD with its
signal and histogram. Prices are on the newest split basis (bars_with_indicators_adjusted).
Data comes from analytics/chart_data.py as the reader role; drawing here is pure (Agg backend:
no display, no network).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analytics.chart_data import ChartData, read_chart_data  # noqa: E402

PANELS = ("price", "rsi", "macd")


def _nan(values: list[float | None]) -> list[float]:
    # matplotlib leaves a gap at NaN: the warm-up is drawn as nothing, not as zero.
    return [float("nan") if v is None else v for v in values]


def draw(data: ChartData) -> Figure:
    """The figure for `data`; its axes are labelled by PANELS (ax.get_label())."""
    fig, axes = plt.subplots(
        3, 1, sharex=True, figsize=(12, 8), gridspec_kw={"height_ratios": [3, 1, 1.2]}
    )
    for ax, name in zip(axes, PANELS, strict=True):
        ax.set_label(name)
        ax.grid(True, alpha=0.3)
    price, rsi, macd = axes
    ts = data.ts
    title = f"{data.symbol} {data.interval}"
    if ts:
        title += f"  {ts[0]:%Y-%m-%d} – {ts[-1]:%Y-%m-%d} (UTC, newest split basis)"
    price.set_title(title)
    _price_panel(price, data)
    rsi.plot(ts, _nan(data.rsi), color="purple", linewidth=1, label="rsi")
    for level in (30, 70):
        rsi.axhline(level, color="grey", linestyle=":", linewidth=0.8)
    rsi.set_ylim(0, 100)
    rsi.set_ylabel("RSI")
    macd.plot(ts, _nan(data.macd), color="tab:blue", linewidth=1, label="macd")
    macd.plot(ts, _nan(data.macd_signal), color="tab:orange", linewidth=1, label="signal")
    hist = _nan(data.macd_hist)
    colors = ["tab:green" if h >= 0 else "tab:red" for h in hist]
    macd.bar(ts, hist, width=_bar_width(data), color=colors, alpha=0.5, label="histogram")
    macd.set_ylabel("MACD")
    macd.legend(loc="upper left", fontsize="small")
    macd.xaxis.set_major_formatter(mdates.ConciseDateFormatter(macd.xaxis.get_major_locator()))
    fig.tight_layout()
    return fig


def _price_panel(ax: Any, data: ChartData) -> None:
    ts = data.ts
    ax.fill_between(
        ts, _nan(data.bb_lower), _nan(data.bb_upper), color="tab:blue", alpha=0.1, label="_band"
    )
    ax.plot(ts, _nan(data.bb_upper), color="tab:blue", linewidth=0.7, label="bb upper")
    ax.plot(ts, _nan(data.bb_middle), color="tab:blue", linestyle="--", linewidth=0.7,
            label="bb middle")  # fmt: skip
    ax.plot(ts, _nan(data.bb_lower), color="tab:blue", linewidth=0.7, label="bb lower")
    ax.plot(ts, data.close, color="black", linewidth=1.2, label="close")
    steps = [s for s in data.forecast if s.target_ts is not None]
    if steps and data.forecast_origin is not None:
        # The cone starts at the origin bar's close (on the chart's basis).
        start = data.close[ts.index(data.forecast_origin)] if data.forecast_origin in ts else None
        xs = [s.target_ts for s in steps]
        lo95, hi95 = [s.lo95 for s in steps], [s.hi95 for s in steps]
        lo80, hi80 = [s.lo80 for s in steps], [s.hi80 for s in steps]
        median = [s.median for s in steps]
        if start is not None:
            xs, median = [data.forecast_origin, *xs], [start, *median]
            lo95, hi95, lo80, hi80 = ([start, *v] for v in (lo95, hi95, lo80, hi80))
        ax.fill_between(xs, lo95, hi95, color="tab:orange", alpha=0.2, label="forecast 95%")
        ax.fill_between(xs, lo80, hi80, color="tab:orange", alpha=0.35, label="forecast 80%")
        ax.plot(xs, median, color="tab:orange", linewidth=1.2, label="forecast median")
    close_at = dict(zip(ts, data.close, strict=True))
    for state, marker, color in (("firing", "^", "red"), ("resolved", "v", "green")):
        marks = [a for a in data.alerts if a.state == state and a.bar_ts in close_at]
        if marks:
            ax.scatter(
                [a.bar_ts for a in marks], [close_at[a.bar_ts] for a in marks], marker=marker,
                color=color, s=60, zorder=5, label=f"alert {state}",
            )  # fmt: skip
    for split in data.splits:
        when, ratio = split.ts, split.ratio
        ax.axvline(when, color="tab:green", linestyle="--", linewidth=1, label="split")
        ax.annotate(
            f"split {ratio:g}:1", (when, 1.0), xycoords=("data", "axes fraction"),
            xytext=(3, -12), textcoords="offset points", color="tab:green", fontsize="small",
        )  # fmt: skip
    ax.set_ylabel("price")
    ax.legend(loc="upper left", fontsize="small", ncols=3)


def _bar_width(data: ChartData) -> float:
    """Histogram bar width in days: most of the median gap between bars."""
    if len(data.ts) < 2:
        return 0.8
    gaps = sorted((b - a).total_seconds() for a, b in zip(data.ts, data.ts[1:], strict=False))
    return 0.8 * gaps[len(gaps) // 2] / 86400


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analytics.chart", description=__doc__)
    parser.add_argument("symbol")
    parser.add_argument("--interval", default="1d")
    parser.add_argument("--days", type=int, default=250, help="calendar days up to the newest bar")
    parser.add_argument(
        "--model", default="arima", help="whose forecast cone (arima, naive, drift)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)

    import psycopg

    from shared.errors import SettingsError
    from shared.settings import PostgresSettings, build

    try:
        reader = build(PostgresSettings).as_reader()
        with psycopg.connect(reader.conninfo()) as conn:
            data = read_chart_data(conn, args.symbol.upper(), args.interval, args.days, args.model)
    except SettingsError as exc:
        print(f"analytics.chart: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"analytics.chart: cannot reach {reader.describe()}: {first}", file=sys.stderr)
        return 2
    if not data.ts:
        print(f"analytics.chart: no {args.interval} bars of {args.symbol.upper()}", file=sys.stderr)
        return 1
    figure = draw(data)
    figure.savefig(args.output, dpi=100)
    plt.close(figure)
    print(
        f"analytics.chart: {args.output}: {len(data.ts)} bars, {len(data.forecast)} forecast "
        f"steps, {len(data.alerts)} alerts, {len(data.splits)} splits"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
