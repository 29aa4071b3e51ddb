"""The reload sweep (analytics.alerts.live.sweep): pure, every series of every partition, the
forecaster's series shape as well as the analytics consumer's."""

from __future__ import annotations

from analytics.alerts.engine import AlertState, evaluate
from analytics.alerts.live import sweep
from analytics.forecaster.series import ForecastSeries
from tests.unit.analytics.alerts.builders import facts, level, ruleset


def firing_series(symbol: str, rules_text: str) -> ForecastSeries:
    """A forecaster series whose alert state has `rsi_high` firing at bar 3."""
    series = ForecastSeries.new(5)
    state = AlertState()
    for bar in range(3):
        evaluate(ruleset(rules_text), state, facts(bar, symbol=symbol, rsi=50.0))
    evaluate(ruleset(rules_text), state, facts(3, symbol=symbol, rsi=80.0))
    series.alerts = state
    series.last_ts = facts(3).ts
    return series


def test_sweep_resolves_orphans_in_every_partition_and_leaves_the_input_as_it_was() -> None:
    old_text = level() + level("rsi_low", op="<", threshold=30.0, resolve_op=">", resolve=35.0)
    states = {
        ("market.bars", 0): {("AAPL", "1d"): firing_series("AAPL", old_text)},
        ("market.bars", 1): {("MSFT", "1d"): firing_series("MSFT", old_text)},
        ("market.bars", 2): None,  # a partition without series yet
    }
    before = {key: dict(m or {}) for key, m in states.items()}
    new_rules = ruleset(level("rsi_low", op="<", threshold=30.0, resolve_op=">", resolve=35.0))

    swept = sweep(new_rules, states, lambda series: series.last_ts)

    assert sorted((row.symbol, row.rule_id, row.state) for row in swept.rows) == [
        ("AAPL", "rsi_high", "resolved"),
        ("MSFT", "rsi_high", "resolved"),
    ]
    assert all(row.bar_ts == facts(3).ts and not row.historical for row in swept.rows)
    assert all("rule removed" in row.message for row in swept.rows)
    assert set(swept.states) == {("market.bars", 0), ("market.bars", 1)}
    for series in swept.series.values():
        assert "rsi_high" not in series.alerts.machines
    # Pure: the committed series still hold their firing machine.
    for key, series_map in before.items():
        for series_key, series in series_map.items():
            assert states[key][series_key] is series  # type: ignore[index]
            assert series.alerts.machines["rsi_high"].firing
    # Nothing stale left: a second sweep changes nothing.
    assert sweep(new_rules, swept.states, lambda series: series.last_ts).rows == []
