"""The live dashboard: a local web page of one series' charts, active alerts, freshness, health."""
