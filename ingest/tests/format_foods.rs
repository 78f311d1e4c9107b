//! Food-composition tables end to end: the fixtures (Open Food Facts, USDA FoodData Central in
//! a directory and in a zip, CIQUAL in Windows-1252, the simulator's own table) loaded by
//! `ingest::ingest` into a real engine, read back from `reference.foods` with SQL, and meals
//! enriched from them.

mod support;

use support::Harness;

use std::path::{Path, PathBuf};

use arrow::{
    array::{Array, AsArray, RecordBatch},
    datatypes::{Float64Type, Int64Type},
};
use ingest::{
    FoodCounts, IngestOptions, IngestReport, Silent,
    simulate::{SimulationOptions, simulate},
};

impl Harness {
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    async fn ingest(&self, paths: &[PathBuf]) -> IngestReport {
        ingest::ingest(
            &self.engine,
            &self.principal,
            paths,
            &IngestOptions::default(),
            &Silent,
        )
        .await
        .unwrap()
    }

    async fn rows(&self, sql: &str) -> Vec<RecordBatch> {
        self.engine.query("default", sql).await.unwrap().batches
    }

    async fn text(&self, sql: &str) -> String {
        arrow::util::pretty::pretty_format_batches(&self.rows(sql).await)
            .unwrap()
            .to_string()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.rows(sql).await[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0)
    }

    /// The text columns of a query, row by row.
    async fn strings(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut rows = Vec::new();
        for batch in self.rows(sql).await {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|c| {
                            let c = c.as_string::<i32>();
                            (!c.is_null(row)).then(|| c.value(row).to_owned())
                        })
                        .collect(),
                );
            }
        }
        rows
    }

    /// The float columns of a query, row by row.
    async fn numbers(&self, sql: &str) -> Vec<Vec<Option<f64>>> {
        let mut rows = Vec::new();
        for batch in self.rows(sql).await {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|c| {
                            let c = c.as_primitive::<Float64Type>();
                            (!c.is_null(row)).then(|| c.value(row))
                        })
                        .collect(),
                );
            }
        }
        rows
    }
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/foods")
        .join(path)
}

fn counts(report: &IngestReport, source: &str) -> (u64, u64, u64) {
    let FoodCounts {
        loaded,
        skipped,
        rejected,
        ..
    } = report
        .foods
        .get(source)
        .unwrap_or_else(|| panic!("no {source} in {:?}", report.foods));
    (*loaded, *skipped, *rejected)
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < 1e-6)
}

