-- HealthAI catalog, PostgreSQL dialect. migrations/README.md documents every table.
-- Conventions: BIGINT ids and counters (the code binds i64 everywhere), TIMESTAMPTZ for
-- catalog instants, BIGINT nanoseconds since the Unix epoch (UTC) for data times, lower-case
-- identifiers checked by the same pattern as the code (they appear in object-store paths).

CREATE TABLE organizations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Roles and permissions are fixed vocabulary: the code mirrors them as enums, and the
-- conformance suite checks that both agree.
CREATE TABLE roles (
    id          BIGINT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);

CREATE TABLE permissions (
    id          BIGINT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);

CREATE TABLE role_permissions (
    role_id       BIGINT NOT NULL REFERENCES roles (id),
    permission_id BIGINT NOT NULL REFERENCES permissions (id),
    PRIMARY KEY (role_id, permission_id)
);

CREATE TABLE subjects (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       BIGINT NOT NULL REFERENCES organizations (id),
    pseudonym    TEXT NOT NULL CHECK (length(pseudonym) BETWEEN 1 AND 128),
    -- Personal identifiers live here and nowhere else: never in Parquet, cleared on erasure.
    display_name TEXT,
    email        TEXT,
    sex          TEXT CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    birth_year   BIGINT CHECK (birth_year BETWEEN 1900 AND 2100),
    height_cm    DOUBLE PRECISION CHECK (height_cm BETWEEN 40 AND 260),
    max_hr       BIGINT CHECK (max_hr BETWEEN 100 AND 250),
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    erased_at    TIMESTAMPTZ,
    UNIQUE (org_id, pseudonym),
    -- Target of the composite foreign keys that keep every link inside one organization.
    UNIQUE (id, org_id),
    CHECK (erased_at IS NULL OR (display_name IS NULL AND email IS NULL))
);

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        BIGINT NOT NULL REFERENCES organizations (id),
    email         TEXT NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name  TEXT,
    -- argon2 PHC string; NULL for service accounts that only use issued tokens.
    password_hash TEXT,
    -- The subject a member reads; must belong to the same organization.
    subject_id    BIGINT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, email),
    UNIQUE (id, org_id),
    FOREIGN KEY (subject_id, org_id) REFERENCES subjects (id, org_id)
);

CREATE TABLE user_roles (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    BIGINT NOT NULL REFERENCES roles (id),
    granted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);

CREATE TABLE refresh_tokens (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Every token of one login shares a family; presenting a rotated token revokes the family.
    family_id   UUID NOT NULL,
    -- SHA-256 of the opaque token. The token itself is never stored.
    token_hash  BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    issued_at   TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ,
    replaced_by BIGINT UNIQUE REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    CHECK (expires_at > issued_at),
    CHECK (replaced_by IS NULL OR revoked_at IS NOT NULL)
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE groups (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES organizations (id),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    kind        TEXT NOT NULL CHECK (kind IN ('cohort', 'coaching', 'challenge')),
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    UNIQUE (id, org_id)
);

CREATE TABLE group_members (
    group_id   BIGINT NOT NULL,
    subject_id BIGINT NOT NULL,
    org_id     BIGINT NOT NULL,
    joined_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, subject_id),
    FOREIGN KEY (group_id, org_id) REFERENCES groups (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (subject_id, org_id) REFERENCES subjects (id, org_id) ON DELETE CASCADE
);
CREATE INDEX group_members_subject ON group_members (subject_id);

CREATE TABLE group_coaches (
    group_id BIGINT NOT NULL,
    user_id  BIGINT NOT NULL,
    org_id   BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id),
    FOREIGN KEY (group_id, org_id) REFERENCES groups (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id) ON DELETE CASCADE
);
CREATE INDEX group_coaches_user ON group_coaches (user_id);

CREATE TABLE goals (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     BIGINT NOT NULL,
    subject_id BIGINT NOT NULL,
    metric     TEXT NOT NULL CHECK (metric ~ '^[a-z][a-z0-9_]{0,62}$'),
    target     DOUBLE PRECISION NOT NULL,
    comparator TEXT NOT NULL CHECK (comparator IN ('at_least', 'at_most')),
    period     TEXT NOT NULL CHECK (period IN ('day', 'week', 'month', 'total')),
    starts_on  DATE NOT NULL,
    ends_on    DATE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (subject_id, org_id) REFERENCES subjects (id, org_id) ON DELETE CASCADE,
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
);
CREATE INDEX goals_subject ON goals (subject_id);

