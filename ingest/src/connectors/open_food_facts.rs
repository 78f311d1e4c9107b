//! `open_food_facts`: products of the Open Food Facts API (`GET
//! {base_url}/api/v2/product/{barcode}.json`) into the `foods` reference table, as
//! `off:<barcode>` with source `open_food_facts`, per 100 g.
//!
//! | key | meaning |
//! |---|---|
//! | `base_url` | the API's site, `https://world.openfoodfacts.org` by default |
//! | `barcodes` | barcodes (strings of digits) to load and refresh on every run |
//! | `from_meals` | also load the `off:<barcode>` foods the organization's meals name and `foods` lacks |
//! | `headers`, `rate_limit_per_second` (1), `max_attempts`, `timeout_seconds`, `backoff_ms` | HTTP, see `http.rs` |
//!
//! | product field (per 100 g) | foods column |
//! |---|---|
//! | `product_name`, else `product_name_en`, `generic_name`, the barcode | name |
//! | `brands` | brand |
//! | `energy-kcal_100g`, else `energy-kj_100g` / 4.184, else `energy_100g` (kJ) / 4.184 | energy_kcal |
//! | `proteins_100g`, `carbohydrates_100g`, `fat_100g`, `fiber_100g`, `sugars_100g` | protein_g, carbs_g, fat_g, fiber_g, sugars_g |
//! | `sodium_100g` (g) × 1000, else `salt_100g` / 2.5 × 1000 | sodium_mg |
//!
//! Values that are not numbers ≥ 0 or that 100 g cannot hold (over 900 kcal, 100 g, 40 000
//! mg of sodium) are left out and counted. `status: 0` (with HTTP 200 or 404) is a product
//! the database does not have. Foods are written every [`WRITE_EVERY`] products; the cursor
//! is the last configured barcode written, so an interrupted run resumes after it, and a
//! run that reaches the end of the list starts the next one from the top.

use std::collections::BTreeSet;

use arrow::{array::AsArray, compute::cast, datatypes::DataType};
use catalog::{Food, Nutrients, Organization};
use chrono::Utc;
use engine::{Engine, Principal};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::{
    FoodsReport,
    config::{ConfigError, Keys},
    http::{Client, HTTP_KEYS, HttpSettings},
};

const KEYS: [&str; 3] = ["base_url", "barcodes", "from_meals"];
const DEFAULT_BASE_URL: &str = "https://world.openfoodfacts.org";
/// Open Food Facts asks for at most 100 product reads a minute.
const DEFAULT_RATE: f64 = 1.0;
/// The prefix of Open Food Facts ids in `foods` and in meals' `food_id`.
pub(crate) const ID_PREFIX: &str = "off:";
pub(crate) const SOURCE: &str = "open_food_facts";
/// Products fetched between two writes to the catalog.
const WRITE_EVERY: usize = 50;
const FIELDS: &str = "code,product_name,product_name_en,generic_name,brands,nutriments";

/// A validated `open_food_facts` configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpenFoodFacts {
    base_url: String,
    barcodes: Vec<String>,
    from_meals: bool,
    pub(crate) http: HttpSettings,
}

