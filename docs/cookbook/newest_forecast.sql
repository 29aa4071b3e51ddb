-- The newest forecast of a series with its 80% / 95% intervals, beside the model's live quality
-- at that step (MASE against naive's, 95% coverage with its Wilson interval).
SELECT f.origin_ts, f.step, f.target_ts, f.model, f.median, f.lo80, f.hi80, f.lo95, f.hi95,
       q.scored, q.mase, q.mase_naive, q.coverage95, q.coverage95_ci_low, q.coverage95_ci_high
FROM latest_forecasts f
LEFT JOIN forecast_quality q USING (symbol, interval, model, step)
WHERE f.symbol = :'symbol' AND f.interval = :'interval'
ORDER BY f.model, f.step;
