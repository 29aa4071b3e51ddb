"""Ground floor shared by every service: settings, schemas, errors, Kafka/Postgres helpers."""
