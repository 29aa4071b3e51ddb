"""The forecaster: ARIMA forecasts (and naive/drift baselines) at scheduled origins, scored live."""
