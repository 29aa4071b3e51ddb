"""Ground floor shared by every service: settings, schemas, errors, Kafka/Postgres helpers."""

from shared import hot_path

# Before any module of the hot path is imported: a compiled one must match its source.
hot_path.ensure_current()
