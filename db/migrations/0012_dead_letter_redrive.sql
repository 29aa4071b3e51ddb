-- `python -m consumer.redrive` re-publishes chosen dead letters to their original topic and
-- marks each here: when, and at which offset the copy landed (the row itself stays, as the
-- record of what happened). A redriven message that fails again becomes a new dead letter.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS redriven_at timestamptz;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS redriven_partition integer;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS redriven_offset bigint;
