"""Alerts: rules over each bar's facts, per-series state machines, and their delivery."""
