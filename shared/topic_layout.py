"""A topic's layout (partitions, replication factor, min.insync.replicas): read from the broker
and compared with the settings, so a topic that differs stops the setup with one clear line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType, TopicMetadata

MIN_INSYNC = "min.insync.replicas"


@dataclass(frozen=True)
class TopicLayout:
    """What a topic is, or should be, on the cluster."""

    partitions: int
    replication_factor: int
    min_insync_replicas: int


def layout_problem(topic: str, found: TopicLayout, wanted: TopicLayout) -> str | None:
    """The first way `found` differs from `wanted`, as one line naming the topic, the value found
    and the setting's; None when they agree. Partitions first: they cannot be changed later."""
    if found.partitions != wanted.partitions:
        return (
            f"topic {topic} has {found.partitions} partitions, the settings say "
            f"{wanted.partitions}; partition counts are fixed at creation (see README: re-keying)"
        )
    if found.replication_factor != wanted.replication_factor:
        return (
            f"topic {topic} has replication factor {found.replication_factor}, the settings say "
            f"{wanted.replication_factor} (KAFKA_REPLICATION_FACTOR)"
        )
    if found.min_insync_replicas != wanted.min_insync_replicas:
        return (
            f"topic {topic} has {MIN_INSYNC}={found.min_insync_replicas}, the settings say "
            f"{wanted.min_insync_replicas} (KAFKA_MIN_INSYNC_REPLICAS)"
        )
    return None


def read_layouts(
    admin: AdminClient, topics: Mapping[str, TopicMetadata], timeout_s: float
) -> dict[str, TopicLayout]:
    """The layout of each of `topics` (metadata from list_topics) as the broker has it. The
    replication factor is the smallest over the topic's partitions (the weakest one counts);
    min.insync.replicas is the value in force, the topic's own or the broker's default."""
    if not topics:
        return {}
    futures = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, name) for name in topics], request_timeout=timeout_s
    )
    in_sync: dict[str, int] = {}
    for resource, future in futures.items():
        in_sync[resource.name] = int(future.result(timeout=timeout_s)[MIN_INSYNC].value)
    return {
        name: TopicLayout(
            partitions=len(metadata.partitions),
            replication_factor=min(
                (len(p.replicas) for p in metadata.partitions.values()), default=0
            ),
            min_insync_replicas=in_sync[name],
        )
        for name, metadata in topics.items()
    }
