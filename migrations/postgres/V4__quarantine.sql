-- The ingest quarantine: each row an ingest batch rejected, where it came from and why, so
-- that an administrator can see what was left out of a batch and fix the source. Readable
-- by those with the `read_audit` permission (`system.quarantine`). The repository keeps
-- `value` to 200 characters and `reason` to 1000; migrations/sqlite/V4__quarantine.sql is
-- the same table in the SQLite dialect.
CREATE TABLE quarantine (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    BIGINT NOT NULL REFERENCES ingest_batches (id) ON DELETE CASCADE,
    -- NULL for a row rejected before its stream was known (an unknown record type).
    stream_id   BIGINT REFERENCES streams (id),
    -- The file or source as the user gave it, e.g. `export.zip!apple_health_export/export.xml`.
    file        TEXT NOT NULL,
    -- Line or record number in the source, 1-based; NULL where the source has none.
    record      BIGINT CHECK (record >= 0),
    column_name TEXT,
    -- The check that refused the row: range, type, time, required, vocabulary, interval,
    -- subject, parse, ...
    rule        TEXT NOT NULL CHECK (length(rule) > 0),
    reason      TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    -- The offending value as text.
    value       TEXT CHECK (length(value) <= 200)
);
CREATE INDEX quarantine_batch ON quarantine (batch_id, id);
