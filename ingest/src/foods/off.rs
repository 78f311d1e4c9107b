//! The Open Food Facts CSV export (`en.openfoodfacts.org.products.csv`): UTF-8, one product a
//! line, fields separated by tabs and never quoted — a `"` is part of the text, so the lines
//! are split on tabs only. About 3.5 million lines and 9 GB: read line by line into one
//! reused buffer, only the columns below decoded.

use std::{
    borrow::Cow,
    io::{BufRead, BufReader},
};

use catalog::{Food, Nutrients};

use super::{
    CARBS, Collector, ENERGY, FAT, FIBER, FoodSink, KJ_PER_KCAL, PROTEIN, SODIUM, SUGARS,
    implausible,
};
use crate::{Error, Result, formats::Input};

const SOURCE: &str = "open_food_facts";
/// Relative difference beyond which a kcal and a kJ value of a product disagree.
const ENERGY_TOLERANCE: f64 = 0.15;
/// Grams of salt per gram of sodium, as food labels count it.
const SALT_PER_SODIUM: f64 = 2.5;

// The fields read, by position in `FIELDS`.
const CODE: usize = 0;
const NAMES: [usize; 3] = [1, 2, 3];
const BRANDS: usize = 4;
const KCAL: usize = 5;
const KJ: usize = 6;
const ENERGY_KJ: usize = 7;
const PROTEINS: usize = 8;
const CARBOHYDRATES: usize = 9;
const FATS: usize = 10;
const FIBERS: usize = 11;
const SUGAR: usize = 12;
const SODIUM_G: usize = 13;
const SALT: usize = 14;
const FIELDS: [&str; 15] = [
    "code",
    "product_name",
    "product_name_en",
    "generic_name",
    "brands",
    "energy-kcal_100g",
    "energy-kj_100g",
    "energy_100g",
    "proteins_100g",
    "carbohydrates_100g",
    "fat_100g",
    "fiber_100g",
    "sugars_100g",
    "sodium_100g",
    "salt_100g",
];
/// The numeric fields, first to last.
const NUMBERS: std::ops::RangeInclusive<usize> = KCAL..=SALT;

pub(super) fn read(input: Input, sink: &mut FoodSink) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, input.open()?);
    let mut line = Vec::with_capacity(64 * 1024);
    let cannot = |record: u64, e: std::io::Error| {
        Error::file(&input.name, format!("cannot read after line {record}: {e}"))
    };
    reader
        .read_until(b'\n', &mut line)
        .map_err(|e| cannot(0, e))?;
    let header = String::from_utf8_lossy(trim_line(&line)).into_owned();
    let header = header.trim_start_matches('\u{feff}');
    let names: Vec<&str> = header.split('\t').collect();
    // For each column of the file, the field it feeds, if any.
    let wanted: Vec<Option<usize>> = names
        .iter()
        .map(|name| FIELDS.iter().position(|f| f == name))
        .collect();
    let has = |field: usize| wanted.contains(&Some(field));
    if !has(CODE) || !NAMES.iter().any(|n| has(*n)) {
        return Err(Error::file(
            &input.name,
            "not an Open Food Facts export: its header (line 1, tab-separated) has no 'code' or no 'product_name' column",
        ));
    }
    let mut collector = Collector::new(input.name.clone(), SOURCE, sink);
    let mut record = 1;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| cannot(record, e))?;
        if read == 0 {
            break;
        }
        record += 1;
        let text = trim_line(&line);
        if text.is_empty() {
            continue;
        }
        let mut fields: [&[u8]; FIELDS.len()] = [b""; FIELDS.len()];
        let mut count = 0;
        for (column, field) in text.split(|b| *b == b'\t').enumerate() {
            if let Some(Some(slot)) = wanted.get(column) {
                fields[*slot] = field;
            }
            count += 1;
        }
        if count != names.len() {
            collector.reject(
                record,
                "*",
                "layout",
                format!(
                    "the line has {count} fields where the header has {}: a tab or a line break inside a value",
                    names.len()
                ),
                None,
            )?;
            continue;
        }
        product(&mut collector, record, &fields)?;
    }
    collector.finish()
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn text(field: &[u8]) -> Cow<'_, str> {
    match String::from_utf8_lossy(field) {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    }
}

