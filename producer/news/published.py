"""producer.news's own record of the articles it delivered (producer_articles, migration 0010).

The overlap a poll re-asks is filtered with this record, never with article_symbols (the storage
consumer's table): a restart while storage lags must not publish the same articles again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from psycopg_pool import ConnectionPool

SELECT_PUBLISHED = """
SELECT article_id FROM producer_articles
WHERE producer = %s AND key = %s AND article_id = ANY(%s)
"""
INSERT_PUBLISHED = """
INSERT INTO producer_articles (producer, key, article_id, published_at)
VALUES (%s, %s, %s, %s)
ON CONFLICT (producer, key, article_id) DO NOTHING
"""
PRUNE_PUBLISHED = """
DELETE FROM producer_articles WHERE producer = %s AND key = %s AND published_at < %s
"""
# How far before a key's window ids are kept: Finnhub's lists are only mostly sorted, and market
# news (no window) lists recent items only; a month is far beyond both.
PRUNE_MARGIN = timedelta(days=30)


class ArticleRecord:
    """Per key, the article ids this producer sent: in flight, delivered, or stored as such.

    As long-lived as the publisher: a failure reported after the flush that gave up on it frees
    the id, so the next poll publishes the article again.
    """

    def __init__(self, pool: ConnectionPool, producer: str) -> None:
        self._pool = pool
        self._producer = producer
        self._lock = threading.Lock()
        self._in_flight: dict[str, set[str]] = {}
        self._delivered: dict[tuple[str, str], datetime] = {}

    def known(self, key: str, ids: Iterable[str]) -> set[str]:
        """Those of `ids` already sent for `key` (and not failed)."""
        wanted = set(ids)
        with self._pool.connection() as conn:
            rows = conn.execute(SELECT_PUBLISHED, (self._producer, key, list(wanted))).fetchall()
        with self._lock:
            sent = self._in_flight.get(key, set()) | {i for k, i in self._delivered if k == key}
        return ({row[0] for row in rows} | sent) & wanted

    def sent(self, key: str, article_id: str) -> None:
        with self._lock:
            self._in_flight.setdefault(key, set()).add(article_id)

    def reported(self, key: str, article_id: str, published_at: datetime, ok: bool) -> None:
        """A delivery report (on the producer's poll/flush thread)."""
        with self._lock:
            self._in_flight.get(key, set()).discard(article_id)
            if ok:
                self._delivered[(key, article_id)] = published_at

    def store(self, horizon: dict[str, datetime]) -> None:
        """Write the delivered ids in one transaction and prune ids published PRUNE_MARGIN
        before each key's `horizon` (where its window starts); kept in memory for the next call
        on failure."""
        with self._lock:
            taken, self._delivered = self._delivered, {}
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                rows = [(self._producer, k, i, ts) for (k, i), ts in sorted(taken.items())]
                if rows:
                    cur.executemany(INSERT_PUBLISHED, rows)
                prune = [(self._producer, k, ts - PRUNE_MARGIN) for k, ts in horizon.items()]
                if prune:
                    cur.executemany(PRUNE_PUBLISHED, prune)
        except Exception:
            with self._lock:
                self._delivered = {**taken, **self._delivered}
            raise
