-- The `foods` reference table, SQLite dialect: the same table, keys and checks as
-- migrations/postgres/V5__foods.sql, which documents it.
CREATE TABLE foods (
    org_id      INTEGER NOT NULL REFERENCES organizations (id),
    id          TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 200),
    source      TEXT NOT NULL CHECK (length(source) > 0),
    name        TEXT NOT NULL,
    brand       TEXT,
    energy_kcal REAL CHECK (energy_kcal >= 0),
    protein_g   REAL CHECK (protein_g >= 0),
    carbs_g     REAL CHECK (carbs_g >= 0),
    fat_g       REAL CHECK (fat_g >= 0),
    fiber_g     REAL CHECK (fiber_g >= 0),
    sugars_g    REAL CHECK (sugars_g >= 0),
    sodium_mg   REAL CHECK (sodium_mg >= 0),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
) STRICT;
