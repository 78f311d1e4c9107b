-- The time each ingest batch covers per stream and subject, SQLite dialect: the same table,
-- keys and checks as migrations/postgres/V6__ingest_coverage.sql, which documents it.
CREATE TABLE ingest_coverage (
    batch_id   INTEGER NOT NULL REFERENCES ingest_batches (id) ON DELETE CASCADE,
    stream_id  INTEGER NOT NULL REFERENCES streams (id),
    subject_id INTEGER NOT NULL REFERENCES subjects (id),
    first_time INTEGER NOT NULL,
    last_time  INTEGER NOT NULL,
    rows       INTEGER NOT NULL CHECK (rows > 0),
    PRIMARY KEY (batch_id, stream_id, subject_id),
    CHECK (first_time <= last_time)
) STRICT;