/// Whether `code` can be a barcode: digits, as many as the longest codes Open Food Facts
/// keeps. Also what keeps a meal's food id from reaching into the URL's path.
fn is_barcode(code: &str) -> bool {
    (1..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
}

impl OpenFoodFacts {
    pub(crate) fn parse(config: &Value) -> Result<Self, ConfigError> {
        let known: Vec<&str> = KEYS.iter().chain(HTTP_KEYS.iter()).copied().collect();
        let keys = Keys::new(config, "open_food_facts", &known)?;
        let base_url = keys
            .string("base_url")?
            .unwrap_or(DEFAULT_BASE_URL)
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let parsed = Url::parse(&base_url)
            .map_err(|e| ConfigError::new("base_url", format!("is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "base_url",
                "must start with http:// or https://",
            ));
        }
        let mut barcodes = Vec::new();
        for (i, code) in keys
            .array("barcodes")?
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let key = format!("barcodes[{i}]");
            let code = match code {
                Value::String(code) => code.trim(),
                Value::Number(_) => {
                    return Err(ConfigError::new(
                        &key,
                        format!(
                            "write the barcode as a string (\"{code}\"): a number loses leading zeros"
                        ),
                    ));
                }
                _ => return Err(ConfigError::new(&key, "must be a barcode string")),
            };
            if !is_barcode(code) {
                return Err(ConfigError::new(
                    &key,
                    format!("\"{code}\" is not a barcode (1 to 32 digits)"),
                ));
            }
            if !barcodes.iter().any(|b| b == code) {
                barcodes.push(code.to_owned());
            }
        }
        let from_meals = keys.boolean("from_meals")?.unwrap_or(false);
        if barcodes.is_empty() && !from_meals {
            return Err(ConfigError::new(
                "barcodes",
                "lists no barcode, and from_meals is not true: there is nothing to load",
            ));
        }
        Ok(OpenFoodFacts {
            base_url,
            barcodes,
            from_meals,
            http: HttpSettings::parse(&keys, DEFAULT_RATE)?,
        })
    }

    /// Loads the products into `foods`. `cursor` is set to each configured barcode once its
    /// food is written; an error stops the run, after writing what was fetched.
    pub(crate) async fn run(
        &self,
        engine: &Engine,
        principal: &Principal,
        client: &mut Client,
        previous: Option<&str>,
        cursor: &mut Option<String>,
        report: &mut FoodsReport,
    ) -> Result<(), String> {
        let start = previous
            .and_then(|done| self.barcodes.iter().position(|b| b == done))
            .map(|i| i + 1)
            .filter(|i| *i < self.barcodes.len())
            .unwrap_or(0);
        let configured = &self.barcodes[start..];
        let mut work: Vec<(&str, bool)> = Vec::new();
        let from_meals = match self.from_meals {
            true => missing_from_meals(engine, principal, report).await?,
            false => Vec::new(),
        };
        work.extend(
            from_meals
                .iter()
                .filter(|code| !configured.contains(code))
                .map(|code| (code.as_str(), false)),
        );
        work.extend(configured.iter().map(|code| (code.as_str(), true)));

        let mut pending = Vec::new();
        let mut pending_cursor = None;
        for (code, is_configured) in work {
            let fetched = self.product(client, code, report).await;
            let fetched = match fetched {
                Ok(fetched) => fetched,
                Err(e) => {
                    write(engine, &principal.org, pending, report).await?;
                    if pending_cursor.is_some() {
                        *cursor = pending_cursor;
                    }
                    return Err(e);
                }
            };
            match fetched {
                Some(food) => pending.push(food),
                None => report.not_found.push(code.to_owned()),
            }
            if is_configured {
                pending_cursor = Some(code.to_owned());
            }
            if pending.len() >= WRITE_EVERY {
                write(engine, &principal.org, std::mem::take(&mut pending), report).await?;
                if pending_cursor.is_some() {
                    *cursor = pending_cursor.clone();
                }
            }
        }
        write(engine, &principal.org, pending, report).await?;
        if pending_cursor.is_some() {
            *cursor = pending_cursor;
        }
        Ok(())
    }

    /// One product, or `None` when the database does not have it.
    async fn product(
        &self,
        client: &mut Client,
        code: &str,
        report: &mut FoodsReport,
    ) -> Result<Option<Food>, String> {
        let target = client.target(&format!(
            "{}/api/v2/product/{code}.json?fields={FIELDS}",
            self.base_url
        ))?;
        let response = client.get(&target).await?;
        let not_found = response.status == StatusCode::NOT_FOUND;
        if !response.status.is_success() && !not_found {
            return Err(super::status_problem(response.status, &target));
        }
        let body = match response.json(&target) {
            Ok(body) => body,
            Err(_) if not_found => return Err(super::status_problem(response.status, &target)),
            Err(e) => return Err(e),
        };
        let status = match &body["status"] {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match (status, body.get("product")) {
            (Some(1), Some(product)) if product.is_object() => {
                report.fetched += 1;
                Ok(Some(food(code, product, &mut report.values_dropped)))
            }
            (Some(0), _) => Ok(None),
            _ if not_found => Err(super::status_problem(response.status, &target)),
            _ => Err(format!(
                "{}: not an Open Food Facts product answer (no status 1 with a product, nor \
                 status 0)",
                target.shown
            )),
        }
    }
}

/// The barcodes of `off:` foods the organization's meals name that `foods` does not have.
async fn missing_from_meals(
    engine: &Engine,
    principal: &Principal,
    report: &mut FoodsReport,
) -> Result<Vec<String>, String> {
    let sql = format!(
        "SELECT DISTINCT food_id FROM meals WHERE food_id LIKE '{ID_PREFIX}%' ORDER BY food_id"
    );
    let batches = engine
        .query_as(principal, &sql, None)
        .await
        .map_err(|e| format!("cannot list the foods of meals: {e}"))?
        .collect()
        .await
        .map_err(|e| format!("cannot list the foods of meals: {e}"))?;
    let mut ids = Vec::new();
    for batch in batches {
        let column = cast(batch.column(0), &DataType::Utf8)
            .map_err(|e| format!("cannot list the foods of meals: {e}"))?;
        ids.extend(
            column
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_owned),
        );
    }
    let known: BTreeSet<String> = engine
        .catalog()
        .foods()
        .get(principal.org.id, &ids)
        .await
        .map_err(|e| format!("cannot read foods: {e}"))?
        .into_iter()
        .map(|f| f.id)
        .collect();
    let mut missing = Vec::new();
    for id in ids.into_iter().filter(|id| !known.contains(id)) {
        match id.strip_prefix(ID_PREFIX).filter(|code| is_barcode(code)) {
            Some(code) => missing.push(code.to_owned()),
            None => report.not_barcodes.push(id),
        }
    }
    Ok(missing)
}

