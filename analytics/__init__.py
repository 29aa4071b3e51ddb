"""Analytics service: streaming indicators, alerts and forecasts on market bars."""
