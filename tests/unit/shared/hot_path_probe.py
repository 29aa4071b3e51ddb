"""Run recorded real bars through the hot path and print everything it computed, exactly.

`python -m tests.unit.shared.hot_path_probe compiled|interpreted CHART.json…`: each Yahoo chart
(recorded response) becomes `market.bar` messages (the prices as recorded, the split basis
stepping at each split the chart lists), decoded and validated, then processed by the analytics
handler: the indicators rows, alert events and packed states it makes are printed with every
float's repr, so two runs print the same text only if they computed the same bits. A few bars
broken on purpose print their validation errors. Exit code 3 when the modules were not loaded
the way `mode` asks (a comparison of one build with itself proves nothing).
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared import hot_path

BATCH = 40  # bars a process() call: series carry over from batch to batch
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def bar_messages(chart_path: Path) -> list[bytes]:
    from shared.schemas import Bar, encode, event_id

    result = json.loads(chart_path.read_text())["chart"]["result"][0]
    meta, quote = result["meta"], result["indicators"]["quote"][0]
    interval = meta["dataGranularity"]
    splits = sorted(
        (split["date"], split["numerator"] / split["denominator"])
        for split in (result.get("events") or {}).get("splits", {}).values()
    )
    messages = []
    for i, stamp in enumerate(result["timestamp"]):
        prices = [quote[name][i] for name in ("open", "high", "low", "close")]
        if any(price is None for price in prices) or quote["volume"][i] is None:
            continue  # an all-null row (the producer drops these too)
        basis = 1.0
        for date, ratio in splits:
            if stamp >= date:
                basis *= ratio
        ts = datetime.fromtimestamp(stamp, UTC)
        if interval == "1d":
            ts = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        open_, high, low, close = prices
        bar = Bar(
            event_id=event_id("probe", meta["symbol"], interval, ts),
            source="probe",
            symbol=meta["symbol"],
            interval=interval,
            ts=ts,
            open=open_,
            high=max(prices),
            low=min(prices),
            close=close,
            adj_close=None,
            volume=int(quote["volume"][i]),
            split_basis=basis,
            fetched_at=FETCHED_AT,
        )
        messages.append(encode(bar))
    return messages


def broken(message: bytes) -> list[bytes]:
    """The message with one rule broken per copy: validation must say the same of each."""
    bar = json.loads(message)
    changes = [
        {"close": -1.0},
        {"high": bar["low"] / 2},
        {"volume": -5},
        {"split_basis": 0.0},
        {"symbol": " AAPL"},
        {"interval": "7m"},
        # After its fetch (intraday), not at midnight (daily).
        {"ts": (datetime.fromisoformat(bar["fetched_at"]) + timedelta(hours=25)).isoformat()},
        {"open": 1e200},
    ]
    return [json.dumps({**bar, **change}).encode() for change in changes]


def main(argv: list[str]) -> int:
    mode, charts = argv[0], [Path(path) for path in argv[1:]]
    if mode == "interpreted":
        hot_path.interpreted()
    loaded = {name: importlib.import_module(name) for name in hot_path.MODULES}
    wrong = [
        name
        for name, module in loaded.items()
        if hot_path.is_compiled(module) != (mode == "compiled")
    ]
    if wrong:
        print(f"{wrong[0]} is not {mode}: {loaded[wrong[0]].__file__}", file=sys.stderr)
        return 3

    from analytics.alerts.live import RulesInForce
    from analytics.consumer.handler import AnalyticsHandler
    from analytics.indicators import IndicatorParams
    from shared.errors import ValidationError
    from shared.loop import Record
    from shared.settings import AlertRulesSettings
    from shared.validation import decode_bar

    handler = AnalyticsHandler(
        "probe",
        IndicatorParams(),
        1,
        "XNYS",
        RulesInForce(AlertRulesSettings().rules_path),
        3600,
    )
    out = sys.stdout
    for partition, chart in enumerate(charts):
        messages = bar_messages(chart)
        for message in broken(messages[len(messages) // 2]):
            try:
                decode_bar(message)
            except ValidationError as exc:
                print("rejected", exc, file=out)
            else:
                print("accepted", message, file=out)
        states: dict = {}
        for start in range(0, len(messages), BATCH):
            records = [
                Record("market.bars", partition, start + i, b"k", decode_bar(raw), 0, raw)
                for i, raw in enumerate(messages[start : start + BATCH])
            ]
            # Every third batch on copies (SeriesState.copy), the others in place.
            in_place = (start // BATCH) % 3 != 0
            effects = handler.process(records, states, in_place=in_place)
            states = {**states, **effects.states}
            computed = effects.rows
            for row in computed.rows:
                print("row", repr(row), file=out)
            for alert in computed.alerts:
                print("alert", repr(alert), file=out)
            for key, packed in sorted(computed.packed.items()):
                print("state", key, packed.packed.hex(), file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