fn product(collector: &mut Collector, record: u64, fields: &[&[u8]; FIELDS.len()]) -> Result<()> {
    let Some(name) = NAMES
        .iter()
        .map(|n| text(fields[*n]))
        .find(|n| !n.is_empty())
    else {
        collector.skip("skipped_no_name");
        return Ok(());
    };
    let code = text(fields[CODE]);
    if code.is_empty() {
        return collector.reject(
            record,
            FIELDS[CODE],
            "required",
            format!("product '{name}' has no code"),
            None,
        );
    }
    let mut numbers = [None; FIELDS.len()];
    for field in NUMBERS {
        let raw = text(fields[field]);
        match super::text::number(Some(&raw)) {
            Ok(value) => numbers[field] = value,
            Err(()) => {
                return collector.reject(
                    record,
                    FIELDS[field],
                    "type",
                    format!("{} '{raw}' is not a number", FIELDS[field]),
                    Some(&raw),
                );
            }
        }
    }
    // Which field each nutrient came from, for messages.
    let mut origin = [KCAL, PROTEINS, CARBOHYDRATES, FATS, FIBERS, SUGAR, SODIUM_G];
    let mut values = [None; 7];
    values[PROTEIN] = numbers[PROTEINS];
    values[CARBS] = numbers[CARBOHYDRATES];
    values[FAT] = numbers[FATS];
    values[FIBER] = numbers[FIBERS];
    values[SUGARS] = numbers[SUGAR];
    let kj = numbers[KJ]
        .map(|v| (KJ, v))
        .or(numbers[ENERGY_KJ].map(|v| (ENERGY_KJ, v)));
    values[ENERGY] = match (numbers[KCAL], kj) {
        (Some(kcal), Some((kj_field, kj))) => {
            let from_kj = kj / KJ_PER_KCAL;
            if (kcal - from_kj).abs() > ENERGY_TOLERANCE * kcal.max(from_kj) {
                collector.note("energy_kcal_disagrees_with_kj");
                if nearer_atwater(&values, kcal, from_kj) {
                    collector.note("energy_kcal_from_kj_by_atwater");
                    origin[ENERGY] = kj_field;
                    Some(from_kj)
                } else {
                    Some(kcal)
                }
            } else {
                Some(kcal)
            }
        }
        (Some(kcal), None) => Some(kcal),
        (None, Some((kj_field, kj))) => {
            collector.note("energy_kcal_from_kj");
            origin[ENERGY] = kj_field;
            Some(kj / KJ_PER_KCAL)
        }
        (None, None) => None,
    };
    values[SODIUM] = match (numbers[SODIUM_G], numbers[SALT]) {
        (Some(grams), _) => Some(grams * 1000.0),
        (None, Some(salt)) => {
            collector.note("sodium_from_salt");
            origin[SODIUM] = SALT;
            Some(salt / SALT_PER_SODIUM * 1000.0)
        }
        (None, None) => None,
    };
    if values.iter().all(Option::is_none) {
        collector.skip("skipped_no_nutrient");
        return Ok(());
    }
    if let Some((slot, reason)) = implausible(&values) {
        let field = FIELDS[origin[slot]];
        let raw = numbers[origin[slot]].map(|v| v.to_string());
        return collector.reject(
            record,
            field,
            "range",
            format!("{}: {reason}", Nutrients::COLUMNS[slot]),
            raw.as_deref(),
        );
    }
    let id = format!("off:{code}");
    if !collector.usable_id(record, FIELDS[CODE], &id)? {
        return Ok(());
    }
    let brand = text(fields[BRANDS]);
    collector.food(Food {
        id,
        source: SOURCE.to_owned(),
        name: name.into_owned(),
        brand: (!brand.is_empty()).then(|| brand.into_owned()),
        per_100g: Nutrients::from_values(values),
    })
}

