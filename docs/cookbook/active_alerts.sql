-- Alerts firing now, newest first.
SELECT symbol, interval, rule, severity, firing_since, value, threshold, message
FROM active_alerts
ORDER BY firing_since DESC, symbol, rule;
