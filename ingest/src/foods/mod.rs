//! Food-composition tables into the `foods` reference table (`reference.foods` in SQL), and
//! meals enriched from it.
//!
//! A batch loads its food tables first, then its other files, so that the meals of the same
//! batch find their foods. Each reader turns a file into [`catalog::Food`]s (nutrients per
//! 100 g, missing where the source says nothing — never zero) and hands them on in chunks,
//! which the pipeline upserts by id: loading a table again changes nothing.
//!
//! | format | file | id | source | name |
//! |---|---|---|---|---|
//! | `foods` | `foods.csv` / `foods.ndjson` (the simulator's): `food_id` (or `id`), `name`, `brand`?, `source`?, `energy_kcal`, `protein_g`, `carbs_g`, `fat_g`, `fiber_g`, `sugars_g`, `sodium_mg` | as given | `source` column, `--source`, else the file stem | `name` |
//! | `open-food-facts` | `en.openfoodfacts.org.products.csv` (tab-separated, streamed) | `off:<code>` | `open_food_facts` | `product_name`, else `product_name_en`, `generic_name` |
//! | `usda-fdc` | `food.csv` + `food_nutrient.csv` (+ `nutrient.csv`) of one directory or archive | `fdc:<fdc_id>` | `usda_fdc` | `description` |
//! | `ciqual` | the CIQUAL 2020 table as CSV (`;` or tab, UTF-8 or Windows-1252) | `ciqual:<alim_code>` | `ciqual` | `alim_nom_fr`, else `alim_nom_eng` |
//!
//! Nutrients by source:
//!
//! | nutrient | Open Food Facts | FoodData Central (nutrient id) | CIQUAL (header) |
//! |---|---|---|---|
//! | `energy_kcal` | `energy-kcal_100g`, else `energy-kj_100g` ÷ 4.184, else `energy_100g` (kJ) ÷ 4.184 | 1008, else 2047, 2048 (Atwater), else 1062 (kJ) ÷ 4.184 | `Energie, Règlement UE N° 1169/2011 (kcal/100 g)`, else its kJ ÷ 4.184 |
//! | `protein_g` | `proteins_100g` | 1003 | `Protéines, N x facteur de Jones`, else `Protéines, N x 6.25` |
//! | `carbs_g` | `carbohydrates_100g` | 1005 (by difference), else 1050 (by summation) | `Glucides` |
//! | `fat_g` | `fat_100g` | 1004 | `Lipides` |
//! | `fiber_g` | `fiber_100g` | 1079 | `Fibres alimentaires` |
//! | `sugars_g` | `sugars_100g` | 2000, else 1063 | `Sucres` |
//! | `sodium_mg` | `sodium_100g` × 1000, else `salt_100g` ÷ 2.5 × 1000 | 1093 | `Sodium (mg/100 g)` |
//!
//! Decisions, each counted in the report's notes per source:
//! - Open Food Facts: where `energy-kcal_100g` and the kJ value ÷ 4.184 differ by more than
//!   15 %, one of them was typed wrong; the one nearer the Atwater energy of the product's
//!   protein, carbohydrates and fat (4/4/9 kcal/g, fiber 2) wins, the kcal value when those
//!   are not all given (`energy_kcal_disagrees_with_kj`, `energy_kcal_from_kj_by_atwater`).
//! - Open Food Facts: rows without a name or without any nutrient are *skipped*, counted but
//!   not quarantined one by one (the export has millions of them). FoodData Central and CIQUAL
//!   skip foods without any nutrient, and FoodData Central the lab records that are not foods
//!   (`sample_food`, `sub_sample_food`, `market_acquisition`, `agricultural_acquisition`,
//!   `acquisition_sample`). A food without a name there, or without an id anywhere, is rejected.
//! - CIQUAL: `traces` (present below the quantification limit) is stored as 0 — it is a
//!   measurement, unlike `-` and empty cells, which stay missing; `< 0,5` is stored as half
//!   its bound (the middle-bound estimate of values below a limit), 0.25.
//! - Implausible values reject the food with the field and why: negative, more than 100 g of
//!   a nutrient (sodium included) in 100 g, more than 900 kcal per 100 g.
//!
//! Rejected foods go to the quarantine under the pseudo-stream [`FOODS`] (stream id `NULL`)
//! with their file, record number (the header is record 1) and field.
//!
//! A USDA FoodData Central dataset is the `food.csv` and `food_nutrient.csv` (and, to check
//! the units of the nutrient ids, `nutrient.csv`) of one directory or one folder of a zip
//! archive; its other tables there (`branded_food.csv`, `food_portion.csv`, …) are not read.
//! `food_nutrient.csv` is streamed into a map from food to the seven nutrients (about 70
//! bytes a food), then `food.csv` is streamed against it.
//!
//! Food files are upserted chunk by chunk as they are read (Open Food Facts does not fit in
//! memory), so a file that breaks half-way leaves the foods before the break loaded; loading
//! it again completes it.
//!
//! [`enrich`]: after cleaning, a meals row that lacks nutrients gets them from its food ×
//! `quantity_g` / 100; values the log gives win, and a nutrient the food lacks stays missing.

