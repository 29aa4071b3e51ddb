-- The analytics consumer stores each series' state as MessagePack (analytics/packed_state.py) in
-- `packed_state`: floats as their 8 bytes (bit for bit, nothing printed or parsed) and a third
-- smaller than the json text. `state` (json) stays for the forecaster's states and for rows
-- written before this migration, which the consumer still reads and replaces on its next write.
ALTER TABLE analytics_state ADD COLUMN packed_state bytea;
ALTER TABLE analytics_state ALTER COLUMN state DROP NOT NULL;
ALTER TABLE analytics_state ADD CONSTRAINT analytics_state_one_form
    CHECK ((state IS NULL) <> (packed_state IS NULL));
-- Every touched series' state is rewritten in every batch: a row is left as it is (in line, not
-- compressed) up to the largest size a page allows, instead of from ~2 kB on; compressing each
-- state and moving it to the TOAST table was the largest cost of the consumer's transaction.
-- Pages filled to half on insert leave room for the next version of their row: updates stay
-- HOT (no new index entries) instead of moving each ~3 kB row to another page.
ALTER TABLE analytics_state SET (toast_tuple_target = 8160, fillfactor = 50);
