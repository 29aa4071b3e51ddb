"""`python -m shared.topic_setup`: create the pipeline's topics before any service starts."""

from __future__ import annotations

import argparse
import sys

from shared.errors import SettingsError
from shared.kafka import ensure_topics, topics_for
from shared.service import configure_logging
from shared.settings import KafkaSettings, build


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m shared.topic_setup", description=__doc__).parse_args(
        argv
    )
    configure_logging("topic_setup")
    try:
        settings = build(KafkaSettings)
        topics = topics_for(settings)
        created = ensure_topics(settings, topics)
    except SettingsError as exc:
        print(f"topic_setup: {exc}", file=sys.stderr)
        return 2
    wanted = topics.partitions(settings)
    print(
        f"topic_setup: {len(wanted)} topics ready ({len(created)} created): "
        + ", ".join(f"{name}[{count}]" for name, count in wanted.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
