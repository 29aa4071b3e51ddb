-- Bars with their indicators for a time range (NULL while an indicator warms up).
SELECT ts, close, sma_fast, sma_slow, rsi, macd, macd_signal, macd_hist,
       bb_lower, bb_middle, bb_upper, volatility
FROM bars_with_indicators
WHERE symbol = :'symbol' AND interval = :'interval'
  AND ts >= :'from' AND ts < :'to'
ORDER BY ts;
