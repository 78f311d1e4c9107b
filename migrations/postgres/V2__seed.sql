-- Seed data, in SQL that PostgreSQL and SQLite both accept: migrations/sqlite/V2__seed.sql
-- is a symbolic link to this file, so the two catalogs start from the same vocabulary.

INSERT INTO roles (id, name, description) VALUES
    (1, 'admin',   'Manages the organization: users, streams, connectors, erasure, audit'),
    (2, 'analyst', 'Reads the whole organization, without personal identifiers'),
    (3, 'coach',   'Reads the subjects of the groups they coach'),
    (4, 'member',  'Reads and writes their own subject'),
    (5, 'ingest',  'Writes records; reads nothing'),
    (6, 'service', 'Reads the whole organization for a service, without personal identifiers');

INSERT INTO permissions (id, name, description) VALUES
    (1,  'read_all_subjects',   'Read every subject of the organization'),
    (2,  'read_group_subjects', 'Read the subjects of the groups one coaches'),
    (3,  'read_own_subject',    'Read the subject linked to one''s account'),
    (4,  'read_identifiers',    'See names and emails of the subjects one may read'),
    (5,  'write_data',          'Write records for any subject of the organization'),
    (6,  'write_own_subject',   'Write records for the subject linked to one''s account'),
    (7,  'manage_users',        'Create users, grant roles, issue and revoke tokens'),
    (8,  'manage_catalog',      'Register streams, connectors, groups and goals; set retention'),
    (9,  'erase_subjects',      'Export a subject''s data and request its erasure'),
    (10, 'read_audit',          'Read the audit log and the quarantine');

INSERT INTO role_permissions (role_id, permission_id) VALUES
    (1, 1), (1, 4), (1, 5), (1, 7), (1, 8), (1, 9), (1, 10),
    (2, 1),
    (3, 2), (3, 4),
    (4, 3), (4, 4), (4, 6),
    (5, 5),
    (6, 1);

-- Standard stream templates (org_id NULL). The trigger on organizations copies them into
-- every organization, including `default` below.
INSERT INTO streams (org_id, name, kind, standard, description, max_duration_seconds) VALUES
    (NULL, 'heart_rate',       'point',    TRUE, 'Heart rate readings', NULL),
    (NULL, 'hrv',              'point',    TRUE, 'Heart-rate variability (RMSSD)', NULL),
    (NULL, 'spo2',             'point',    TRUE, 'Blood oxygen saturation', NULL),
    (NULL, 'steps',            'interval', TRUE, 'Steps counted over an interval, at most 300 per minute', 86400),
    (NULL, 'active_energy',    'interval', TRUE, 'Active energy burned over an interval', 86400),
    (NULL, 'sleep',            'interval', TRUE, 'Sleep stages; a session lasts at most 24 h', 86400),
    (NULL, 'body',             'point',    TRUE, 'Body composition measurements', NULL),
    (NULL, 'blood_pressure',   'point',    TRUE, 'Blood pressure readings', NULL),
    (NULL, 'glucose',          'point',    TRUE, 'Blood glucose readings', NULL),
    (NULL, 'workouts',         'interval', TRUE, 'Workout summaries', 172800),
    (NULL, 'activity_samples', 'point',    TRUE, 'GPS and sensor samples recorded during workouts', NULL),
    (NULL, 'meals',            'point',    TRUE, 'Food eaten, one row per food item', NULL);

-- The series key and time columns every stream has.
INSERT INTO stream_columns (stream_id, position, name, arrow_type, unit, role, nullable, description)
SELECT id, 0, 'subject_id', 'Int64', NULL, 'key', FALSE, 'Pseudonymous subject id (meta.subjects.id)'
FROM streams WHERE org_id IS NULL;

INSERT INTO stream_columns (stream_id, position, name, arrow_type, unit, role, nullable, description)
SELECT id, 1, 'source', 'Utf8', NULL, 'key', FALSE, 'Device or application that produced the row'
FROM streams WHERE org_id IS NULL;

INSERT INTO stream_columns (stream_id, position, name, arrow_type, unit, role, nullable, description)
SELECT id, 2, 'time', 'Timestamp(ns)', NULL, 'time', FALSE, 'Instant of the reading, or start of the interval (UTC)'
FROM streams WHERE org_id IS NULL;

INSERT INTO stream_columns (stream_id, position, name, arrow_type, unit, role, nullable, description)
SELECT id, 3, 'end_time', 'Timestamp(ns)', NULL, 'end_time', FALSE, 'End of the interval (UTC)'
FROM streams WHERE org_id IS NULL AND kind = 'interval';

-- Value columns, in canonical UCUM units with their plausible ranges. VALUES columns are
-- named column1..column10 by both dialects.
INSERT INTO stream_columns (stream_id, position, name, arrow_type, unit, role, nullable,
                            plausible_min, plausible_max, allowed_values, description)
SELECT s.id, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7,
       v.column8, v.column9, v.column10, ''
