"""The local Kafka + PostgreSQL stack that `make run` and `make test` start."""