#[tokio::test]
async fn open_food_data_lands_in_reference_foods_and_loading_again_changes_nothing() {
    let h = Harness::new().await;
    let paths = [
        fixture("off/en.openfoodfacts.org.products.csv"),
        fixture("fdc"),
        fixture("ciqual/Table Ciqual 2020_FR_2020 07 07.csv"),
    ];
    let report = h.ingest(&paths).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(counts(&report, "open_food_facts"), (4, 2, 1));
    assert_eq!(counts(&report, "usda_fdc"), (3, 1, 1));
    assert_eq!(counts(&report, "ciqual"), (3, 1, 2));
    let off = &report.foods["open_food_facts"].notes;
    assert_eq!(off["energy_kcal_from_kj"], 2);
    assert_eq!(off["sodium_from_salt"], 1);
    assert_eq!(off["skipped_no_name"], 1);
    let ciqual = &report.foods["ciqual"].notes;
    assert_eq!(ciqual["decoded_as_windows_1252"], 1);
    assert_eq!(ciqual["traces_as_zero"], 1);
    assert_eq!(ciqual["below_limit_as_half"], 2);
    assert_eq!(report.foods["usda_fdc"].notes["tables_not_read"], 1);

    assert_eq!(h.count("SELECT count(*) FROM reference.foods").await, 10);
    let foods = h
        .strings("SELECT food_id, source, name, brand FROM reference.foods ORDER BY food_id")
        .await;
    let row = |id: &str, source: &str, name: &str, brand: Option<&str>| {
        vec![
            Some(id.to_owned()),
            Some(source.to_owned()),
            Some(name.to_owned()),
            brand.map(str::to_owned),
        ]
    };
    assert_eq!(
        foods,
        [
            row("ciqual:13039", "ciqual", "Pomme, pulpe et peau, crue", None),
            row("ciqual:18066", "ciqual", "Eau du robinet", None),
            row("ciqual:7110", "ciqual", "Pain, baguette, courante", None),
            row(
                "fdc:167512",
                "usda_fdc",
                "Pillsbury Golden Layer Buttermilk Biscuits, Artificial Flavor, refrigerated dough",
                None
            ),
            row("fdc:2346404", "usda_fdc", "Carrots, baby, raw", None),
            row(
                "fdc:2709215",
                "usda_fdc",
                "Tea, hot, \"herbal\", unsweetened",
                None
            ),
            row(
                "off:0041196910759",
                "open_food_facts",
                "Progresso Soup, Chicken Noodle",
                Some("Progresso")
            ),
            row(
                "off:20012345",
                "open_food_facts",
                "Jambon \"Supérieur",
                Some("Maison \"Dupont")
            ),
            row(
                "off:3017620422003",
                "open_food_facts",
                "Nutella",
                Some("Ferrero,Nutella")
            ),
            row(
                "off:5000159407236",
                "open_food_facts",
                "Milk chocolate bar",
                None
            ),
        ],
        "Windows-1252 decoded, stray quotes kept, foods without a name or nutrients skipped"
    );

    let nutrients = h
        .numbers(
            "SELECT energy_kcal, protein_g, carbs_g, fat_g, fiber_g, sugars_g, sodium_mg \
             FROM reference.foods ORDER BY food_id",
        )
        .await;
    let [
        pomme,
        eau,
        baguette,
        biscuits,
        carrots,
        tea,
        progresso,
        jambon,
        nutella,
        chocolate,
    ] = nutrients.try_into().unwrap();
    assert_eq!(
        pomme,
        [
            Some(53.1),
            Some(0.0),
            Some(11.6),
            Some(0.25),
            Some(1.4),
            Some(9.35),
            Some(2.5)
        ],
        "French decimals, traces as 0, '< 0,5' as half its bound"
    );
    assert_eq!(eau[6], None, "'-' stays missing");
    assert_eq!(eau[0], Some(0.0));
    assert_eq!(baguette[0], Some(270.0));
    assert_eq!(biscuits[0], Some(307.0));
    assert_eq!(biscuits[6], Some(1000.0));
    assert_eq!(carrots[0], Some(38.0), "Atwater general energy before kJ");
    assert_eq!(carrots[2], Some(9.08), "carbohydrate by summation");
    assert_eq!(tea[5], Some(0.0));
    assert!(close(jambon[6], 720.0), "sodium = salt / 2.5: {jambon:?}");
    assert!(
        close(progresso[0], 209.0 / 4.184),
        "kcal from kJ: {progresso:?}"
    );
    assert!(close(progresso[6], 270.0), "sodium g → mg: {progresso:?}");
    assert!(close(nutella[6], 42.8), "{nutella:?}");
    assert!(close(chocolate[0], 2196.0 / 4.184), "energy_100g is kJ");

    let catalog = h.engine.catalog();
    let quarantined = catalog
        .ingest()
        .quarantined(report.batch, 100)
        .await
        .unwrap();
    let mut seen: Vec<(&str, Option<i64>, Option<&str>, &str)> = quarantined
        .iter()
        .map(|q| {
            (
                q.file.rsplit('/').next().unwrap(),
                q.record,
                q.column.as_deref(),
                q.rule.as_str(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "Table Ciqual 2020_FR_2020 07 07.csv",
                Some(6),
                Some("Energie, Règlement UE N° 1169/2011 (kcal/100 g)"),
                "range"
            ),
            (
                "Table Ciqual 2020_FR_2020 07 07.csv",
                Some(7),
                Some("Energie, Règlement UE N° 1169/2011 (kcal/100 g)"),
                "type"
            ),
            (
                "en.openfoodfacts.org.products.csv",
                Some(7),
                Some("fat_100g"),
                "range"
            ),
            ("food.csv", Some(6), Some("nutrient 1003"), "range"),
        ]
    );
    assert!(quarantined.iter().all(|q| q.stream.is_none()));
    let fat = quarantined
        .iter()
        .find(|q| q.column.as_deref() == Some("fat_100g"))
        .unwrap();
    assert_eq!(fat.value.as_deref(), Some("170"));
    assert!(fat.reason.contains("more than the 100 g"), "{}", fat.reason);
    let batch = catalog.ingest().get_batch(report.batch).await.unwrap();
    assert_eq!(
        (
            batch.counts.rows_in,
            batch.counts.rows_accepted,
            batch.counts.rows_rejected
        ),
        (14, 10, 4),
        "skipped rows are not counted as rows"
    );

    let before = h
        .text("SELECT * FROM reference.foods ORDER BY food_id")
        .await;
    let again = h.ingest(&paths).await;
    assert_eq!(counts(&again, "open_food_facts"), (4, 2, 1));
    let after = h
        .text("SELECT * FROM reference.foods ORDER BY food_id")
        .await;
    assert_eq!(before, after, "loading again changed the foods");

    // A later batch's meals find the foods loaded before.
    let meals = h.file(
        "meals.csv",
        "subject,time,meal,food_id,quantity_g\n\
         S1,2026-03-01T08:00:00Z,breakfast,off:3017620422003,15\n\
         S1,2026-03-01T08:00:00Z,breakfast,ciqual:7110,80\n",
    );
    h.ingest(&[meals]).await;
    let enriched = h
        .numbers("SELECT energy_kcal, sodium_mg FROM meals ORDER BY food_id")
        .await;
    assert_eq!(enriched[0], [Some(216.0), Some(384.0)], "baguette × 0.8");
    assert!(close(enriched[1][0], 80.85), "Nutella × 0.15: {enriched:?}");
}

#[tokio::test]
async fn food_data_central_is_read_from_a_zip_and_a_lone_table_is_named() {
    let h = Harness::new().await;
    let report = h.ingest(&[fixture("fdc.zip")]).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(counts(&report, "usda_fdc"), (3, 1, 1));
    assert_eq!(
        h.count("SELECT count(*) FROM reference.foods WHERE source = 'usda_fdc'")
            .await,
        3
    );
    let quarantined = h
        .engine
        .catalog()
        .ingest()
        .quarantined(report.batch, 10)
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 1);
    assert!(
        quarantined[0]
            .file
            .ends_with("fdc.zip!FoodData_Central_sr_legacy_food_csv_2018-04/food.csv"),
        "{}",
        quarantined[0].file
    );

    let lone = h.file(
        "lone/food_nutrient.csv",
        &std::fs::read_to_string(fixture("fdc/food_nutrient.csv")).unwrap(),
    );
    let report = h.ingest(&[lone]).await;
    assert_eq!(report.failed.len(), 1);
    let (file, problem) = &report.failed[0];
    assert!(file.ends_with("lone/food_nutrient.csv"), "{file}");
    assert!(
        problem.contains("needs food.csv beside this file"),
        "{problem}"
    );
}

