-- The `foods` reference table (`reference.foods` in SQL): nutrients per 100 g of a food, from
-- open food-composition data (Open Food Facts, USDA FoodData Central, ANSES CIQUAL) or an
-- organization's own list. Meal logs name foods by `id`; ingest fills a meal's nutrients from
-- here when the log gives only a quantity. Ids carry their source's prefix (`off:`, `fdc:`,
-- `ciqual:`) so that two databases never collide; loading a food again replaces it.
-- migrations/sqlite/V5__foods.sql is the same table in the SQLite dialect.
CREATE TABLE foods (
    org_id      BIGINT NOT NULL REFERENCES organizations (id),
    id          TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 200),
    -- open_food_facts, usda_fdc, ciqual, or the name of the file it came from.
    source      TEXT NOT NULL CHECK (length(source) > 0),
    name        TEXT NOT NULL,
    brand       TEXT,
    energy_kcal DOUBLE PRECISION CHECK (energy_kcal >= 0),
    protein_g   DOUBLE PRECISION CHECK (protein_g >= 0),
    carbs_g     DOUBLE PRECISION CHECK (carbs_g >= 0),
    fat_g       DOUBLE PRECISION CHECK (fat_g >= 0),
    fiber_g     DOUBLE PRECISION CHECK (fiber_g >= 0),
    sugars_g    DOUBLE PRECISION CHECK (sugars_g >= 0),
    sodium_mg   DOUBLE PRECISION CHECK (sodium_mg >= 0),
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, id)
);
