"""Forecasting on log closes: ARIMA, naive and drift, their schedule and metrics (pure, no I/O), and
the backtest that reads recorded series."""
