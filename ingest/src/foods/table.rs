//! The project's own food table (`foods.csv` as the simulator writes it, or `foods.ndjson`):
//! `food_id` (or `id`), `name`, optional `brand` and `source`, and the nutrients per 100 g
//! named like the `foods` table's columns. Every row is meant to be a food, so a row without
//! an id or a name is rejected, not skipped; a food without nutrients is still a food.

use std::io::{BufRead, BufReader};

use catalog::{Food, Nutrients};

use super::{
    Collector, FoodSink, implausible,
    text::{TextCsv, cell, number, strings},
};
use crate::{Error, Result, formats::Input};

const ID: [&str; 2] = ["food_id", "id"];
const NAME: &str = "name";
const BRAND: &str = "brand";
const SOURCE: &str = "source";

/// One row, as text.
#[derive(Default)]
struct Row<'a> {
    id: Option<&'a str>,
    name: Option<&'a str>,
    brand: Option<&'a str>,
    source: Option<&'a str>,
    nutrients: [Option<&'a str>; 7],
}

pub(super) fn read(input: Input, source: Option<&str>, sink: &mut FoodSink) -> Result<()> {
    let default_source = source.map_or_else(|| input.stem(), str::to_owned);
    let mut reader = BufReader::with_capacity(1 << 20, input.open()?);
    let head = reader
        .fill_buf()
        .map_err(|e| Error::file(&input.name, format!("cannot read: {e}")))?;
    let json = head
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let mut collector = Collector::new(input.name.clone(), &default_source, sink);
    if json {
        ndjson(reader, &input, &default_source, &mut collector)?;
    } else {
        csv(reader, &input, &default_source, &mut collector)?;
    }
    collector.finish()
}

fn csv(
    reader: BufReader<Box<dyn crate::formats::ReadSeek>>,
    input: &Input,
    default_source: &str,
    collector: &mut Collector,
) -> Result<()> {
    let mut csv = TextCsv::open(reader, &input.name, None)?;
    let (Some(id), Some(name)) = (csv.column(&ID), csv.column(&[NAME])) else {
        return Err(Error::file(
            &input.name,
            format!(
                "a foods table needs a 'food_id' (or 'id') and a 'name' column; its header is {}",
                csv.header.join(", ")
            ),
        ));
    };
    let brand = csv.column(&[BRAND]);
    let source = csv.column(&[SOURCE]);
    let nutrients = Nutrients::COLUMNS.map(|c| csv.column(&[c]));
    while let Some((first, batch)) = csv.next_batch()? {
        let text = |column: Option<usize>| column.map(|c| strings(&batch, c));
        let (ids, names, brands, sources) =
            (text(Some(id)), text(Some(name)), text(brand), text(source));
        let values = nutrients.map(text);
        for row in 0..batch.num_rows() {
            let fields = Row {
                id: cell(ids, row),
                name: cell(names, row),
                brand: cell(brands, row),
                source: cell(sources, row),
                nutrients: values.map(|v| cell(v, row)),
            };
            food(collector, first + row as u64, fields, default_source)?;
        }
    }
    Ok(())
}

/// One JSON object a line; numbers may be JSON numbers or text.
fn ndjson(
    mut reader: impl BufRead,
    input: &Input,
    default_source: &str,
    collector: &mut Collector,
) -> Result<()> {
    let mut line = String::new();
    let mut record = 0;
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| {
            Error::file(&input.name, format!("cannot read after line {record}: {e}"))
        })?;
        if read == 0 {
            return Ok(());
        }
        record += 1;
        if line.trim().is_empty() {
            continue;
        }
        let object = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
        {
            Ok(object) => object,
            Err(e) => {
                collector.reject(
                    record,
                    "*",
                    "type",
                    format!("not a JSON object: {e}"),
                    Some(line.trim()),
                )?;
                continue;
            }
        };
        let texts: Vec<(String, Option<String>)> = object
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
                (key.trim().to_ascii_lowercase(), text)
            })
            .collect();
        let get = |names: &[&str]| {
            names.iter().find_map(|name| {
                texts
                    .iter()
                    .find(|(key, _)| key == name)
                    .and_then(|(_, v)| v.as_deref())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
            })
        };
        let fields = Row {
            id: get(&ID),
            name: get(&[NAME]),
            brand: get(&[BRAND]),
            source: get(&[SOURCE]),
            nutrients: Nutrients::COLUMNS.map(|c| get(&[c])),
        };
        food(collector, record, fields, default_source)?;
    }
}