mod ciqual;
mod enrich;
mod fdc;
mod off;
mod table;
mod text;

use std::{collections::BTreeMap, sync::Arc};

use catalog::Food;

pub(crate) use enrich::{Enrichment, wanted as food_ids_to_enrich};

use crate::{
    Result,
    clean::Rejection,
    formats::{self, Format, Input},
};

/// The pseudo-stream food files are reported and quarantined under.
pub(crate) const FOODS: &str = "foods";
/// Foods (or rejections) per chunk handed to the pipeline.
const CHUNK_FOODS: usize = 10_000;
/// Kilojoules in a kilocalorie.
const KJ_PER_KCAL: f64 = 4.184;

// Positions of the nutrients in `catalog::Nutrients::values()`.
const ENERGY: usize = 0;
const PROTEIN: usize = 1;
const CARBS: usize = 2;
const FAT: usize = 3;
const FIBER: usize = 4;
const SUGARS: usize = 5;
const SODIUM: usize = 6;

/// What the food files of one source gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoodCounts {
    /// Foods written to `reference.foods` (an id loaded twice counts twice).
    pub loaded: u64,
    /// Rows that are not usable foods of an open database, counted but not quarantined: see
    /// the notes for why.
    pub skipped: u64,
    /// Rows rejected into the quarantine.
    pub rejected: u64,
    /// What the readers decided or derived, by kind (`energy_kcal_from_kj`,
    /// `sodium_from_salt`, `traces_as_zero`, `skipped_no_name`, …), in rows.
    pub notes: BTreeMap<&'static str, u64>,
}

impl FoodCounts {
    pub fn merge(&mut self, other: &FoodCounts) {
        self.loaded += other.loaded;
        self.skipped += other.skipped;
        self.rejected += other.rejected;
        for (kind, count) in &other.notes {
            *self.notes.entry(kind).or_default() += count;
        }
    }
}

/// A chunk of what a food reader found.
#[derive(Debug, Default)]
pub(crate) struct FoodChunk {
    /// The source the counts are reported under.
    pub source: String,
    pub foods: Vec<Food>,
    pub rejections: Vec<Rejection>,
    pub counts: FoodCounts,
}

/// Where food readers hand their chunks.
pub(crate) type FoodSink<'a> = dyn FnMut(FoodChunk) -> Result<()> + 'a;

/// Gathers a reader's foods, rejections and counts, handing them on in chunks.
pub(crate) struct Collector<'s, 'a> {
    file: Arc<str>,
    chunk: FoodChunk,
    sink: &'s mut FoodSink<'a>,
}

impl<'s, 'a> Collector<'s, 'a> {
    fn new(file: Arc<str>, source: &str, sink: &'s mut FoodSink<'a>) -> Self {
        Collector {
            file,
            chunk: FoodChunk {
                source: source.to_owned(),
                ..FoodChunk::default()
            },
            sink,
        }
    }

    fn food(&mut self, food: Food) -> Result<()> {
        self.chunk.counts.loaded += 1;
        self.chunk.foods.push(food);
        self.flush_when_full()
    }

    /// Rejects the row at `record`; `column` names the source's field.
    fn reject(
        &mut self,
        record: u64,
        column: &str,
        rule: &'static str,
        reason: String,
        value: Option<&str>,
    ) -> Result<()> {
        self.chunk.counts.rejected += 1;
        self.chunk.rejections.push(Rejection {
            stream: FOODS.into(),
            file: self.file.clone(),
            record,
            column: Some(column.to_owned()),
            rule,
            reason,
            value: value.map(|v| v.chars().take(200).collect()),
        });
        self.flush_when_full()
    }

    fn skip(&mut self, why: &'static str) {
        self.chunk.counts.skipped += 1;
        self.note(why);
    }

    fn note(&mut self, kind: &'static str) {
        self.note_many(kind, 1);
    }

