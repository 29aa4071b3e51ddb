"""Ground floor shared by every service: settings, schemas, errors, Kafka/Postgres helpers."""

from shared import hot_path

# Before any module of the hot path is imported: a compiled one must match its source. A process
# started on a stale build stops with that one line, not an import traceback.
try:
    hot_path.ensure_current()
except hot_path.StaleBuildError as exc:
    raise SystemExit(f"{exc}") from None
