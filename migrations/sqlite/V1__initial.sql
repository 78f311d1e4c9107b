-- HealthAI catalog, SQLite dialect: the same tables, keys and checks as
-- migrations/postgres/V1__initial.sql (migrations/README.md documents them). Differences:
-- STRICT tables; catalog instants are INTEGER microseconds since the Unix epoch (UTC);
-- BOOLEAN is INTEGER 0/1; UUID and DATE are TEXT in their canonical forms; JSON is TEXT
-- checked by json_valid; identifier patterns use GLOB.

CREATE TABLE organizations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9_-]*'),
    created_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER))
) STRICT;

CREATE TABLE roles (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
) STRICT;

CREATE TABLE permissions (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
) STRICT;

CREATE TABLE role_permissions (
    role_id       INTEGER NOT NULL REFERENCES roles (id),
    permission_id INTEGER NOT NULL REFERENCES permissions (id),
    PRIMARY KEY (role_id, permission_id)
) STRICT;

CREATE TABLE subjects (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       INTEGER NOT NULL REFERENCES organizations (id),
    pseudonym    TEXT NOT NULL CHECK (length(pseudonym) BETWEEN 1 AND 128),
    display_name TEXT,
    email        TEXT,
    sex          TEXT CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    birth_year   INTEGER CHECK (birth_year BETWEEN 1900 AND 2100),
    height_cm    REAL CHECK (height_cm BETWEEN 40 AND 260),
    max_hr       INTEGER CHECK (max_hr BETWEEN 100 AND 250),
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    erased_at    INTEGER,
    UNIQUE (org_id, pseudonym),
    UNIQUE (id, org_id),
    CHECK (erased_at IS NULL OR (display_name IS NULL AND email IS NULL))
) STRICT;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    email         TEXT NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name  TEXT,
    password_hash TEXT,
    subject_id    INTEGER,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    UNIQUE (org_id, email),
    UNIQUE (id, org_id),
    FOREIGN KEY (subject_id, org_id) REFERENCES subjects (id, org_id)
) STRICT;

CREATE TABLE user_roles (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    INTEGER NOT NULL REFERENCES roles (id),
    granted_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    PRIMARY KEY (user_id, role_id)
) STRICT;

CREATE TABLE refresh_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   TEXT NOT NULL CHECK (length(family_id) = 36),
    token_hash  BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    replaced_by INTEGER UNIQUE REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    CHECK (expires_at > issued_at),
    CHECK (replaced_by IS NULL OR revoked_at IS NOT NULL)
) STRICT;
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES organizations (id),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    kind        TEXT NOT NULL CHECK (kind IN ('cohort', 'coaching', 'challenge')),
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    UNIQUE (org_id, name),
    UNIQUE (id, org_id)
) STRICT;

