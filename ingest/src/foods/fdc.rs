//! USDA FoodData Central, CSV downloads (Full Download, Foundation, SR Legacy, FNDDS,
//! Branded): `food.csv` (`fdc_id`, `data_type`, `description`, …), `food_nutrient.csv`
//! (`id`, `fdc_id`, `nutrient_id`, `amount`, …; amounts per 100 g) and `nutrient.csv` (`id`,
//! `name`, `unit_name`, …), quoted RFC 4180 CSV. The files of one directory (or one folder of
//! a zip archive) form a dataset; `food.csv` and `food_nutrient.csv` are required,
//! `nutrient.csv`, when there, checks that the nutrient ids mean what this reader expects.
//!
//! `food_nutrient.csv` has millions of rows: it is streamed, keeping per food only the
//! nutrients needed (the best-ranked source of each), then `food.csv` is streamed against
//! that map.

use std::{
    collections::{BTreeMap, HashMap},
    io::BufReader,
    sync::Arc,
};

use arrow::array::StringArray;
use catalog::{Food, Nutrients};

use super::{
    CARBS, Collector, ENERGY, FAT, FIBER, FoodSink, KJ_PER_KCAL, PROTEIN, SODIUM, SUGARS,
    implausible,
    text::{TextCsv, cell, strings},
};
use crate::{Error, Result, formats::Input};

const SOURCE: &str = "usda_fdc";
const FOOD: &str = "food";
const FOOD_NUTRIENT: &str = "food_nutrient";
const NUTRIENT: &str = "nutrient";

/// The other tables of a FoodData Central download: part of a dataset, not read.
const OTHER_TABLES: [&str; 34] = [
    "acquisition_samples",
    "acquisition_sample",
    "agricultural_acquisition",
    "agricultural_samples",
    "all_downloaded_table_record_counts",
    "branded_food",
    "fndds_derivation",
    "fndds_ingredient_nutrient_value",
    "food_attribute",
    "food_attribute_type",
    "food_calorie_conversion_factor",
    "food_category",
    "food_component",
    "food_nutrient_conversion_factor",
    "food_nutrient_derivation",
    "food_nutrient_source",
    "food_portion",
    "food_protein_conversion_factor",
    "food_update_log_entry",
    "foundation_food",
    "input_food",
    "lab_method",
    "lab_method_code",
    "lab_method_nutrient",
    "market_acquisition",
    "measure_unit",
    "microbe",
    "nutrient_incoming_name",
    "retention_factor",
    "sample_food",
    "sr_legacy_food",
    "sub_sample_food",
    "sub_sample_result",
    "survey_fndds_food",
];
/// `data_type`s of lab records (samples, acquisitions), which are not foods people eat.
const NOT_FOODS: [&str; 5] = [
    "sample_food",
    "sub_sample_food",
    "market_acquisition",
    "agricultural_acquisition",
    "acquisition_sample",
];

/// A nutrient id used, the nutrient it feeds, its rank there (lower wins), the factor to the
/// nutrient's unit, and the unit `nutrient.csv` must give it.
struct Source {
    id: u32,
    slot: usize,
    rank: u8,
    factor: f64,
    unit: &'static str,
    /// What the report notes when this source fills its nutrient.
    note: Option<&'static str>,
}

const fn source(id: u32, slot: usize, rank: u8, unit: &'static str) -> Source {
    Source {
        id,
        slot,
        rank,
        factor: 1.0,
        unit,
        note: None,
    }
}

const SOURCES: [Source; 12] = [
    source(1008, ENERGY, 0, "KCAL"),
    Source {
        note: Some("energy_kcal_from_atwater_general"),
        ..source(2047, ENERGY, 1, "KCAL")
    },
    Source {
        note: Some("energy_kcal_from_atwater_specific"),
        ..source(2048, ENERGY, 2, "KCAL")
    },
    Source {
        factor: 1.0 / KJ_PER_KCAL,
        note: Some("energy_kcal_from_kj"),
        ..source(1062, ENERGY, 3, "KJ")
    },
    source(1003, PROTEIN, 0, "G"),
    source(1005, CARBS, 0, "G"),
    Source {
        note: Some("carbs_by_summation"),
        ..source(1050, CARBS, 1, "G")
    },
    source(1004, FAT, 0, "G"),
    source(1079, FIBER, 0, "G"),
    source(2000, SUGARS, 0, "G"),
    Source {
        note: Some("sugars_from_nlea"),
        ..source(1063, SUGARS, 1, "G")
    },
    source(1093, SODIUM, 0, "MG"),
];