async fn write(
    engine: &Engine,
    org: &Organization,
    foods: Vec<Food>,
    report: &mut FoodsReport,
) -> Result<(), String> {
    if foods.is_empty() {
        return Ok(());
    }
    report.written += engine
        .catalog()
        .foods()
        .upsert(org.id, foods, Utc::now())
        .await
        .map_err(|e| format!("cannot write foods: {e}"))?;
    Ok(())
}

/// A number of the product: JSON numbers, or numbers written as text.
fn number(nutriments: &Value, key: &str) -> Option<f64> {
    match nutriments.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The most 100 g of food can hold of each nutrient (pure fat; 100 g; pure salt's sodium).
const MAX_PER_100G: [f64; 7] = [900.0, 100.0, 100.0, 100.0, 100.0, 100.0, 40_000.0];

/// A product as a food; impossible values left out and counted in `dropped`.
fn food(code: &str, product: &Value, dropped: &mut u64) -> Food {
    let text = |key: &str| {
        product
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let n = &product["nutriments"];
    let energy_kcal = number(n, "energy-kcal_100g")
        .or_else(|| number(n, "energy-kj_100g").map(|kj| kj / 4.184))
        .or_else(|| number(n, "energy_100g").map(|kj| kj / 4.184));
    let sodium_mg = number(n, "sodium_100g")
        .map(|g| g * 1000.0)
        .or_else(|| number(n, "salt_100g").map(|salt| salt / 2.5 * 1000.0));
    let values = [
        energy_kcal,
        number(n, "proteins_100g"),
        number(n, "carbohydrates_100g"),
        number(n, "fat_100g"),
        number(n, "fiber_100g"),
        number(n, "sugars_100g"),
        sodium_mg,
    ];
    let mut kept = [None; 7];
    for ((slot, value), max) in kept.iter_mut().zip(values).zip(MAX_PER_100G) {
        match value {
            Some(v) if v.is_finite() && (0.0..=max).contains(&v) => *slot = Some(v),
            Some(_) => *dropped += 1,
            None => {}
        }
    }
    Food {
        id: format!("{ID_PREFIX}{code}"),
        source: SOURCE.to_owned(),
        name: text("product_name")
            .or_else(|| text("product_name_en"))
            .or_else(|| text("generic_name"))
            .unwrap_or_else(|| code.to_owned()),
        brand: text("brands"),
        per_100g: Nutrients::from_values(kept),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn configuration_is_checked_key_by_key() {
        let off =
            OpenFoodFacts::parse(&json!({"barcodes": ["3017620422003", "3017620422003"]})).unwrap();
        assert_eq!(off.base_url, DEFAULT_BASE_URL);
        assert_eq!(off.barcodes, ["3017620422003"]);
        assert_eq!(off.http.rate_limit_per_second, DEFAULT_RATE);
        for (config, key, words) in [
            (
                json!({"barcodes": [3017620422003u64]}),
                "barcodes[0]",
                "leading zeros",
            ),
            (
                json!({"barcodes": ["12/../x"]}),
                "barcodes[0]",
                "not a barcode",
            ),
            (json!({"barcodes": []}), "barcodes", "from_meals"),
            (json!({"from_meals": "yes"}), "from_meals", "true or false"),
            (
                json!({"from_meals": true, "base_url": "file:///etc"}),
                "base_url",
                "http",
            ),
            (
                json!({"from_meals": true, "url": "x"}),
                "url",
                "not a key of open_food_facts",
            ),
        ] {
            let error = OpenFoodFacts::parse(&config).unwrap_err();
            assert_eq!(error.key, key, "{error}");
            assert!(
                error.to_string().contains(words),
                "'{words}' not in {error}"
            );
        }
    }

    #[test]
    fn products_become_foods_per_100_g() {
        let mut dropped = 0;
        let full = food(
            "3017620422003",
            &json!({"product_name": "Nutella", "brands": "Ferrero", "nutriments": {
                "energy-kcal_100g": 539, "energy-kj_100g": 2252, "proteins_100g": 6.3,
                "carbohydrates_100g": 57.5, "fat_100g": 30.9, "fiber_100g": "3.4",
                "sugars_100g": 56.3, "sodium_100g": 0.0428, "salt_100g": 0.107}}),
            &mut dropped,
        );
        assert_eq!(full.id, "off:3017620422003");
        assert_eq!(
            (full.name.as_str(), full.brand.as_deref()),
            ("Nutella", Some("Ferrero"))
        );
        assert_eq!(full.per_100g.energy_kcal, Some(539.0));
        assert_eq!(full.per_100g.fiber_g, Some(3.4));
        assert!((full.per_100g.sodium_mg.unwrap() - 42.8).abs() < 1e-9);

        let sparse = food(
            "42",
            &json!({"product_name": " ", "generic_name": "Oat drink", "nutriments": {
                "energy-kj_100g": 418.4, "salt_100g": 0.1, "fat_100g": -1, "sugars_100g": 250}}),
            &mut dropped,
        );
        assert_eq!(sparse.name, "Oat drink");
        assert!((sparse.per_100g.energy_kcal.unwrap() - 100.0).abs() < 1e-9);
        assert!((sparse.per_100g.sodium_mg.unwrap() - 40.0).abs() < 1e-9);
        assert_eq!(
            (sparse.per_100g.fat_g, sparse.per_100g.sugars_g),
            (None, None)
        );
        assert_eq!(dropped, 2);

        let unnamed = food("42", &json!({}), &mut dropped);
        assert_eq!(unnamed.name, "42");
        assert_eq!(unnamed.per_100g, Nutrients::default());
    }
}
