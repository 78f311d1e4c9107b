-- The time each ingest batch covers per stream and subject: the first and last instant of
-- the rows it accepted and how many, so that a gap in a subject's data is visible at ingest
-- (`system.ingest_coverage`). migrations/sqlite/V6__ingest_coverage.sql is the same table in
-- the SQLite dialect.
CREATE TABLE ingest_coverage (
    batch_id   BIGINT NOT NULL REFERENCES ingest_batches (id) ON DELETE CASCADE,
    stream_id  BIGINT NOT NULL REFERENCES streams (id),
    subject_id BIGINT NOT NULL REFERENCES subjects (id),
    first_time TIMESTAMPTZ NOT NULL,
    last_time  TIMESTAMPTZ NOT NULL,
    rows       BIGINT NOT NULL CHECK (rows > 0),
    PRIMARY KEY (batch_id, stream_id, subject_id),
    CHECK (first_time <= last_time)
);
