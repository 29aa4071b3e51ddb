"""Thin confluent-kafka helpers: topic names, client configs, the topic setup step."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
    TopicMetadata,
)

from shared.errors import SettingsError
from shared.settings import KafkaSettings
from shared.topic_layout import MIN_INSYNC, TopicLayout, layout_problem, read_layouts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """Every topic name, with the configured prefix (tests use a fresh prefix per test)."""

    prefix: str = ""

    @property
    def market_bars(self) -> str:
        return f"{self.prefix}market.bars"

    @property
    def market_actions(self) -> str:
        return f"{self.prefix}market.actions"

    @property
    def market_instruments(self) -> str:
        return f"{self.prefix}market.instruments"

    @property
    def news_articles(self) -> str:
        return f"{self.prefix}news.articles"

    @property
    def macro_observations(self) -> str:
        return f"{self.prefix}macro.observations"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}pipeline.deadletter"

    @property
    def alerts_events(self) -> str:
        return f"{self.prefix}alerts.events"

    def partitions(self, settings: KafkaSettings) -> dict[str, int]:
        """Each topic this pipeline creates, with its partition count."""
        return {
            self.market_bars: settings.partitions_market_bars,
            self.market_actions: settings.partitions_market_actions,
            self.market_instruments: settings.partitions_market_instruments,
            self.news_articles: settings.partitions_news_articles,
            self.macro_observations: settings.partitions_macro_observations,
            self.deadletter: settings.partitions_deadletter,
            self.alerts_events: settings.partitions_alerts_events,
        }


def topics_for(settings: KafkaSettings) -> Topics:
    return Topics(settings.topic_prefix)


def producer_config(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    """An idempotent producer: acks=all, no duplicates on retry, the Java client's partitioner."""
    return {
        **settings.client_config(),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        # Pinned so symbol -> partition is the same for every producer (and the Java client).
        "partitioner": "murmur2_random",
        "linger.ms": settings.linger_ms,
        "compression.type": "lz4",
    }


def make_producer(settings: KafkaSettings, client_id: str) -> Producer:
    return Producer(producer_config(settings, client_id))


def consumer_config(
    settings: KafkaSettings,
    group_id: str,
    *,
    max_poll_interval_ms: int,
    session_timeout_ms: int,
) -> dict[str, Any]:
    """A consumer whose offsets live in Postgres: nothing is committed to Kafka automatically."""
    return {
        **settings.client_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # Offsets come from consumer_offsets and a partition without a stored offset is assigned
        # at OFFSET_BEGINNING explicitly, so a reset only happens when a stored offset fell below
        # the log start (retention): that must surface as an error, never a silent jump.
        "auto.offset.reset": "error",
        "isolation.level": "read_committed",
        "max.poll.interval.ms": max_poll_interval_ms,
        "session.timeout.ms": session_timeout_ms,
        "partition.assignment.strategy": "cooperative-sticky",
        # librdkafka prefetches up to 64 MB (plus a 50 MB fetch in flight) by default: with a
        # backlog, that was a quarter of a consumer's resident memory. 8 MB still holds ~27,000
        # bars (five batches of CONSUMER_BATCH_SIZE × ~300 bytes): with a batch in flight beside
        # the one being processed (shared/loop/flight.py), 16 MB put bench.memory's 5,000-series
        # consumer over 300 MB, and halving it cost no drain rate (bench.analytics).
        "queued.max.messages.kbytes": 8192,
        "fetch.max.bytes": 8 << 20,
        "fetch.wait.max.ms": settings.fetch_wait_max_ms,
        "fetch.min.bytes": settings.fetch_min_bytes,
    }


def make_consumer(settings: KafkaSettings, group_id: str, **timeouts: int) -> Consumer:
    return Consumer(consumer_config(settings, group_id, **timeouts))


def check_broker(settings: KafkaSettings) -> None:
    """Fail fast with one clear line when the configured broker does not answer."""
    admin = AdminClient(settings.client_config())
    try:
        admin.list_topics(timeout=settings.connect_timeout_s)
        return
    except KafkaException as exc:
        reason = exc.args[0].str() if exc.args else str(exc)
    # Destroyed before the one line goes out: its threads log each failed connect to stderr,
    # and one of those landing after the line hid it from whoever reads the last line.
    del admin
    raise SettingsError(
        f"Kafka at KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers} did not answer within "
        f"{settings.connect_timeout_s:g}s ({reason})"
    )


def _kafka_reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if hasattr(error, "str") else str(exc)


