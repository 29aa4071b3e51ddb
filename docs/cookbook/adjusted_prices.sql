-- Split-adjusted daily prices: every bar on the symbol's newest split basis, comparable across
-- a split (price_factor: what the stored prices were multiplied by).
SELECT (ts AT TIME ZONE 'UTC')::date AS session_date, close, volume, price_factor
FROM price_bars_adjusted
WHERE symbol = :'symbol' AND interval = '1d'
  AND ts >= :'from' AND ts < :'to'
ORDER BY ts;