const FOODS: &str = "\
food_id,name,brand,energy_kcal,protein_g,carbs_g,fat_g,fiber_g,sugars_g,sodium_mg
F001,Rolled oats,,379,13.2,67.7,6.5,10.1,1.0,6
F002,Whole milk,Dairy Co,61,3.2,4.8,3.3,,4.8,43
F003,Bad bread,,247,13,41.3,3.4,7,5.6,-450
";

const MEALS: &str = "\
subject,time,meal,food_id,quantity_g,quantity_g_unit
S1,2026-03-01T07:30:00Z,breakfast,F001,50,g
S1,2026-03-01T07:30:00Z,breakfast,F002,0.2,kg
S1,2026-03-01T12:30:00Z,lunch,F999,100,
";

/// The same meals with an energy logged for the oats.
const MEALS_GIVEN: &str = "\
subject,time,meal,food_id,quantity_g,quantity_g_unit,energy_kcal
S1,2026-03-01T07:30:00Z,breakfast,F001,50,g,150
S1,2026-03-01T07:30:00Z,breakfast,F002,0.2,kg,
S1,2026-03-01T12:30:00Z,lunch,F999,100,,
";

#[tokio::test]
async fn meals_of_the_batch_are_enriched_from_its_foods() {
    let h = Harness::new().await;
    let dir = h.dir.path().join("batch");
    // The foods load first although `meals` files come first in name order; the second
    // meals file is written last, so its rows win.
    h.file("batch/meals.csv", MEALS);
    h.file("batch/meals_given.csv", MEALS_GIVEN);
    h.file("batch/z/foods.csv", FOODS);

    let report = h.ingest(std::slice::from_ref(&dir)).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        counts(&report, "foods"),
        (2, 0, 1),
        "the file stem is the source"
    );
    let meals = h
        .numbers(
            "SELECT quantity_g, energy_kcal, protein_g, fiber_g, sodium_mg FROM meals \
             ORDER BY time, food_id",
        )
        .await;
    // The given energy wins.
    assert_eq!(
        meals[0],
        [Some(50.0), Some(150.0), Some(6.6), Some(5.05), Some(3.0)]
    );
    assert_eq!(
        meals[1],
        [Some(200.0), Some(122.0), Some(6.4), None, Some(86.0)],
        "quantity in canonical grams; the food's missing fiber stays missing"
    );
    assert_eq!(
        meals[2],
        [Some(100.0), None, None, None, None],
        "an unknown food leaves the row without nutrients"
    );

    let catalog = h.engine.catalog();
    let reports = catalog
        .ingest()
        .quality_reports(report.batch)
        .await
        .unwrap();
    let rule = |column: &str, rule: &str| {
        reports
            .iter()
            .find(|r| r.column == column && r.rule == rule)
            .unwrap_or_else(|| panic!("no report for {column} {rule}: {reports:?}"))
    };
    assert_eq!(rule("*", "enrichment").rows_corrected, 4);
    assert_eq!(rule("*", "enrichment").rows_checked, 6);
    assert_eq!(rule("food_id", "food").rows_flagged, 2);
    assert_eq!(
        rule("energy_kcal", "completeness").completeness,
        Some(4.0 / 6.0)
    );

    let quarantined = catalog
        .ingest()
        .quarantined(report.batch, 10)
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 1);
    let bad = &quarantined[0];
    assert!(bad.file.ends_with("batch/z/foods.csv"), "{}", bad.file);
    assert_eq!(
        (
            bad.stream,
            bad.record,
            bad.column.as_deref(),
            bad.rule.as_str()
        ),
        (None, Some(4), Some("sodium_mg"), "range")
    );

    let before = h.text("SELECT * FROM meals ORDER BY time, food_id").await;
    let foods_before = h
        .text("SELECT * FROM reference.foods ORDER BY food_id")
        .await;
    h.ingest(&[dir]).await;
    assert_eq!(
        h.text("SELECT * FROM meals ORDER BY time, food_id").await,
        before
    );
    assert_eq!(
        h.text("SELECT * FROM reference.foods ORDER BY food_id")
            .await,
        foods_before
    );
}