-- Schema registry. Rows with org_id NULL are the standard stream templates; the trigger
-- below gives every organization its own copy, so each organization's streams, retention
-- and partitions are its own.
CREATE TABLE streams (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id               BIGINT REFERENCES organizations (id),
    name                 TEXT NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind                 TEXT NOT NULL CHECK (kind IN ('point', 'interval')),
    standard             BOOLEAN NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    schema_version       BIGINT NOT NULL DEFAULT 1 CHECK (schema_version >= 1),
    retention_days       BIGINT CHECK (retention_days > 0),
    -- Interval streams: the longest plausible interval (a sleep session is at most a day).
    max_duration_seconds BIGINT CHECK (max_duration_seconds > 0),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (org_id IS NOT NULL OR standard),
    CHECK (kind = 'interval' OR max_duration_seconds IS NULL)
);
CREATE UNIQUE INDEX streams_org_name ON streams (org_id, name) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX streams_template_name ON streams (name) WHERE org_id IS NULL;

CREATE TABLE stream_columns (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id      BIGINT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    position       BIGINT NOT NULL CHECK (position >= 0),
    name           TEXT NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    arrow_type     TEXT NOT NULL CHECK (arrow_type IN ('Boolean', 'Int64', 'Float64', 'Utf8', 'Timestamp(ns)')),
    unit           TEXT,
    role           TEXT NOT NULL CHECK (role IN ('key', 'time', 'end_time', 'value')),
    nullable       BOOLEAN NOT NULL,
    plausible_min  DOUBLE PRECISION,
    plausible_max  DOUBLE PRECISION,
    -- JSON array of the accepted values of a categorical column (sleep stages, meals).
    allowed_values TEXT CHECK (allowed_values IS NULL OR json_typeof(allowed_values::json) = 'array'),
    description    TEXT NOT NULL DEFAULT '',
    UNIQUE (stream_id, name),
    UNIQUE (stream_id, position),
    CHECK (plausible_min IS NULL OR plausible_max IS NULL OR plausible_min <= plausible_max)
);

CREATE FUNCTION copy_standard_streams() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO streams (org_id, name, kind, standard, description, schema_version,
                         retention_days, max_duration_seconds)
    SELECT NEW.id, name, kind, TRUE, description, schema_version, retention_days,
           max_duration_seconds
    FROM streams WHERE org_id IS NULL;

    INSERT INTO stream_columns (stream_id, position, name, arrow_type, unit, role, nullable,
                                plausible_min, plausible_max, allowed_values, description)
    SELECT own.id, c.position, c.name, c.arrow_type, c.unit, c.role, c.nullable,
           c.plausible_min, c.plausible_max, c.allowed_values, c.description
    FROM stream_columns c
    JOIN streams tmpl ON tmpl.id = c.stream_id AND tmpl.org_id IS NULL
    JOIN streams own ON own.org_id = NEW.id AND own.name = tmpl.name;
    RETURN NEW;
END
$$;

CREATE TRIGGER organizations_get_standard_streams
    AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION copy_standard_streams();

-- One partition per stream and UTC day. `last_sequence` is the write order of the newest
-- file: every transaction that changes a partition's live file set bumps it first, which
-- also takes the row lock that serializes those transactions.
CREATE TABLE partitions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id     BIGINT NOT NULL REFERENCES streams (id),
    day           DATE NOT NULL,
    last_sequence BIGINT NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (stream_id, day)
);

CREATE TABLE ingest_batches (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id         BIGINT NOT NULL REFERENCES organizations (id),
    source         TEXT NOT NULL,
    format         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'committed', 'failed')),
    rows_in        BIGINT NOT NULL DEFAULT 0 CHECK (rows_in >= 0),
    rows_accepted  BIGINT NOT NULL DEFAULT 0 CHECK (rows_accepted >= 0),
    rows_rejected  BIGINT NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    rows_corrected BIGINT NOT NULL DEFAULT 0 CHECK (rows_corrected >= 0),
    bytes          BIGINT NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    error          TEXT,
    created_by     BIGINT REFERENCES users (id),
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    CHECK (rows_accepted + rows_rejected <= rows_in),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX ingest_batches_org_started ON ingest_batches (org_id, started_at);