fn source_of(nutrient_id: u32) -> Option<(usize, &'static Source)> {
    SOURCES
        .iter()
        .enumerate()
        .find(|(_, s)| s.id == nutrient_id)
}

/// Whether a header line (quotes dropped) is one of the three tables read.
pub(super) fn sniff(first_line: &str) -> bool {
    let unquoted = first_line.replace('"', "");
    [
        "fdc_id,data_type,description",
        "id,fdc_id,nutrient_id,amount",
        "id,name,unit_name,nutrient_nbr",
    ]
    .iter()
    .any(|header| unquoted.starts_with(header))
}

/// The files of one dataset.
pub(crate) struct Dataset {
    food: Input,
    food_nutrient: Input,
    nutrient: Option<Input>,
    /// The dataset's other tables, not read.
    others: Vec<Arc<str>>,
}

impl Dataset {
    pub(super) fn files(&self) -> Vec<Arc<str>> {
        let mut files = vec![self.food.name.clone(), self.food_nutrient.name.clone()];
        files.extend(self.nutrient.iter().map(|n| n.name.clone()));
        files.extend(self.others.iter().cloned());
        files
    }
}

/// The directory (or archive folder) of a file, as its name says.
fn folder(name: &str) -> &str {
    name.rfind(['/', '\\', '!']).map_or("", |at| &name[..at])
}

/// Groups FoodData Central files by folder into datasets; their folders' other FDC tables
/// among `others` join them, unread. Files that make no dataset fail, naming what is missing.
pub(super) fn group(
    files: Vec<Input>,
    others: Vec<Input>,
) -> (Vec<Dataset>, Vec<Input>, Vec<(String, String)>) {
    let mut folders: BTreeMap<String, Vec<Input>> = BTreeMap::new();
    for input in files {
        folders
            .entry(folder(&input.name).to_owned())
            .or_default()
            .push(input);
    }
    let mut datasets = Vec::new();
    let mut failed = Vec::new();
    let mut complete = Vec::new();
    for (name, inputs) in folders {
        let mut tables: HashMap<String, Input> = HashMap::new();
        let mut unread = Vec::new();
        for input in inputs {
            let stem = input.stem();
            match stem.as_str() {
                FOOD | FOOD_NUTRIENT | NUTRIENT => {
                    tables.insert(stem, input);
                }
                other if OTHER_TABLES.contains(&other) => unread.push(input.name.clone()),
                _ => failed.push((
                    input.name.to_string(),
                    "not a table of USDA FoodData Central (food.csv, food_nutrient.csv, nutrient.csv, …)".to_owned(),
                )),
            }
        }
        match (tables.remove(FOOD), tables.remove(FOOD_NUTRIENT)) {
            (Some(food), Some(food_nutrient)) => {
                complete.push(name);
                datasets.push(Dataset {
                    food,
                    food_nutrient,
                    nutrient: tables.remove(NUTRIENT),
                    others: unread,
                });
            }
            (food, food_nutrient) => {
                let missing = match (&food, &food_nutrient) {
                    (None, Some(_)) => "food.csv",
                    (Some(_), None) => "food_nutrient.csv",
                    _ => "food.csv and food_nutrient.csv",
                };
                for input in food
                    .into_iter()
                    .chain(food_nutrient)
                    .chain(tables.into_values())
                {
                    failed.push((
                        input.name.to_string(),
                        format!(
                            "a USDA FoodData Central dataset needs {missing} beside this file (in the same directory or archive folder)"
                        ),
                    ));
                }
            }
        }
    }
    let mut rest = Vec::new();
    for input in others {
        let owner = complete
            .iter()
            .position(|f| f == folder(&input.name))
            .filter(|_| OTHER_TABLES.contains(&input.stem().as_str()));
        match owner {
            Some(index) => datasets[index].others.push(input.name.clone()),
            None => rest.push(input),
        }
    }
    (datasets, rest, failed)
}