#[tokio::test]
async fn simulated_meals_get_their_nutrients_from_simulated_foods() {
    let h = Harness::new().await;
    let out = h.dir.path().join("sim");
    let summary = simulate(
        &SimulationOptions {
            subjects: 2,
            days: 2,
            ..SimulationOptions::default()
        },
        &out,
    )
    .unwrap();
    let report = h.ingest(&[out]).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        counts(&report, "foods"),
        (summary.rows["foods"], 0, 0),
        "the simulator's foods.csv loads as it is"
    );
    let meals = h.count("SELECT count(*) FROM meals").await;
    assert_eq!(meals as u64, summary.rows["meals"]);
    assert_eq!(
        h.count("SELECT count(*) FROM meals WHERE energy_kcal IS NULL OR sodium_mg IS NULL")
            .await,
        0
    );
    assert_eq!(
        h.count(
            "SELECT count(*) FROM meals m JOIN reference.foods f ON m.food_id = f.food_id \
             WHERE abs(m.protein_g - f.protein_g * m.quantity_g / 100) < 1e-9"
        )
        .await,
        meals,
        "every meal's protein is its food's × quantity"
    );
    let stats = &report.streams["meals"];
    assert_eq!(
        stats.rules[&("*".to_owned(), "enrichment")].corrected,
        summary.rows["meals"]
    );
}