    fn note_many(&mut self, kind: &'static str, count: u64) {
        if count > 0 {
            *self.chunk.counts.notes.entry(kind).or_default() += count;
        }
    }

    fn flush_when_full(&mut self) -> Result<()> {
        if self.chunk.foods.len() >= CHUNK_FOODS || self.chunk.rejections.len() >= CHUNK_FOODS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let next = FoodChunk {
            source: self.chunk.source.clone(),
            ..FoodChunk::default()
        };
        (self.sink)(std::mem::replace(&mut self.chunk, next))
    }

    /// Hands on the last chunk, even empty: the report then shows the file's source.
    fn finish(mut self) -> Result<()> {
        self.flush()
    }

    /// Rejects a food whose id the catalog would refuse; answers whether it is usable.
    fn usable_id(&mut self, record: u64, column: &str, id: &str) -> Result<bool> {
        let chars = id.chars().count();
        if chars <= 200 {
            return Ok(true);
        }
        self.reject(
            record,
            column,
            "range",
            format!("the id has {chars} characters, more than the 200 allowed"),
            Some(id),
        )?;
        Ok(false)
    }
}

/// The first nutrient (by position in `Nutrients::values()`) that 100 g of a food cannot hold,
/// and why.
fn implausible(values: &[Option<f64>; 7]) -> Option<(usize, String)> {
    for (slot, value) in values.iter().enumerate() {
        let Some(value) = *value else { continue };
        let (unit, max) = match slot {
            ENERGY => ("kcal", 900.0),
            SODIUM => ("mg", 100_000.0),
            _ => ("g", 100.0),
        };
        if !value.is_finite() || value < 0.0 {
            return Some((slot, format!("{value} {unit} per 100 g is not a quantity")));
        }
        if value > max {
            return Some((
                slot,
                format!("{value} {unit} per 100 g is more than the {max} {unit} possible"),
            ));
        }
    }
    None
}

/// Whether a file name (stem) names the project's own food table.
fn is_foods_stem(stem: &str) -> bool {
    stem == FOODS
        || stem
            .strip_prefix(FOODS)
            .is_some_and(|rest| rest.starts_with(['-', '_']))
}

/// The food format a file's first bytes (or, for the project's table, its name) show.
pub(crate) fn sniff(stem: &str, head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}');
    let first = text.lines().next().unwrap_or_default();
    if first.starts_with("code\t") && first.contains("\tproduct_name") {
        return Some(Format::OpenFoodFacts);
    }
    if fdc::sniff(first) {
        return Some(Format::UsdaFdc);
    }
    if first.contains("alim_code") && first.contains("alim_nom") {
        return Some(Format::Ciqual);
    }
    is_foods_stem(stem).then_some(Format::Foods)
}

/// One food table to load: a file, or the files of a FoodData Central dataset.
pub(crate) enum FoodLoad {
    Table { input: Input, format: Format },
    Fdc(fdc::Dataset),
}

impl FoodLoad {
    /// The files it reads or owns, as progress names them.
    pub(crate) fn files(&self) -> Vec<Arc<str>> {
        match self {
            FoodLoad::Table { input, .. } => vec![input.name.clone()],
            FoodLoad::Fdc(dataset) => dataset.files(),
        }
    }

    /// Reads it into chunks of foods; `source` names the source of the project's own tables.
    pub(crate) fn read(self, source: Option<&str>, sink: &mut FoodSink) -> Result<()> {
        match self {
            FoodLoad::Table { input, format } => match format {
                Format::OpenFoodFacts => off::read(input, sink),
                Format::Ciqual => ciqual::read(input, sink),
                _ => table::read(input, source, sink),
            },
            FoodLoad::Fdc(dataset) => fdc::read(dataset, sink),
        }
    }
}

/// A batch's files sorted out: the food tables to load first, the other files, and the files
/// that cannot be loaded (with why).
pub(crate) struct Plan {
    pub loads: Vec<FoodLoad>,
    pub others: Vec<Input>,
    pub failed: Vec<(String, String)>,
}