/// The nutrients found for a food: per nutrient, the value of its best-ranked source.
#[derive(Clone, Copy)]
struct Amounts {
    values: [f64; 7],
    /// The index in `SOURCES` of each value's source; `u8::MAX` where none.
    sources: [u8; 7],
}

impl Default for Amounts {
    fn default() -> Self {
        Amounts {
            values: [f64::NAN; 7],
            sources: [u8::MAX; 7],
        }
    }
}

impl Amounts {
    fn offer(&mut self, index: usize, amount: f64) {
        let source = &SOURCES[index];
        let current = self.sources[source.slot];
        if current == u8::MAX || SOURCES[usize::from(current)].rank > source.rank {
            self.values[source.slot] = amount * source.factor;
            self.sources[source.slot] = index as u8;
        }
    }

    fn source(&self, slot: usize) -> Option<&'static Source> {
        SOURCES.get(usize::from(self.sources[slot]))
    }
}

pub(super) fn read(dataset: Dataset, sink: &mut FoodSink) -> Result<()> {
    if let Some(nutrient) = &dataset.nutrient {
        check_units(nutrient)?;
    }
    let mut collector = Collector::new(dataset.food.name.clone(), SOURCE, sink);
    let (mut amounts, problems) = food_nutrients(&dataset.food_nutrient, &mut collector)?;
    foods(&dataset.food, &mut amounts, &problems, &mut collector)?;
    collector.note_many("nutrients_without_food", amounts.len() as u64);
    collector.note_many("tables_not_read", dataset.others.len() as u64);
    collector.finish()
}

type FileCsv = TextCsv<BufReader<Box<dyn crate::formats::ReadSeek>>>;

fn open_csv(input: &Input) -> Result<FileCsv> {
    TextCsv::open(
        BufReader::with_capacity(1 << 20, input.open()?),
        &input.name,
        Some(b','),
    )
}

