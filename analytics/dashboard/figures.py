"""Pure: one series' rows → the three Plotly figures of the page (price, RSI, MACD) as plain JSON.

No plotly import: plotly.js in the browser draws these dicts, so what the page shows is exactly
what these functions return (and what the unit tests check).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analytics.dashboard.queries import BarRow, SeriesData

Figure = dict[str, Any]

RSI_LEVELS = (30.0, 70.0)
PRICE_HEIGHT = 420
PANEL_HEIGHT = 220
ALERT_STYLE = {
    "firing": {"symbol": "triangle-down", "color": "#d62728", "size": 11},
    "resolved": {"symbol": "circle-open", "color": "#2ca02c", "size": 9},
}


def iso(ts: datetime) -> str:
    """Timestamps travel as ISO 8601 with their UTC offset (plotly.js reads them as dates)."""
    return ts.isoformat()


def figures(data: SeriesData) -> dict[str, Figure]:
    """The page's panels for one series: `price` (close, Bollinger bands, forecast cone, alert
    and split markers), `rsi` and `macd`. Every panel shares the x range of the bars."""
    return {"price": price_figure(data), "rsi": rsi_figure(data), "macd": macd_figure(data)}


def _line(name: str, x: list[str], y: list[float | None], **style: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "name": name, "x": x, "y": y, **style}


def _layout(data: SeriesData, title: str, height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 30},
        "xaxis": {"type": "date"},
        "legend": {"orientation": "h"},
        # Keeps a reader's zoom across refreshes of the same series.
        "uirevision": f"{data.symbol}|{data.interval}",
    }
    layout.update(extra)
    return layout


def price_figure(data: SeriesData) -> Figure:
    x = [iso(bar.ts) for bar in data.bars]
    close_at = {bar.ts: bar.close for bar in data.bars}
    traces = [
        # Lower band first, the upper one filled down to it: the band reads as one shaded area.
        _line("bb_lower", x, [b.bb_lower for b in data.bars], line={"color": "#9ecae1"}),
        _line(
            "bb_upper",
            x,
            [b.bb_upper for b in data.bars],
            line={"color": "#9ecae1"},
            fill="tonexty",
            fillcolor="rgba(158,202,225,0.2)",
        ),
        _line("bb_middle", x, [b.bb_middle for b in data.bars], line={"dash": "dot"}),
        _line("close", x, [b.close for b in data.bars], line={"color": "#1f77b4"}),
    ]
    traces += _cone(data)
    for state, style in ALERT_STYLE.items():
        marks = [a for a in data.alerts if a.state == state and a.bar_ts in close_at]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"alerts {state}",
                "x": [iso(a.bar_ts) for a in marks],
                "y": [close_at[a.bar_ts] for a in marks],
                "text": [f"{a.rule} ({a.severity}): {a.message}" for a in marks],
                "marker": style,
            }
        )
    splits = [s for s in data.splits if s.ts >= data.bars[0].ts] if data.bars else []
    traces.append(
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": "splits",
            "x": [iso(s.ts) for s in splits],
            "y": [_close_on_or_after(data.bars, s.ts) for s in splits],
            "text": [f"split {s.ratio:g}:1" for s in splits],
            "textposition": "top center",
            "marker": {"symbol": "diamond", "color": "#9467bd", "size": 10},
        }
    )
    shapes = [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": iso(s.ts),
            "x1": iso(s.ts),
            "y0": 0,
            "y1": 1,
            "line": {"color": "#9467bd", "dash": "dash", "width": 1},
        }
        for s in splits
    ]
    title = f"{data.symbol} {data.interval}: close, Bollinger bands, forecast"
    return {"data": traces, "layout": _layout(data, title, PRICE_HEIGHT, shapes=shapes)}


def _close_on_or_after(bars: list[BarRow], ts: datetime) -> float | None:
    return next((bar.close for bar in bars if bar.ts >= ts), None)


def _cone(data: SeriesData) -> list[dict[str, Any]]:
    """The newest forecast's 95% and 80% intervals and median, each starting at the last bar's
    close so the cone opens from the price line. Steps without a target time are left out."""
    steps = [step for step in data.forecast if step.target_ts is not None]
    if not data.bars:
        steps = []
    anchor = [data.bars[-1]] if steps else []
    x = [iso(b.ts) for b in anchor] + [iso(s.target_ts) for s in steps]  # type: ignore[arg-type]
    start = [b.close for b in anchor]

    def band(name: str, lo: list[float], hi: list[float], color: str) -> list[dict[str, Any]]:
        return [
            _line(f"{name} low", x, start + lo, line={"width": 0}, showlegend=False),
            _line(name, x, start + hi, line={"width": 0}, fill="tonexty", fillcolor=color),
        ]

    return [
        *band(
            "forecast 95%",
            [s.lo95 for s in steps],
            [s.hi95 for s in steps],
            "rgba(255,127,14,0.15)",
        ),
        *band(
            "forecast 80%", [s.lo80 for s in steps], [s.hi80 for s in steps], "rgba(255,127,14,0.3)"
        ),
        _line("forecast median", x, start + [s.median for s in steps], line={"color": "#ff7f0e"}),
    ]


def rsi_figure(data: SeriesData) -> Figure:
    x = [iso(bar.ts) for bar in data.bars]
    shapes = [
        {
            "type": "line",
            "xref": "paper",
            "yref": "y",
            "x0": 0,
            "x1": 1,
            "y0": level,
            "y1": level,
            "line": {"color": "#999", "dash": "dot", "width": 1},
        }
        for level in RSI_LEVELS
    ]
    return {
        "data": [_line("rsi", x, [b.rsi for b in data.bars], line={"color": "#17becf"})],
        "layout": _layout(data, "RSI", PANEL_HEIGHT, shapes=shapes, yaxis={"range": [0, 100]}),
    }


def macd_figure(data: SeriesData) -> Figure:
    x = [iso(bar.ts) for bar in data.bars]
    return {
        "data": [
            {
                "type": "bar",
                "name": "macd_hist",
                "x": x,
                "y": [b.macd_hist for b in data.bars],
                "marker": {"color": "#c7c7c7"},
            },
            _line("macd", x, [b.macd for b in data.bars], line={"color": "#1f77b4"}),
            _line("macd_signal", x, [b.macd_signal for b in data.bars], line={"color": "#ff7f0e"}),
        ],
        "layout": _layout(data, "MACD", PANEL_HEIGHT),
    }