fn food(collector: &mut Collector, record: u64, row: Row, default_source: &str) -> Result<()> {
    let Some(id) = row.id else {
        return collector.reject(record, ID[0], "required", "the food has no id".into(), None);
    };
    let Some(name) = row.name else {
        return collector.reject(
            record,
            NAME,
            "required",
            format!("food {id} has no name"),
            None,
        );
    };
    if !collector.usable_id(record, ID[0], id)? {
        return Ok(());
    }
    let mut values = [None; 7];
    for ((slot, raw), column) in values.iter_mut().zip(row.nutrients).zip(Nutrients::COLUMNS) {
        match number(raw) {
            Ok(value) => *slot = value,
            Err(()) => {
                return collector.reject(
                    record,
                    column,
                    "type",
                    format!("{column} '{}' is not a number", raw.unwrap_or_default()),
                    raw,
                );
            }
        }
    }
    if let Some((slot, reason)) = implausible(&values) {
        let column = Nutrients::COLUMNS[slot];
        let value = values[slot].map(|v| v.to_string());
        return collector.reject(
            record,
            column,
            "range",
            format!("{column}: {reason}"),
            value.as_deref(),
        );
    }
    collector.food(Food {
        id: id.to_owned(),
        source: row.source.unwrap_or(default_source).to_owned(),
        name: name.to_owned(),
        brand: row.brand.map(str::to_owned),
        per_100g: Nutrients::from_values(values),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foods::FoodChunk;

    pub(crate) fn read_all(input: Input, source: Option<&str>) -> FoodChunk {
        let mut all = FoodChunk::default();
        read(input, source, &mut |chunk: FoodChunk| {
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
    fn foods_table_rows_become_foods_and_bad_ones_are_rejected() {
        let csv = "\
food_id,name,energy_kcal,protein_g,carbs_g,fat_g,fiber_g,sugars_g,sodium_mg
F001,Rolled oats,379,13.2,67.7,6.5,10.1,1.0,6
F002,\"Milk, whole\",61,3.2,,3.3,0.0,4.8,43
F003,,89,1.1,22.8,0.3,2.6,12.2,1
,Nameless id,1,,,,,,
F005,Bad fat,100,1,1,abc,,,
F006,Too fat,100,1,1,120,,,
F007,Water,,,,,,,
";
        let all = read_all(
            Input::bytes("data/foods.csv", csv.as_bytes().to_vec()),
            None,
        );
        assert_eq!(all.source, "foods");
        let ids: Vec<&str> = all.foods.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["F001", "F002", "F007"]);
        let milk = &all.foods[1];
        assert_eq!(milk.name, "Milk, whole");
        assert_eq!(milk.source, "foods");
        assert_eq!(milk.per_100g.carbs_g, None, "missing stays missing");
        assert_eq!(milk.per_100g.fiber_g, Some(0.0));
        assert_eq!(milk.per_100g.sodium_mg, Some(43.0));
        assert_eq!(all.foods[2].per_100g, Nutrients::default());
        let rejected: Vec<(u64, Option<&str>, &str)> = all
            .rejections
            .iter()
            .map(|r| (r.record, r.column.as_deref(), r.rule))
            .collect();
        assert_eq!(
            rejected,
            [
                (4, Some("name"), "required"),
                (5, Some("food_id"), "required"),
                (6, Some("fat_g"), "type"),
                (7, Some("fat_g"), "range"),
            ]
        );
        assert!(all.rejections.iter().all(|r| &*r.stream == "foods"));
        assert_eq!(all.rejections[2].value.as_deref(), Some("abc"));
        assert_eq!(
            (all.counts.loaded, all.counts.rejected, all.counts.skipped),
            (3, 4, 0)
        );
    }

    #[test]
    fn foods_table_reads_ndjson_with_ids_brands_and_sources() {
        let ndjson = "\
{\"id\":\"x1\",\"name\":\"Spread\",\"brand\":\"Acme\",\"source\":\"shop\",\"energy_kcal\":539,\"sodium_mg\":\"41\"}

{\"food_id\":\"x2\",\"name\":\"Tea\",\"energy_kcal\":null}
not json
";
        let all = read_all(
            Input::bytes("foods.ndjson", ndjson.as_bytes().to_vec()),
            Some("mine"),
        );
        assert_eq!(all.foods.len(), 2);
        assert_eq!(all.foods[0].brand.as_deref(), Some("Acme"));
        assert_eq!(all.foods[0].source, "shop");
        assert_eq!(all.foods[0].per_100g.energy_kcal, Some(539.0));
        assert_eq!(all.foods[0].per_100g.sodium_mg, Some(41.0));
        assert_eq!(all.foods[1].source, "mine", "--source names the others");
        assert_eq!(all.foods[1].per_100g.energy_kcal, None);
        assert_eq!(all.rejections.len(), 1);
        assert_eq!(all.rejections[0].record, 4);
    }

    #[test]
    fn foods_table_without_ids_is_refused() {
        let err = read(
            Input::bytes("foods.csv", b"code,title\n1,x\n".to_vec()),
            None,
            &mut |_| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("foods.csv: a foods table needs a 'food_id'"),
            "{err}"
        );
    }
}
