-- The ingest quarantine, SQLite dialect: the same table, keys and checks as
-- migrations/postgres/V4__quarantine.sql (migrations/README.md documents it). Each row an
-- ingest batch rejected, where it came from and why; readable by those with the
-- `read_audit` permission (`system.quarantine`).
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id    INTEGER NOT NULL REFERENCES ingest_batches (id) ON DELETE CASCADE,
    stream_id   INTEGER REFERENCES streams (id),
    file        TEXT NOT NULL,
    record      INTEGER CHECK (record >= 0),
    column_name TEXT,
    rule        TEXT NOT NULL CHECK (length(rule) > 0),
    reason      TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    value       TEXT CHECK (length(value) <= 200)
) STRICT;
CREATE INDEX quarantine_batch ON quarantine (batch_id, id);