CREATE TABLE parquet_files (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partition_id     BIGINT NOT NULL REFERENCES partitions (id),
    object_store_id  UUID NOT NULL UNIQUE,
    path             TEXT NOT NULL UNIQUE,
    -- Write order inside the partition: where rows share a series key and time, the file
    -- with the greater sequence wins. A compacted file takes the greatest of its inputs.
    sequence         BIGINT NOT NULL CHECK (sequence >= 1),
    min_time         BIGINT NOT NULL,
    max_time         BIGINT NOT NULL,
    min_subject      BIGINT NOT NULL,
    max_subject      BIGINT NOT NULL,
    row_count        BIGINT NOT NULL CHECK (row_count > 0),
    size_bytes       BIGINT NOT NULL CHECK (size_bytes > 0),
    compaction_level BIGINT NOT NULL DEFAULT 0 CHECK (compaction_level >= 0),
    ingest_batch_id  BIGINT REFERENCES ingest_batches (id),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when the file leaves the live set (compaction, retention, erasure); the object
    -- is deleted after this instant, so queries that already hold the file still read it.
    to_delete_at     TIMESTAMPTZ,
    CHECK (min_time <= max_time),
    CHECK (min_subject <= max_subject)
);
CREATE INDEX parquet_files_live ON parquet_files (partition_id, min_time) WHERE to_delete_at IS NULL;
CREATE INDEX parquet_files_to_delete ON parquet_files (to_delete_at) WHERE to_delete_at IS NOT NULL;

CREATE TABLE quality_reports (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id       BIGINT NOT NULL REFERENCES ingest_batches (id) ON DELETE CASCADE,
    stream_id      BIGINT NOT NULL REFERENCES streams (id),
    -- '*' for rules about whole rows (duplicates, time order).
    column_name    TEXT NOT NULL,
    rule           TEXT NOT NULL,
    rows_checked   BIGINT NOT NULL CHECK (rows_checked >= 0),
    rows_corrected BIGINT NOT NULL DEFAULT 0 CHECK (rows_corrected >= 0),
    rows_rejected  BIGINT NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    rows_flagged   BIGINT NOT NULL DEFAULT 0 CHECK (rows_flagged >= 0),
    completeness   DOUBLE PRECISION CHECK (completeness BETWEEN 0 AND 1),
    UNIQUE (batch_id, stream_id, column_name, rule)
);

CREATE TABLE connectors (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id           BIGINT NOT NULL REFERENCES organizations (id),
    name             TEXT NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    kind             TEXT NOT NULL,
    config           JSONB NOT NULL,
    schedule_seconds BIGINT NOT NULL CHECK (schedule_seconds > 0),
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    -- Where the next incremental pull starts, in the connector's own terms.
    cursor           TEXT,
    status           TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'running', 'ok', 'failed')),
    last_error       TEXT,
    last_run_at      TIMESTAMPTZ,
    next_run_at      TIMESTAMPTZ NOT NULL,
    -- A node that claims a run holds it until then; an expired lease can be claimed again.
    lease_until      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
CREATE INDEX connectors_due ON connectors (next_run_at) WHERE enabled;

CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     BIGINT NOT NULL REFERENCES organizations (id),
    at         TIMESTAMPTZ NOT NULL,
    user_id    BIGINT REFERENCES users (id),
    -- Who acted, as shown at the time (an email or 'system'); survives later user changes.
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    interface  TEXT NOT NULL,
    statement  TEXT,
    subject_id BIGINT REFERENCES subjects (id),
    rows       BIGINT CHECK (rows >= 0),
    outcome    TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
    detail     TEXT
);
CREATE INDEX audit_log_org_at ON audit_log (org_id, at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

CREATE TABLE erasure_requests (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          BIGINT NOT NULL,
    subject_id      BIGINT NOT NULL,
    requested_by    BIGINT REFERENCES users (id),
    requested_at    TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    completed_at    TIMESTAMPTZ,
    files_rewritten BIGINT CHECK (files_rewritten >= 0),
    rows_removed    BIGINT CHECK (rows_removed >= 0),
    error           TEXT,
    FOREIGN KEY (subject_id, org_id) REFERENCES subjects (id, org_id),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
-- At most one open request per subject.
CREATE UNIQUE INDEX erasure_requests_one_pending ON erasure_requests (subject_id) WHERE status = 'pending';
