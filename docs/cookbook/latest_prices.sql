-- Latest price per symbol: the newest bar of each series of one interval.
SELECT symbol, ts, close, volume
FROM latest_bars
WHERE interval = :'interval'
ORDER BY symbol;
