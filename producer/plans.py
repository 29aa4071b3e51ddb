"""What a producer plugs into the polling loop (producer/polling.py): a plan says what to ask
for, how to key it and how to parse it; it publishes through an outlet and counts in its poll's
report. The loop owns everything else."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from confluent_kafka import KafkaError, Message

from producer.api_errors import NotFoundError
from producer.api_gate import ApiGate
from producer.poll_loop import RetryPolicy, with_retry
from producer.publisher import DeliveryCallback, KafkaPublisher
from producer.watermarks import DeliveryTracker
from shared.health import Health
from shared.kafka import Topics
from shared.metrics import DEAD_LETTERS
from shared.schemas import DeadLetter, encode

logger = logging.getLogger(__name__)


@dataclass
class PollReport:
    """What one poll did; `dropped` counts expected API artefacts by reason."""

    published: int = 0
    skipped: int = 0  # at or below the watermark: sent before
    dropped: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    undelivered: int = 0

    def summary(self) -> str:
        return (
            f"{self.published} published, {self.skipped} already sent, dropped "
            f"{dict(self.dropped) or 'nothing'}, {self.dead_letters} dead letters"
        )


R = TypeVar("R", bound=PollReport)
T = TypeVar("T")


class Outlet:
    """What a plan publishes through: the process's publisher, tracker and topics."""

    def __init__(self, publisher: KafkaPublisher, tracker: DeliveryTracker, topics: Topics) -> None:
        self.publisher = publisher
        self.tracker = tracker
        self.topics = topics

    def publish(
        self, topic: str, key: bytes, value: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        self.publisher.publish(topic, key, value, on_delivery)

    def track(
        self, key: str, ts: datetime, event_id: str, then: DeliveryCallback | None = None
    ) -> DeliveryCallback:
        """The delivery callback of a message that bounds `key`'s watermark at `ts` until Kafka
        confirms it; `then` runs after it (a plan's own record of what was delivered)."""
        advance = self.tracker.callback(key, ts, event_id)
        if then is None:
            return advance
        also = then

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            advance(error, message)
            also(error, message)

        return on_delivery

    def resend(self, key: str) -> None:
        """`key` was asked for again and is about to be published: its earlier failed messages
        are either sent again (in flight, bounding the watermark) or no longer offered."""
        self.tracker.clear_failures(key)

    def dead_letter(self, letter: DeadLetter, on_delivery: DeliveryCallback | None = None) -> None:
        """Publish what a plan could not parse, keyed like the data it replaces."""
        topic = self.topics.deadletter
        key = letter.key or letter.source
        self.publisher.publish(topic, key.encode(), encode(letter), on_delivery)
        DEAD_LETTERS.labels(topic).inc()


@dataclass
class Poll(Generic[R]):
    """One poll as a plan sees it: its report, the watermarks at its start, the outlet."""

    report: R
    watermarks: Mapping[str, datetime]
    outlet: Outlet

    def count(self, key: str, published: int, letters: Sequence[DeadLetter], what: str) -> None:
        """Publish `key`'s dead letters (untracked: they bound no watermark) and count them
        with the `published` messages of `what` (logged when there are any)."""
        for letter in letters:
            self.outlet.dead_letter(letter)
        self.report.published += published
        self.report.dead_letters += len(letters)
        if published or letters:
            logger.info("%s: %d new %s(s), %d dead letter(s)", key, published, what, len(letters))


class Plan(Generic[R]):
    """What one producer asks for, how it keys it and how it parses it (subclassed per
    producer); the defaults are what a plan without its own state needs."""

    # The API whose refused key ends this and every later poll (None: the plan handles it).
    gate: ApiGate | None = None
    what = "poll"  # the name of a poll in the log line

    def new_report(self) -> R:
        raise NotImplementedError

    def keys(self) -> Iterable[str]:
        """What this poll asks for, in order."""
        raise NotImplementedError

    def health_key(self, key: str) -> str:
        raise NotImplementedError

    def describe(self, key: str) -> str:
        """Where `key`'s data comes from, as a health reason starts ("FRED GDP")."""
        raise NotImplementedError

    def poll_key(self, key: str, poll: Poll[R]) -> None:
        """Ask for `key`, parse, publish through `poll.outlet`; raise SourceError (and its
        ApiAuthError, NotFoundError) for the loop to turn into health and the report."""
        raise NotImplementedError

    def prepare(self, poll: Poll[R], health: Health) -> bool:
        """Load the plan's own state before a poll; False (with the reason in `poll.report.
        failed`) skips the poll."""
        return True

    def finish(self, poll: Poll[R], health: Health) -> None:
        """After the flush: store what the delivery callbacks confirmed."""

    def not_found(self, key: str, error: NotFoundError, poll: Poll[R]) -> bool:
        """`key` has nothing there (in replay: nothing recorded); True to log it (once)."""
        return True


class ApiPlan(Plan[PollReport]):
    """A plan on one keyed API (Finnhub, FRED): its gate, its one retry around each request."""

    def __init__(self, gate: ApiGate, retry: RetryPolicy) -> None:
        self.gate = gate
        self._retry = retry

    def new_report(self) -> PollReport:
        return PollReport()

    def ask(self, call: Callable[[], T], what: str) -> T:
        """`call()` within the one retry (the client takes the rate-limit slot itself)."""
        return with_retry(call, self._retry, what)
