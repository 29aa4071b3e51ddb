"""The pipeline's small error hierarchy."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""


class SettingsError(PipelineError):
    """A setting is missing or wrong; the message is one line naming the setting."""


class SchemaError(PipelineError):
    """A message could not be decoded into a known schema."""

    def __init__(
        self,
        reason: str,
        *,
        raw: bytes | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
        self.topic = topic
        self.partition = partition
        self.offset = offset


class UpgradeNeededError(SchemaError):
    """A well-formed message of a newer version of a known schema: upgrade this consumer."""


class ValidationError(PipelineError):
    """A decoded record breaks a domain rule (e.g. high below low)."""


class SourceError(PipelineError):
    """An external API answered with something we cannot use."""


class RetryableError(SourceError):
    """A transient failure (429, 5xx, timeout): retry with backoff."""


class FencedError(PipelineError):
    """A batch's offsets (or a state it read) moved under it: another member owns a partition
    now, or the batch does not start where the stored offset points. The batch is rolled back."""


class RecomputeError(PipelineError):
    """A series cannot be recomputed now (the reason is the message)."""


class StateRestoreError(PipelineError):
    """A partition's stored state cannot be restored: the partition stays paused (health red)."""


class StorageError(PipelineError):
    """A database write failed; raised after rollback."""


class StackError(PipelineError):
    """The local Kafka/Postgres stack cannot be set up or started."""