def ensure_topics(settings: KafkaSettings, topics: Topics) -> list[str]:
    """Create missing topics with the settings' partitions, replication factor and
    min.insync.replicas; stop with one clear line if an existing topic differs in any of them
    (shared/topic_layout.py), or if the cluster refuses to create one.

    Returns the names of the topics this call created.
    """
    admin = AdminClient(settings.client_config())
    wanted = topics.partitions(settings)
    try:
        existing = admin.list_topics(timeout=settings.connect_timeout_s).topics
    except KafkaException as exc:
        raise SettingsError(
            f"Kafka at KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers} did not answer "
            f"({_kafka_reason(exc)})"
        ) from None
    present = {name: existing[name] for name in wanted if name in existing}
    try:
        layouts = read_layouts(admin, present, settings.connect_timeout_s)
    except KafkaException as exc:
        raise SettingsError(
            f"the {MIN_INSYNC} of topics {', '.join(present)} could not be read "
            f"({_kafka_reason(exc)})"
        ) from None
    for name, found in layouts.items():
        problem = layout_problem(name, found, wanted_layout(settings, wanted[name]))
        if problem:
            raise SettingsError(problem)
    missing = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=settings.replication_factor,
            config={
                "retention.ms": str(settings.retention_ms),
                MIN_INSYNC: str(settings.min_insync_replicas),
            },
        )
        for name, partitions in wanted.items()
        if name not in existing
    ]
    created: list[str] = []
    if not missing:
        return created
    raced: list[str] = []
    for name, future in admin.create_topics(
        missing, request_timeout=settings.connect_timeout_s
    ).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise SettingsError(
                    f"topic {name} could not be created with replication factor "
                    f"{settings.replication_factor} (KAFKA_REPLICATION_FACTOR) and "
                    f"{MIN_INSYNC}={settings.min_insync_replicas}: {_kafka_reason(exc)}"
                ) from None
            raced.append(name)  # a concurrent setup created it: its layout is checked below
    ready = await_ready(admin, {name: wanted[name] for name in created + raced}, settings)
    for name, found in read_layouts(
        admin, {name: ready[name] for name in raced}, settings.connect_timeout_s
    ).items():
        problem = layout_problem(name, found, wanted_layout(settings, wanted[name]))
        if problem:
            raise SettingsError(problem)
    if created:
        logger.info("created topics %s", ", ".join(created))
    return created


def await_ready(
    admin: AdminClient, topics: dict[str, int], settings: KafkaSettings
) -> dict[str, TopicMetadata]:
    """Wait until the broker serves each of `topics` (name: partitions) that was just created:
    its config can be described and every partition's offsets listed. create_topics returns
    when the controller has recorded the topic; the broker answering clients applies that a
    moment later, and until then the next step (a service, a health check) gets
    UNKNOWN_TOPIC_OR_PART or NOT_LEADER. Returns the topics' metadata."""
    deadline = time.monotonic() + settings.connect_timeout_s
    while True:
        reason = None
        try:
            metadata = admin.list_topics(timeout=settings.connect_timeout_s).topics
            reason = _unready(admin, topics, metadata, settings.connect_timeout_s)
        except KafkaException as exc:
            reason = _kafka_reason(exc)
        except TimeoutError:
            reason = "no answer"
        if reason is None:
            return {name: metadata[name] for name in topics}
        if time.monotonic() >= deadline:
            raise SettingsError(
                f"topics {', '.join(topics)} were created but the broker did not serve them "
                f"within {settings.connect_timeout_s:g}s (KAFKA_CONNECT_TIMEOUT_S): {reason}"
            )
        time.sleep(0.05)


def _unready(
    admin: AdminClient,
    topics: dict[str, int],
    metadata: dict[str, TopicMetadata],
    timeout_s: float,
) -> str | None:
    """Why `topics` are not served yet, or None when they are."""
    for name, partitions in topics.items():
        topic = metadata.get(name)
        if topic is None or topic.error is not None or len(topic.partitions) < partitions:
            return f"{name} not in the broker's metadata yet"
        if any(p.leader < 0 for p in topic.partitions.values()):
            return f"{name} has partitions without a leader"
    futures = [
        *admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, name) for name in topics], request_timeout=timeout_s
        ).values(),
        *admin.list_offsets(
            {
                TopicPartition(name, number): OffsetSpec.latest()
                for name, partitions in topics.items()
                for number in range(partitions)
            },
            request_timeout=timeout_s,
        ).values(),
    ]
    for future in futures:
        future.result(timeout=timeout_s)  # raises while the broker does not serve it yet
    return None


def wanted_layout(settings: KafkaSettings, partitions: int) -> TopicLayout:
    """What a topic of `partitions` partitions should be, by the settings."""
    return TopicLayout(partitions, settings.replication_factor, settings.min_insync_replicas)


def delete_topics(settings: KafkaSettings, topics: Topics, timeout_s: float = 30.0) -> list[str]:
    """Delete this prefix's topics (tests and benches, at their end: a broker holding thousands
    of dead topics slows every metadata request and runs out of heap). Returns what could not
    be deleted, with the reason; a topic already gone is not an error."""
    admin = AdminClient(settings.client_config())
    futures = admin.delete_topics(list(topics.partitions(settings)), operation_timeout=timeout_s)
    problems: list[str] = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if getattr(error, "code", lambda: None)() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                problems.append(f"{name}: {error.str() if error is not None else exc}")
        except Exception as exc:  # noqa: BLE001 (a timeout: reported, never raised at teardown)
            problems.append(f"{name}: {exc!r}")
    return problems