/// Whether `from_kj` is nearer than `kcal` to the Atwater energy of the macronutrients
/// (4 kcal/g protein and carbohydrates, 9 fat, 2 fiber); `false` when they are not all known.
fn nearer_atwater(values: &[Option<f64>; 7], kcal: f64, from_kj: f64) -> bool {
    let (Some(protein), Some(carbs), Some(fat)) = (values[PROTEIN], values[CARBS], values[FAT])
    else {
        return false;
    };
    let atwater = 4.0 * protein + 4.0 * carbs + 9.0 * fat + 2.0 * values[FIBER].unwrap_or(0.0);
    (from_kj - atwater).abs() < (kcal - atwater).abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foods::FoodChunk;

    fn read_text(text: &str) -> FoodChunk {
        let mut all = FoodChunk::default();
        read(
            Input::bytes(
                "en.openfoodfacts.org.products.csv",
                text.as_bytes().to_vec(),
            ),
            &mut |chunk: FoodChunk| {
                all.source = chunk.source;
                all.foods.extend(chunk.foods);
                all.rejections.extend(chunk.rejections);
                all.counts.merge(&chunk.counts);
                Ok(())
            },
        )
        .unwrap();
        all
    }

    const HEADER: &str = "code\turl\tproduct_name\tgeneric_name\tbrands\tenergy-kj_100g\tenergy-kcal_100g\tenergy_100g\tfat_100g\tcarbohydrates_100g\tsugars_100g\tfiber_100g\tproteins_100g\tsalt_100g\tsodium_100g\n";

    #[test]
    fn foods_off_products_become_foods() {
        let text = format!(
            "{HEADER}\
3017620422003\thttp://x\tNutella\t\tFerrero,Nutella\t2252\t539\t2252\t30.9\t57.5\t56.3\t\t6.3\t0.107\t0.0428\r
123\t\tSoupe \"maison\t\t\t150\t\t\t1\t5\t\t\t1\t1.25\t\n\
456\t\t\tPain de mie\t\t\t\t1000\t4\t50\t\t\t8\t\t\n\
789\t\t\t\t\t\t100\t\t1\t1\t\t\t1\t\t\n\
790\t\tEau\t\t\t\t\t\t\t\t\t\t\t\t\n"
        );
        let all = read_text(&text);
        assert_eq!(all.source, "open_food_facts");
        let nutella = &all.foods[0];
        assert_eq!(nutella.id, "off:3017620422003");
        assert_eq!(nutella.name, "Nutella");
        assert_eq!(nutella.brand.as_deref(), Some("Ferrero,Nutella"));
        assert_eq!(nutella.per_100g.energy_kcal, Some(539.0));
        assert!((nutella.per_100g.sodium_mg.unwrap() - 42.8).abs() < 1e-9);
        assert_eq!(nutella.per_100g.fiber_g, None);

        let soup = &all.foods[1];
        assert_eq!(soup.name, "Soupe \"maison", "a stray quote is text");
        assert!((soup.per_100g.energy_kcal.unwrap() - 150.0 / 4.184).abs() < 1e-9);
        assert!(
            (soup.per_100g.sodium_mg.unwrap() - 500.0).abs() < 1e-9,
            "salt / 2.5"
        );

        let bread = &all.foods[2];
        assert_eq!(
            bread.name, "Pain de mie",
            "generic_name when no product_name"
        );
        assert!((bread.per_100g.energy_kcal.unwrap() - 1000.0 / 4.184).abs() < 1e-9);

        assert_eq!(all.foods.len(), 3);
        assert_eq!((all.counts.loaded, all.counts.skipped), (3, 2));
        assert_eq!(all.counts.notes["skipped_no_name"], 1);
        assert_eq!(all.counts.notes["skipped_no_nutrient"], 1);
        assert_eq!(all.counts.notes["energy_kcal_from_kj"], 2);
        assert_eq!(all.counts.notes["sodium_from_salt"], 1);
        assert!(all.rejections.is_empty());
    }

    #[test]
    fn foods_off_energy_that_disagrees_is_settled_by_atwater() {
        // 2000 kJ = 478 kcal; 2000 "kcal" is the kJ value typed in the kcal field, and the
        // macronutrients give 4*10 + 4*60 + 9*20 = 460 kcal.
        let typo = format!(
            "{HEADER}1\t\tBar\t\t\t2000\t2000\t\t20\t60\t\t\t10\t\t\n2\t\tCake\t\t\t2000\t300\t\t\t\t\t\t\t\t\n"
        );
        let all = read_text(&typo);
        assert!((all.foods[0].per_100g.energy_kcal.unwrap() - 2000.0 / 4.184).abs() < 1e-9);
        assert_eq!(
            all.foods[1].per_100g.energy_kcal,
            Some(300.0),
            "kcal kept without macros"
        );
        assert_eq!(all.counts.notes["energy_kcal_disagrees_with_kj"], 2);
        assert_eq!(all.counts.notes["energy_kcal_from_kj_by_atwater"], 1);
    }

    #[test]
    fn foods_off_bad_rows_are_rejected_with_their_line_and_field() {
        let text = format!(
            "{HEADER}\
1\t\tToo fat\t\t\t\t500\t\t120\t\t\t\t\t\t\n\
2\t\tNot a number\t\t\t\t1,5\t\t\t\t\t\t\t\t\n\
3\t\tShort line\t\t\n\
\t\tNo code\t\t\t\t100\t\t\t\t\t\t\t\t\n\
4\t\tSalty\t\t\t\t\t\t\t\t\t\t\t300\t\n\
5\t\tFine\t\t\t\t100\t\t\t\t\t\t\t\t\n"
        );
        let all = read_text(&text);
        let rejected: Vec<(u64, Option<&str>, &str)> = all
            .rejections
            .iter()
            .map(|r| (r.record, r.column.as_deref(), r.rule))
            .collect();
        assert_eq!(
            rejected,
            [
                (2, Some("fat_100g"), "range"),
                (3, Some("energy-kcal_100g"), "type"),
                (4, Some("*"), "layout"),
                (5, Some("code"), "required"),
                (6, Some("salt_100g"), "range"),
            ]
        );
        assert_eq!(all.rejections[1].value.as_deref(), Some("1,5"));
        assert_eq!(all.foods.len(), 1);
        assert_eq!(all.counts.rejected, 5);
    }

    #[test]
    fn foods_off_without_its_columns_is_refused() {
        let err = read(
            Input::bytes("x.csv", b"id\tname\n1\tx\n".to_vec()),
            &mut |_| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not an Open Food Facts export"), "{err}");
    }
}