FROM (VALUES
    ('heart_rate',       3,  'bpm',         'Float64', '/min',    'value', FALSE, 25.0,   250.0,   NULL),
    ('hrv',              3,  'rmssd_ms',    'Float64', 'ms',      'value', FALSE, 5.0,    300.0,   NULL),
    ('spo2',             3,  'pct',         'Float64', '%',       'value', FALSE, 50.0,   100.0,   NULL),
    ('steps',            4,  'count',       'Int64',   '{steps}', 'value', FALSE, 0.0,    NULL,    NULL),
    ('active_energy',    4,  'kcal',        'Float64', 'kcal',    'value', FALSE, 0.0,    NULL,    NULL),
    ('sleep',            4,  'stage',       'Utf8',    NULL,      'value', FALSE, NULL,   NULL,
        '["in_bed","awake","light","deep","rem","asleep"]'),
    ('body',             3,  'weight_kg',   'Float64', 'kg',      'value', TRUE,  20.0,   400.0,   NULL),
    ('body',             4,  'fat_pct',     'Float64', '%',       'value', TRUE,  2.0,    75.0,    NULL),
    ('body',             5,  'bmi',         'Float64', 'kg/m2',   'value', TRUE,  8.0,    100.0,   NULL),
    ('blood_pressure',   3,  'systolic',    'Float64', 'mm[Hg]',  'value', FALSE, 50.0,   260.0,   NULL),
    ('blood_pressure',   4,  'diastolic',   'Float64', 'mm[Hg]',  'value', FALSE, 30.0,   180.0,   NULL),
    ('glucose',          3,  'mmol_l',      'Float64', 'mmol/L',  'value', FALSE, 1.0,    35.0,    NULL),
    ('workouts',         4,  'sport',       'Utf8',    NULL,      'value', FALSE, NULL,   NULL,    NULL),
    ('workouts',         5,  'distance_m',  'Float64', 'm',       'value', TRUE,  0.0,    NULL,    NULL),
    ('workouts',         6,  'energy_kcal', 'Float64', 'kcal',    'value', TRUE,  0.0,    NULL,    NULL),
    ('workouts',         7,  'avg_hr',      'Float64', '/min',    'value', TRUE,  25.0,   250.0,   NULL),
    ('workouts',         8,  'max_hr',      'Float64', '/min',    'value', TRUE,  25.0,   250.0,   NULL),
    ('activity_samples', 3,  'lat',         'Float64', 'deg',     'value', TRUE,  -90.0,  90.0,    NULL),
    ('activity_samples', 4,  'lon',         'Float64', 'deg',     'value', TRUE,  -180.0, 180.0,   NULL),
    ('activity_samples', 5,  'altitude_m',  'Float64', 'm',       'value', TRUE,  -500.0, 9000.0,  NULL),
    ('activity_samples', 6,  'speed_m_s',   'Float64', 'm/s',     'value', TRUE,  0.0,    100.0,   NULL),
    ('activity_samples', 7,  'cadence',     'Float64', '/min',    'value', TRUE,  0.0,    300.0,   NULL),
    ('activity_samples', 8,  'power_w',     'Float64', 'W',       'value', TRUE,  0.0,    3000.0,  NULL),
    ('activity_samples', 9,  'heart_rate',  'Float64', '/min',    'value', TRUE,  25.0,   250.0,   NULL),
    ('activity_samples', 10, 'distance_m',  'Float64', 'm',       'value', TRUE,  0.0,    NULL,    NULL),
    -- A meal is several foods at one instant: meal and food_id belong to the series key.
    ('meals',            3,  'meal',        'Utf8',    NULL,      'key',   FALSE, NULL,   NULL,
        '["breakfast","lunch","dinner","snack"]'),
    ('meals',            4,  'food_id',     'Utf8',    NULL,      'key',   FALSE, NULL,   NULL,    NULL),
    ('meals',            5,  'quantity_g',  'Float64', 'g',       'value', TRUE,  0.0,    5000.0,  NULL),
    ('meals',            6,  'energy_kcal', 'Float64', 'kcal',    'value', TRUE,  0.0,    10000.0, NULL),
    ('meals',            7,  'protein_g',   'Float64', 'g',       'value', TRUE,  0.0,    1000.0,  NULL),
    ('meals',            8,  'carbs_g',     'Float64', 'g',       'value', TRUE,  0.0,    1000.0,  NULL),
    ('meals',            9,  'fat_g',       'Float64', 'g',       'value', TRUE,  0.0,    1000.0,  NULL),
    ('meals',            10, 'fiber_g',     'Float64', 'g',       'value', TRUE,  0.0,    500.0,   NULL),
    ('meals',            11, 'sugars_g',    'Float64', 'g',       'value', TRUE,  0.0,    1000.0,  NULL),
    ('meals',            12, 'sodium_mg',   'Float64', 'mg',      'value', TRUE,  0.0,    100000.0, NULL)
) AS v
JOIN streams s ON s.org_id IS NULL AND s.name = v.column1;

INSERT INTO organizations (name) VALUES ('default');
