"""Analytics service: streaming indicators, alerts and forecasts on market bars."""

# Imported first: `shared` refuses a compiled hot path whose sources changed (shared/hot_path.py).
import shared  # noqa: F401
