"""The alert relay service: alert_events → alerts.events, the webhook and Alertmanager."""