fn required(csv: &FileCsv, input: &Input, names: &[&str]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|name| {
            csv.column(&[name]).ok_or_else(|| {
                Error::file(
                    &input.name,
                    format!(
                        "a FoodData Central {} needs a '{name}' column; its header is {}",
                        input.stem(),
                        csv.header.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// Refuses a `nutrient.csv` whose units say that the ids used mean something else.
fn check_units(input: &Input) -> Result<()> {
    let mut csv = open_csv(input)?;
    let columns = required(&csv, input, &["id", "name", "unit_name"])?;
    while let Some((first, batch)) = csv.next_batch()? {
        let [ids, names, units] = [0, 1, 2].map(|i| Some(strings(&batch, columns[i])));
        for row in 0..batch.num_rows() {
            let Some((_, source)) = cell(ids, row)
                .and_then(|id| id.parse().ok())
                .and_then(source_of)
            else {
                continue;
            };
            let unit = cell(units, row).unwrap_or_default();
            if !unit.eq_ignore_ascii_case(source.unit) {
                return Err(Error::file(
                    &input.name,
                    format!(
                        "record {}: nutrient {} ({}) is in '{unit}', not {}: this release numbers nutrients differently",
                        first + row as u64,
                        source.id,
                        cell(names, row).unwrap_or_default(),
                        source.unit
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Per food, the nutrients needed; and the foods with an unreadable amount, with why.
fn food_nutrients(
    input: &Input,
    collector: &mut Collector,
) -> Result<(HashMap<u64, Amounts>, HashMap<u64, String>)> {
    let mut csv = open_csv(input)?;
    let columns = required(&csv, input, &["fdc_id", "nutrient_id", "amount"])?;
    let mut amounts: HashMap<u64, Amounts> = HashMap::new();
    let mut problems = HashMap::new();
    let mut unreadable = 0;
    while let Some((first, batch)) = csv.next_batch()? {
        let [foods, nutrients, values]: [&StringArray; 3] =
            [0, 1, 2].map(|i| strings(&batch, columns[i]));
        for row in 0..batch.num_rows() {
            let Some((index, _)) = cell(Some(nutrients), row)
                .and_then(|id| id.parse().ok())
                .and_then(source_of)
            else {
                continue;
            };
            let Some(fdc_id) = cell(Some(foods), row).and_then(|id| id.parse::<u64>().ok()) else {
                unreadable += 1;
                continue;
            };
            let Some(raw) = cell(Some(values), row) else {
                continue;
            };
            match raw.parse::<f64>() {
                Ok(amount) if amount.is_finite() => {
                    amounts.entry(fdc_id).or_default().offer(index, amount);
                }
                _ => {
                    problems.entry(fdc_id).or_insert_with(|| {
                        format!(
                            "{} record {}: amount '{raw}' of nutrient {} is not a number",
                            input.name,
                            first + row as u64,
                            SOURCES[index].id
                        )
                    });
                }
            }
        }
    }
    collector.note_many("food_nutrient_rows_without_food_id", unreadable);
    Ok((amounts, problems))
}

fn foods(
    input: &Input,
    amounts: &mut HashMap<u64, Amounts>,
    problems: &HashMap<u64, String>,
    collector: &mut Collector,
) -> Result<()> {
    let mut csv = open_csv(input)?;
    let columns = required(&csv, input, &["fdc_id", "description"])?;
    let data_type = csv.column(&["data_type"]);
    while let Some((first, batch)) = csv.next_batch()? {
        let ids = strings(&batch, columns[0]);
        let descriptions = strings(&batch, columns[1]);
        let types = data_type.map(|c| strings(&batch, c));
        for row in 0..batch.num_rows() {
            let record = first + row as u64;
            let raw_id = cell(Some(ids), row);
            let Some(fdc_id) = raw_id.and_then(|id| id.parse::<u64>().ok()) else {
                collector.reject(
                    record,
                    "fdc_id",
                    "type",
                    format!("fdc_id '{}' is not a number", raw_id.unwrap_or_default()),
                    raw_id,
                )?;
                continue;
            };
            let found = amounts.remove(&fdc_id);
            if cell(types, row).is_some_and(|t| NOT_FOODS.contains(&t)) {
                collector.skip("skipped_lab_records");
                continue;
            }
            let Some(name) = cell(Some(descriptions), row) else {
                collector.reject(
                    record,
                    "description",
                    "required",
                    format!("food {fdc_id} has no description"),
                    None,
                )?;
                continue;
            };
            if let Some(problem) = problems.get(&fdc_id) {
                collector.reject(record, "amount", "type", problem.clone(), None)?;
                continue;
            }
            let Some(found) = found else {
                collector.skip("skipped_no_nutrient");
                continue;
            };
            let values = found.values.map(|v| (!v.is_nan()).then_some(v));
            if let Some((slot, reason)) = implausible(&values) {
                let nutrient = found.source(slot).map_or(0, |s| s.id);
                let value = values[slot].map(|v| v.to_string());
                collector.reject(
                    record,
                    &format!("nutrient {nutrient}"),
                    "range",
                    format!("{}: {reason}", Nutrients::COLUMNS[slot]),
                    value.as_deref(),
                )?;
                continue;
            }
            for slot in 0..7 {
                if let Some(note) = found.source(slot).and_then(|s| s.note) {
                    collector.note(note);
                }
            }
            collector.food(Food {
                id: format!("fdc:{fdc_id}"),
                source: SOURCE.to_owned(),
                name: name.to_owned(),
                brand: None,
                per_100g: Nutrients::from_values(values),
            })?;
        }
    }
    Ok(())
}

/// A dataset of files in memory, for tests.
#[cfg(test)]
pub(crate) fn dataset(files: &[(&str, &str)]) -> Dataset {
    let inputs: Vec<Input> = files
        .iter()
        .map(|(name, text)| Input::bytes(name, text.as_bytes().to_vec()))
        .collect();
    let (mut datasets, _, failed) = group(inputs, Vec::new());
    assert!(failed.is_empty(), "{failed:?}");
    datasets.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foods::FoodChunk;

    pub(crate) const FOOD_CSV: &str = "\
\"fdc_id\",\"data_type\",\"description\",\"food_category_id\",\"publication_date\"
\"167512\",\"sr_legacy_food\",\"Pillsbury Golden Layer Buttermilk Biscuits, Artificial Flavor, refrigerated dough\",\"18\",\"2019-04-01\"
\"2346404\",\"foundation_food\",\"Carrots, raw\",\"11\",\"2022-10-28\"
\"2346405\",\"sub_sample_food\",\"Carrots, raw, sample 1\",\"11\",\"2022-10-28\"
\"2346406\",\"foundation_food\",\"Kale, \"\"curly\"\"\",\"11\",\"2022-10-28\"
\"2346407\",\"foundation_food\",\"Salt, table\",\"2\",\"2022-10-28\"
\"2346408\",\"foundation_food\",\"Mystery\",\"2\",\"2022-10-28\"
";

    pub(crate) const FOOD_NUTRIENT_CSV: &str = "\
\"id\",\"fdc_id\",\"nutrient_id\",\"amount\",\"data_points\",\"derivation_id\",\"min\",\"max\",\"median\",\"footnote\",\"min_year_acquired\"
\"1\",\"167512\",\"1008\",\"307\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"2\",\"167512\",\"1003\",\"5.88\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"3\",\"167512\",\"1005\",\"41.18\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"4\",\"167512\",\"1004\",\"13.24\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"5\",\"167512\",\"1093\",\"1000\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"6\",\"167512\",\"1087\",\"30\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"7\",\"2346404\",\"1062\",\"200\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"8\",\"2346404\",\"2048\",\"48\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"9\",\"2346404\",\"1050\",\"9.08\",\"\",\"\",\"\",\"\",\"\",\"first, \"\"summed\"\"\",\"\"
\"10\",\"2346404\",\"1063\",\"4.2\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"11\",\"2346404\",\"2047\",\"41\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"12\",\"2346405\",\"1008\",\"40\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"13\",\"2346406\",\"1008\",\"abc\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"14\",\"2346407\",\"1093\",\"150000\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
\"15\",\"999\",\"1008\",\"1\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"
";

    pub(crate) const NUTRIENT_CSV: &str = "\
\"id\",\"name\",\"unit_name\",\"nutrient_nbr\",\"rank\"
\"1003\",\"Protein\",\"G\",\"203\",\"600\"
\"1008\",\"Energy\",\"KCAL\",\"208\",\"300\"
\"1062\",\"Energy\",\"kJ\",\"268\",\"400\"
\"1093\",\"Sodium, Na\",\"MG\",\"307\",\"5800\"
";

    fn read_dataset(dataset: Dataset) -> FoodChunk {
        let mut all = FoodChunk::default();
        read(dataset, &mut |chunk: FoodChunk| {
            all.source = chunk.source;
            all.foods.extend(chunk.foods);
            all.rejections.extend(chunk.rejections);
            all.counts.merge(&chunk.counts);
            Ok(())
        })
        .unwrap();
        all
    }

    #[test]
    fn foods_fdc_nutrients_are_joined_to_foods_by_rank() {
        let all = read_dataset(dataset(&[
            ("fdc/food.csv", FOOD_CSV),
            ("fdc/food_nutrient.csv", FOOD_NUTRIENT_CSV),
            ("fdc/nutrient.csv", NUTRIENT_CSV),
            ("fdc/food_portion.csv", "\"id\",\"fdc_id\"\n"),
        ]));
        assert_eq!(all.source, "usda_fdc");
        let ids: Vec<&str> = all.foods.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["fdc:167512", "fdc:2346404"]);
        let biscuits = &all.foods[0];
        assert_eq!(
            biscuits.name,
            "Pillsbury Golden Layer Buttermilk Biscuits, Artificial Flavor, refrigerated dough"
        );
        assert_eq!(
            biscuits.per_100g,
            Nutrients {
                energy_kcal: Some(307.0),
                protein_g: Some(5.88),
                carbs_g: Some(41.18),
                fat_g: Some(13.24),
                fiber_g: None,
                sugars_g: None,
                sodium_mg: Some(1000.0),
            }
        );
        let carrots = &all.foods[1].per_100g;
        assert_eq!(carrots.energy_kcal, Some(41.0), "2047 before 2048 and kJ");
        assert_eq!(carrots.carbs_g, Some(9.08));
        assert_eq!(carrots.sugars_g, Some(4.2));
        let rejected: Vec<(u64, Option<&str>, &str)> = all
            .rejections
            .iter()
            .map(|r| (r.record, r.column.as_deref(), r.rule))
            .collect();
        assert_eq!(
            rejected,
            [
                (5, Some("amount"), "type"),
                (6, Some("nutrient 1093"), "range"),
            ]
        );
        assert!(
            all.rejections[0]
                .reason
                .contains("fdc/food_nutrient.csv record 14: amount 'abc' of nutrient 1008"),
            "{}",
            all.rejections[0].reason
        );
        assert!(all.rejections.iter().all(|r| &*r.file == "fdc/food.csv"));
        assert_eq!((all.counts.loaded, all.counts.skipped), (2, 2));
        let notes = &all.counts.notes;
        assert_eq!(notes["skipped_lab_records"], 1);
        assert_eq!(notes["skipped_no_nutrient"], 1);
        assert_eq!(notes["energy_kcal_from_atwater_general"], 1);
        assert_eq!(notes["carbs_by_summation"], 1);
        assert_eq!(notes["sugars_from_nlea"], 1);
        assert_eq!(notes["nutrients_without_food"], 1);
        assert_eq!(notes["tables_not_read"], 1);
    }

    #[test]
    fn foods_fdc_kilojoules_fill_in_for_kilocalories() {
        let all = read_dataset(dataset(&[
            (
                "food.csv",
                "\"fdc_id\",\"data_type\",\"description\"\n\"1\",\"branded_food\",\"Tea\"\n",
            ),
            (
                "food_nutrient.csv",
                "\"id\",\"fdc_id\",\"nutrient_id\",\"amount\"\n\"1\",\"1\",\"1062\",\"41.84\"\n",
            ),
        ]));
        assert!((all.foods[0].per_100g.energy_kcal.unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(all.counts.notes["energy_kcal_from_kj"], 1);
    }

    #[test]
    fn foods_fdc_files_without_their_partner_fail_by_name() {
        let input = |name: &str| Input::bytes(name, Vec::new());
        let (datasets, rest, failed) = group(
            vec![
                input("a/food_nutrient.csv"),
                input("b.zip!FoodData/food.csv"),
                input("b.zip!FoodData/food_nutrient.csv"),
                input("c/nutrient.csv"),
            ],
            vec![
                input("b.zip!FoodData/branded_food.csv"),
                input("b.zip!FoodData/meals.csv"),
                input("a/branded_food.csv"),
            ],
        );
        assert_eq!(datasets.len(), 1);
        assert_eq!(
            datasets[0].files(),
            [
                Arc::from("b.zip!FoodData/food.csv"),
                Arc::from("b.zip!FoodData/food_nutrient.csv"),
                Arc::from("b.zip!FoodData/branded_food.csv"),
            ]
        );
        let rest: Vec<&str> = rest.iter().map(|i| &*i.name).collect();
        assert_eq!(rest, ["b.zip!FoodData/meals.csv", "a/branded_food.csv"]);
        assert_eq!(failed.len(), 2);
        assert_eq!(failed[0].0, "a/food_nutrient.csv");
        assert!(
            failed[0].1.contains("needs food.csv beside this file"),
            "{}",
            failed[0].1
        );
        assert_eq!(failed[1].0, "c/nutrient.csv");
        assert!(
            failed[1].1.contains("food.csv and food_nutrient.csv"),
            "{}",
            failed[1].1
        );
    }

    #[test]
    fn foods_fdc_nutrients_in_other_units_are_refused() {
        let dataset = dataset(&[
            ("food.csv", FOOD_CSV),
            ("food_nutrient.csv", FOOD_NUTRIENT_CSV),
            (
                "nutrient.csv",
                "\"id\",\"name\",\"unit_name\",\"nutrient_nbr\",\"rank\"\n\"1093\",\"Sodium, Na\",\"G\",\"307\",\"1\"\n",
            ),
        ]);
        let err = read(dataset, &mut |_| Ok(())).unwrap_err().to_string();
        assert!(
            err.starts_with("nutrient.csv: record 2: nutrient 1093 (Sodium, Na) is in 'G', not MG"),
            "{err}"
        );
    }
}
