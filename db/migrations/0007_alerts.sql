-- Alerts: one row per state change of an alert machine, written by the analytics consumer and the
-- forecaster as the last statements of their batch's transaction (analytics/alerts/store.py), and
-- an outbox the relay (python -m analytics.alert_relay) publishes from.
--
-- Ids become visible in id order: every insert takes the same transaction-scoped advisory lock
-- first, so a follower reading `WHERE id > last_seen ORDER BY id` never skips one (ids may have
-- gaps: a conflicting replay consumes sequence values, and nothing relies on density).

CREATE TABLE alert_events (
    id             bigserial        PRIMARY KEY,
    -- One alert machine: (rule, symbol, interval[, direction]) as the rule engine hashes it.
    fingerprint    text             NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{32}$'),
    rule           text             NOT NULL,
    rules_version  text             NOT NULL,
    severity       text             NOT NULL,
    symbol         text             NOT NULL,
    interval       text             NOT NULL,
    state          text             NOT NULL CHECK (state IN ('firing', 'resolved')),
    value          double precision,
    threshold      double precision,
    message        text             NOT NULL,
    bar_ts         timestamptz      NOT NULL,
    -- The previous event of the same fingerprint, NULL for its first. UNIQUE: a machine's events
    -- form one chain, never a fork (two events claiming the same predecessor).
    prev_event_id  bigint           UNIQUE REFERENCES alert_events (id),
    -- Raised while a backfill replays history: stored and published to the topic, never sent
    -- to the webhook or Alertmanager (their markers say 'historical').
    historical     boolean          NOT NULL,
    -- The outbox marker: set by the relay once Kafka confirmed the delivery to alerts.events.
    published_at   timestamptz,
    -- One marker per further sink: delivered (skipped NULL) or deliberately not sent (skipped
    -- says why: 'historical', 'not configured', or an operator's note).
    webhook_delivered_at       timestamptz,
    webhook_skipped            text,
    alertmanager_delivered_at  timestamptz,
    alertmanager_skipped       text,
    created_at     timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (fingerprint, bar_ts, state),
    CHECK (webhook_skipped IS NULL OR webhook_delivered_at IS NOT NULL),
    CHECK (alertmanager_skipped IS NULL OR alertmanager_delivered_at IS NOT NULL)
);

-- The insert reads each fingerprint's newest id (its next event's prev_event_id).
CREATE INDEX alert_events_fingerprint_id ON alert_events (fingerprint, id);

-- The relay's backlogs, `WHERE <marker> IS NULL ORDER BY id`: partial, so each holds only the
-- rows still to send and stays small however long the table grows.
CREATE INDEX alert_events_unpublished ON alert_events (id) WHERE published_at IS NULL;
CREATE INDEX alert_events_webhook_pending ON alert_events (id)
    WHERE webhook_delivered_at IS NULL;
CREATE INDEX alert_events_alertmanager_pending ON alert_events (id)
    WHERE alertmanager_delivered_at IS NULL;
-- Firing events, for active_alerts.
CREATE INDEX alert_events_firing ON alert_events (id) WHERE state = 'firing';

-- Alerts firing now: machines whose newest event is `firing` (no later event points at it).
CREATE VIEW active_alerts AS
SELECT e.id, e.fingerprint, e.rule, e.rules_version, e.severity, e.symbol, e.interval,
       e.value, e.threshold, e.message, e.bar_ts AS firing_since, e.historical, e.created_at
FROM alert_events e
WHERE e.state = 'firing'
  AND NOT EXISTS (SELECT 1 FROM alert_events later WHERE later.prev_event_id = e.id);