CREATE TABLE group_members (
    group_id   INTEGER NOT NULL,
    subject_id INTEGER NOT NULL,
    org_id     INTEGER NOT NULL,
    joined_at  INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    PRIMARY KEY (group_id, subject_id),
    FOREIGN KEY (group_id, org_id) REFERENCES groups (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (subject_id, org_id) REFERENCES subjects (id, org_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX group_members_subject ON group_members (subject_id);

CREATE TABLE group_coaches (
    group_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    org_id   INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (group_id, org_id) REFERENCES groups (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX group_coaches_user ON group_coaches (user_id);

CREATE TABLE goals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     INTEGER NOT NULL,
    subject_id INTEGER NOT NULL,
    metric     TEXT NOT NULL CHECK (length(metric) BETWEEN 1 AND 63 AND metric GLOB '[a-z]*' AND metric NOT GLOB '*[^a-z0-9_]*'),
    target     REAL NOT NULL,
    comparator TEXT NOT NULL CHECK (comparator IN ('at_least', 'at_most')),
    period     TEXT NOT NULL CHECK (period IN ('day', 'week', 'month', 'total')),
    starts_on  TEXT NOT NULL CHECK (starts_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    ends_on    TEXT CHECK (ends_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    FOREIGN KEY (subject_id, org_id) REFERENCES subjects (id, org_id) ON DELETE CASCADE,
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
) STRICT;
CREATE INDEX goals_subject ON goals (subject_id);

CREATE TABLE streams (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id               INTEGER REFERENCES organizations (id),
    name                 TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z]*' AND name NOT GLOB '*[^a-z0-9_]*'),
    kind                 TEXT NOT NULL CHECK (kind IN ('point', 'interval')),
    standard             INTEGER NOT NULL CHECK (standard IN (0, 1)),
    description          TEXT NOT NULL DEFAULT '',
    schema_version       INTEGER NOT NULL DEFAULT 1 CHECK (schema_version >= 1),
    retention_days       INTEGER CHECK (retention_days > 0),
    max_duration_seconds INTEGER CHECK (max_duration_seconds > 0),
    created_at           INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    CHECK (org_id IS NOT NULL OR standard),
    CHECK (kind = 'interval' OR max_duration_seconds IS NULL)
) STRICT;
CREATE UNIQUE INDEX streams_org_name ON streams (org_id, name) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX streams_template_name ON streams (name) WHERE org_id IS NULL;

CREATE TABLE stream_columns (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id      INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL CHECK (position >= 0),
    name           TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z]*' AND name NOT GLOB '*[^a-z0-9_]*'),
    arrow_type     TEXT NOT NULL CHECK (arrow_type IN ('Boolean', 'Int64', 'Float64', 'Utf8', 'Timestamp(ns)')),
    unit           TEXT,
    role           TEXT NOT NULL CHECK (role IN ('key', 'time', 'end_time', 'value')),
    nullable       INTEGER NOT NULL CHECK (nullable IN (0, 1)),
    plausible_min  REAL,
    plausible_max  REAL,
    allowed_values TEXT CHECK (allowed_values IS NULL OR json_valid(allowed_values)),
    description    TEXT NOT NULL DEFAULT '',
    UNIQUE (stream_id, name),
    UNIQUE (stream_id, position),
    CHECK (plausible_min IS NULL OR plausible_max IS NULL OR plausible_min <= plausible_max)
) STRICT;

CREATE TRIGGER organizations_get_standard_streams AFTER INSERT ON organizations
BEGIN
    INSERT INTO streams (org_id, name, kind, standard, description, schema_version,
                         retention_days, max_duration_seconds)
    SELECT NEW.id, name, kind, 1, description, schema_version, retention_days,
           max_duration_seconds
    FROM streams WHERE org_id IS NULL;

    INSERT INTO stream_columns (stream_id, position, name, arrow_type, unit, role, nullable,
                                plausible_min, plausible_max, allowed_values, description)
    SELECT own.id, c.position, c.name, c.arrow_type, c.unit, c.role, c.nullable,
           c.plausible_min, c.plausible_max, c.allowed_values, c.description
    FROM stream_columns c
    JOIN streams tmpl ON tmpl.id = c.stream_id AND tmpl.org_id IS NULL
    JOIN streams own ON own.org_id = NEW.id AND own.name = tmpl.name;
END;

CREATE TABLE partitions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id     INTEGER NOT NULL REFERENCES streams (id),
    day           TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    last_sequence INTEGER NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    created_at    INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    UNIQUE (stream_id, day)
) STRICT;

CREATE TABLE ingest_batches (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         INTEGER NOT NULL REFERENCES organizations (id),
    source         TEXT NOT NULL,
    format         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'committed', 'failed')),
    rows_in        INTEGER NOT NULL DEFAULT 0 CHECK (rows_in >= 0),
    rows_accepted  INTEGER NOT NULL DEFAULT 0 CHECK (rows_accepted >= 0),
    rows_rejected  INTEGER NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    rows_corrected INTEGER NOT NULL DEFAULT 0 CHECK (rows_corrected >= 0),
    bytes          INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    error          TEXT,
    created_by     INTEGER REFERENCES users (id),
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    CHECK (rows_accepted + rows_rejected <= rows_in),
    CHECK ((status = 'running') = (finished_at IS NULL))
) STRICT;
CREATE INDEX ingest_batches_org_started ON ingest_batches (org_id, started_at);

CREATE TABLE parquet_files (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    partition_id     INTEGER NOT NULL REFERENCES partitions (id),
    object_store_id  TEXT NOT NULL UNIQUE CHECK (length(object_store_id) = 36),
    path             TEXT NOT NULL UNIQUE,
    sequence         INTEGER NOT NULL CHECK (sequence >= 1),
    min_time         INTEGER NOT NULL,
    max_time         INTEGER NOT NULL,
    min_subject      INTEGER NOT NULL,
    max_subject      INTEGER NOT NULL,
    row_count        INTEGER NOT NULL CHECK (row_count > 0),
    size_bytes       INTEGER NOT NULL CHECK (size_bytes > 0),
    compaction_level INTEGER NOT NULL DEFAULT 0 CHECK (compaction_level >= 0),
    ingest_batch_id  INTEGER REFERENCES ingest_batches (id),
    created_at       INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    to_delete_at     INTEGER,
    CHECK (min_time <= max_time),
    CHECK (min_subject <= max_subject)
) STRICT;
CREATE INDEX parquet_files_live ON parquet_files (partition_id, min_time) WHERE to_delete_at IS NULL;
CREATE INDEX parquet_files_to_delete ON parquet_files (to_delete_at) WHERE to_delete_at IS NOT NULL;

CREATE TABLE quality_reports (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id       INTEGER NOT NULL REFERENCES ingest_batches (id) ON DELETE CASCADE,
    stream_id      INTEGER NOT NULL REFERENCES streams (id),
    column_name    TEXT NOT NULL,
    rule           TEXT NOT NULL,
    rows_checked   INTEGER NOT NULL CHECK (rows_checked >= 0),
    rows_corrected INTEGER NOT NULL DEFAULT 0 CHECK (rows_corrected >= 0),
    rows_rejected  INTEGER NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    rows_flagged   INTEGER NOT NULL DEFAULT 0 CHECK (rows_flagged >= 0),
    completeness   REAL CHECK (completeness BETWEEN 0 AND 1),
    UNIQUE (batch_id, stream_id, column_name, rule)
) STRICT;

CREATE TABLE connectors (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id           INTEGER NOT NULL REFERENCES organizations (id),
    name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 63 AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9_-]*'),
    kind             TEXT NOT NULL,
    config           TEXT NOT NULL CHECK (json_valid(config)),
    schedule_seconds INTEGER NOT NULL CHECK (schedule_seconds > 0),
    enabled          INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    cursor           TEXT,
    status           TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'running', 'ok', 'failed')),
    last_error       TEXT,
    last_run_at      INTEGER,
    next_run_at      INTEGER NOT NULL,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    UNIQUE (org_id, name)
) STRICT;
CREATE INDEX connectors_due ON connectors (next_run_at) WHERE enabled;

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     INTEGER NOT NULL REFERENCES organizations (id),
    at         INTEGER NOT NULL,
    user_id    INTEGER REFERENCES users (id),
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    interface  TEXT NOT NULL,
    statement  TEXT,
    subject_id INTEGER REFERENCES subjects (id),
    rows       INTEGER CHECK (rows >= 0),
    outcome    TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
    detail     TEXT
) STRICT;
CREATE INDEX audit_log_org_at ON audit_log (org_id, at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE erasure_requests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          INTEGER NOT NULL,
    subject_id      INTEGER NOT NULL,
    requested_by    INTEGER REFERENCES users (id),
    requested_at    INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    completed_at    INTEGER,
    files_rewritten INTEGER CHECK (files_rewritten >= 0),
    rows_removed    INTEGER CHECK (rows_removed >= 0),
    error           TEXT,
    FOREIGN KEY (subject_id, org_id) REFERENCES subjects (id, org_id),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX erasure_requests_one_pending ON erasure_requests (subject_id) WHERE status = 'pending';