/// Sorts a batch's files: food tables by `given` format, else by what [`formats::detect`]
/// sees (a `foods` file given as CSV or NDJSON is still the food table); FoodData Central
/// files are grouped by directory into datasets.
pub(crate) fn plan(inputs: Vec<Input>, given: Format) -> Plan {
    let mut loads = Vec::new();
    let mut fdc_files = Vec::new();
    let mut others = Vec::new();
    for input in inputs {
        let format = match given {
            Format::Auto => formats::detect(&input).ok().filter(|f| f.is_food()),
            Format::Csv | Format::Ndjson if is_foods_stem(&input.stem()) => Some(Format::Foods),
            given => Some(given).filter(|f| f.is_food()),
        };
        match format {
            Some(Format::UsdaFdc) => fdc_files.push(input),
            Some(format) => loads.push(FoodLoad::Table { input, format }),
            None => others.push(input),
        }
    }
    let (datasets, others, failed) = fdc::group(fdc_files, others);
    loads.extend(datasets.into_iter().map(FoodLoad::Fdc));
    Plan {
        loads,
        others,
        failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foods_files_are_recognized_by_content_then_name() {
        let cases: [(&str, &[u8], Option<Format>); 8] = [
            (
                "en",
                b"code\turl\tcreator\tcreated_t\tproduct_name\tbrands\n",
                Some(Format::OpenFoodFacts),
            ),
            (
                "food",
                b"\"fdc_id\",\"data_type\",\"description\",\"food_category_id\"\n",
                Some(Format::UsdaFdc),
            ),
            (
                "food_nutrient",
                b"\"id\",\"fdc_id\",\"nutrient_id\",\"amount\",\"data_points\"\n",
                Some(Format::UsdaFdc),
            ),
            (
                "table ciqual",
                b"alim_grp_code;alim_ssgrp_code;alim_code;alim_nom_fr;Eau (g/100 g)\n",
                Some(Format::Ciqual),
            ),
            ("foods", b"food_id,name,energy_kcal\n", Some(Format::Foods)),
            ("foods-2026", b"id,name\n", Some(Format::Foods)),
            ("foodstuff", b"id,name\n", None),
            ("heart_rate", b"subject,time,bpm\n", None),
        ];
        for (stem, head, expected) in cases {
            assert_eq!(sniff(stem, head), expected, "{stem}");
        }
        assert_eq!(
            formats::detect(&Input::bytes(
                "en.openfoodfacts.org.products.csv",
                b"code\tproduct_name\n1\tx\n".to_vec()
            ))
            .unwrap(),
            Format::OpenFoodFacts,
            "content wins over the .csv extension"
        );
    }

    #[test]
    fn foods_implausible_values_are_named() {
        let mut values = [
            Some(100.0),
            Some(10.0),
            None,
            Some(5.0),
            None,
            None,
            Some(20.0),
        ];
        assert_eq!(implausible(&values), None);
        values[FAT] = Some(100.5);
        assert_eq!(implausible(&values).map(|(slot, _)| slot), Some(FAT));
        values[FAT] = Some(-0.1);
        let (slot, reason) = implausible(&values).unwrap();
        assert_eq!(slot, FAT);
        assert!(reason.contains("not a quantity"), "{reason}");
        values[FAT] = None;
        values[ENERGY] = Some(901.0);
        let (slot, reason) = implausible(&values).unwrap();
        assert_eq!(slot, ENERGY);
        assert!(reason.contains("more than the 900 kcal"), "{reason}");
        values[ENERGY] = None;
        values[SODIUM] = Some(39_300.0);
        assert_eq!(implausible(&values), None, "pure salt");
        values[SODIUM] = Some(100_001.0);
        assert_eq!(implausible(&values).map(|(slot, _)| slot), Some(SODIUM));
    }

    #[test]
    fn foods_plan_sorts_food_tables_from_streams() {
        let input = |name: &str, content: &str| Input::bytes(name, content.as_bytes().to_vec());
        let plan = plan(
            vec![
                input("d/meals.csv", "subject,time,meal,food_id,quantity_g\n"),
                input("d/foods.csv", "food_id,name\nF1,Oats\n"),
                input("d/ciqual.csv", "alim_code;alim_nom_fr\n1;Pain\n"),
            ],
            Format::Auto,
        );
        let loads: Vec<Vec<Arc<str>>> = plan.loads.iter().map(FoodLoad::files).collect();
        assert_eq!(
            loads,
            [
                vec![Arc::from("d/foods.csv")],
                vec![Arc::from("d/ciqual.csv")]
            ]
        );
        assert_eq!(plan.others.len(), 1);
        assert_eq!(&*plan.others[0].name, "d/meals.csv");
        assert!(plan.failed.is_empty());

        let given = super::plan(vec![input("foods.csv", "food_id,name\n")], Format::Csv);
        assert_eq!(
            given.loads.len(),
            1,
            "a foods file given as CSV is a food table"
        );
        let streams = super::plan(vec![input("x.csv", "food_id,name\n")], Format::Csv);
        assert_eq!(streams.others.len(), 1);
    }
}
