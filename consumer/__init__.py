"""Consumers that persist Kafka topics to PostgreSQL."""
