//! The ANSES CIQUAL 2020 table exported as CSV from its spreadsheet: `;` or tab separated,
//! UTF-8 or Windows-1252, French decimals (`12,5`), `traces`, `< 0,5` and `-` for values.
//! Foods by `alim_code` and `alim_nom_fr` (else `alim_nom_eng`); nutrients by the start of
//! their French header (the cells of one header may differ in spaces and case).

use std::io::Cursor;

use catalog::{Food, Nutrients};

use super::{
    CARBS, Collector, ENERGY, FAT, FIBER, FoodSink, KJ_PER_KCAL, PROTEIN, SODIUM, SUGARS,
    implausible,
    text::{TextCsv, cell, decode, normalized, strings},
};
use crate::{Error, Result, formats::Input};

const SOURCE: &str = "ciqual";
const CODE: &str = "alim_code";
const NAMES: [&str; 2] = ["alim_nom_fr", "alim_nom_eng"];

/// The headers of each nutrient, preferred first, with the factor to its unit and what the
/// report notes when a fallback fills it.
const HEADERS: [(usize, &str, f64, Option<&str>); 9] = [
    (
        ENERGY,
        "Energie, Règlement UE N° 1169/2011 (kcal/100 g)",
        1.0,
        None,
    ),
    (
        ENERGY,
        "Energie, Règlement UE N° 1169/2011 (kJ/100 g)",
        1.0 / KJ_PER_KCAL,
        Some("energy_kcal_from_kj"),
    ),
    (
        PROTEIN,
        "Protéines, N x facteur de Jones (g/100 g)",
        1.0,
        None,
    ),
    (
        PROTEIN,
        "Protéines, N x 6.25 (g/100 g)",
        1.0,
        Some("protein_from_n_x_6_25"),
    ),
    (CARBS, "Glucides (g/100 g)", 1.0, None),
    (FAT, "Lipides (g/100 g)", 1.0, None),
    (FIBER, "Fibres alimentaires (g/100 g)", 1.0, None),
    (SUGARS, "Sucres (g/100 g)", 1.0, None),
    (SODIUM, "Sodium (mg/100 g)", 1.0, None),
];

/// A CIQUAL cell.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Missing,
    Value(f64),
    /// Present below the quantification limit.
    Traces,
    /// Below this limit.
    Below(f64),
}

/// Reads a cell: `12,5` or `12.5`, `traces`, `< 0,5`, `-` or empty; `None` when unreadable.
fn parse(raw: Option<&str>) -> Option<Cell> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty() && *r != "-") else {
        return Some(Cell::Missing);
    };
    if raw.eq_ignore_ascii_case("traces") {
        return Some(Cell::Traces);
    }
    let number = |text: &str| {
        text.trim()
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    };
    match raw.strip_prefix('<') {
        Some(bound) => number(bound).map(Cell::Below),
        None => number(raw).map(Cell::Value),
    }
}

pub(super) fn read(input: Input, sink: &mut FoodSink) -> Result<()> {
    let (text, windows_1252) = decode(input.read_all()?);
    let mut csv = TextCsv::open(Cursor::new(text.into_bytes()), &input.name, None)?;
    let headers: Vec<String> = csv.header.iter().map(|h| normalized(h)).collect();
    let find = |name: &str| headers.iter().position(|h| h == name);
    let code = find(CODE);
    let name_columns: Vec<usize> = NAMES.iter().filter_map(|n| find(n)).collect();
    let (Some(code), false) = (code, name_columns.is_empty()) else {
        return Err(Error::file(
            &input.name,
            "a CIQUAL table needs an 'alim_code' and an 'alim_nom_fr' (or 'alim_nom_eng') column",
        ));
    };
    // Per nutrient header that the file has: its column.
    let nutrients: Vec<(usize, usize)> = HEADERS
        .iter()
        .enumerate()
        .filter_map(|(index, (_, header, _, _))| {
            let header = normalized(header);
            headers
                .iter()
                .position(|h| h.starts_with(&header))
                .map(|column| (index, column))
        })
        .collect();
    if nutrients.is_empty() {
        return Err(Error::file(
            &input.name,
            "a CIQUAL table needs nutrient columns with their French headers, such as 'Glucides (g/100 g)'",
        ));
    }
    let mut collector = Collector::new(input.name.clone(), SOURCE, sink);
    if windows_1252 {
        collector.note("decoded_as_windows_1252");
    }
    while let Some((first, batch)) = csv.next_batch()? {
        for row in 0..batch.num_rows() {
            let record = first + row as u64;
            let text = |column: usize| cell(Some(strings(&batch, column)), row);
            food(
                &mut collector,
                record,
                &csv.header,
                &text,
                code,
                &name_columns,
                &nutrients,
            )?;
        }
    }
    collector.finish()
}

fn food<'a>(
    collector: &mut Collector,
    record: u64,
    header: &[String],
    text: &dyn Fn(usize) -> Option<&'a str>,
    code: usize,
    name_columns: &[usize],
    nutrients: &[(usize, usize)],
) -> Result<()> {
    let Some(code) = text(code) else {
        return collector.reject(
            record,
            CODE,
            "required",
            "the food has no alim_code".into(),
            None,
        );
    };
    let Some(name) = name_columns.iter().find_map(|c| text(*c)) else {
        return collector.reject(
            record,
            NAMES[0],
            "required",
            format!("food {code} has no name"),
            None,
        );
    };
    let mut values = [None; 7];
    let mut origin = [0; 7];
    let mut notes = Vec::new();
    for &(index, column) in nutrients {
        let (slot, _, factor, fallback) = HEADERS[index];
        if values[slot].is_some() {
            continue;
        }
        let raw = text(column);
        let value = match parse(raw) {
            None => {
                return collector.reject(
                    record,
                    header[column].trim(),
                    "type",
                    format!("'{}' is not a number", raw.unwrap_or_default()),
                    raw,
                );
            }
            Some(Cell::Missing) => continue,
            Some(Cell::Value(v)) => v,
            Some(Cell::Traces) => {
                notes.push("traces_as_zero");
                0.0
            }
            Some(Cell::Below(bound)) => {
                notes.push("below_limit_as_half");
                bound / 2.0
            }
        };
        notes.extend(fallback);
        values[slot] = Some(value * factor);
        origin[slot] = column;
    }
    if values.iter().all(Option::is_none) {
        collector.skip("skipped_no_nutrient");
        return Ok(());
    }
    if let Some((slot, reason)) = implausible(&values) {
        let value = text(origin[slot]);
        return collector.reject(
            record,
            header[origin[slot]].trim(),
            "range",
            format!("{}: {reason}", Nutrients::COLUMNS[slot]),
            value,
        );
    }
    let id = format!("ciqual:{code}");
    if !collector.usable_id(record, CODE, &id)? {
        return Ok(());
    }
    for note in notes {
        collector.note(note);
    }
    collector.food(Food {
        id,
        source: SOURCE.to_owned(),
        name: name.to_owned(),
        brand: None,
        per_100g: Nutrients::from_values(values),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foods::FoodChunk;

    #[test]
    fn foods_ciqual_cells_are_read() {
        assert_eq!(parse(Some("12,5")), Some(Cell::Value(12.5)));
        assert_eq!(parse(Some(" 0.8 ")), Some(Cell::Value(0.8)));
        assert_eq!(parse(Some("traces")), Some(Cell::Traces));
        assert_eq!(parse(Some("< 0,5")), Some(Cell::Below(0.5)));
        assert_eq!(parse(Some("<0,05")), Some(Cell::Below(0.05)));
        assert_eq!(parse(Some("-")), Some(Cell::Missing));
        assert_eq!(parse(None), Some(Cell::Missing));
        assert_eq!(parse(Some("n.d.")), None);
    }

    #[test]
    fn foods_ciqual_rows_become_foods() {
        let text = "alim_code;alim_nom_fr;alim_nom_eng;Energie, Règlement UE N° 1169/2011 (kJ/100 g);Energie, Règlement UE N° 1169/2011 (kcal/100 g);Protéines, N x facteur de Jones (g/100 g);Protéines, N x 6.25 (g/100 g);Glucides (g/100 g);Lipides (g/100 g);Sucres (g/100 g);Fibres alimentaires (g/100 g);Sodium (mg/100 g)
25601;Pain de mie;Sandwich bread;1130;268;8,5;9;49,3;3,7;5,2;3,3;450
13000;Pomme, crue;Apple, raw;226;-;traces;0,3;11,6;< 0,5;9,35;1,4;< 5
9999;;Only English;;;;;;;;;1
8888;Eau;Water;-;-;-;-;-;-;-;-;-
7777;Beurre;Butter;;950;;;;;;;
6666;Sel;Salt;;;;;;;;;abc
";
        let mut all = FoodChunk::default();
        read(
            Input::bytes("ciqual.csv", text.as_bytes().to_vec()),
            &mut |chunk: FoodChunk| {
                all.foods.extend(chunk.foods);
                all.rejections.extend(chunk.rejections);
                all.counts.merge(&chunk.counts);
                Ok(())
            },
        )
        .unwrap();
        let ids: Vec<&str> = all.foods.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["ciqual:25601", "ciqual:13000", "ciqual:9999"]);
        assert_eq!(
            all.foods[0].per_100g,
            Nutrients {
                energy_kcal: Some(268.0),
                protein_g: Some(8.5),
                carbs_g: Some(49.3),
                fat_g: Some(3.7),
                fiber_g: Some(3.3),
                sugars_g: Some(5.2),
                sodium_mg: Some(450.0),
            }
        );
        let apple = &all.foods[1];
        assert_eq!(apple.name, "Pomme, crue");
        assert!((apple.per_100g.energy_kcal.unwrap() - 226.0 / 4.184).abs() < 1e-9);
        assert_eq!(apple.per_100g.protein_g, Some(0.0), "traces, not N x 6.25");
        assert_eq!(apple.per_100g.fat_g, Some(0.25));
        assert_eq!(apple.per_100g.sodium_mg, Some(2.5));
        assert_eq!(all.foods[2].name, "Only English");
        let rejected: Vec<(u64, Option<&str>, &str)> = all
            .rejections
            .iter()
            .map(|r| (r.record, r.column.as_deref(), r.rule))
            .collect();
        assert_eq!(
            rejected,
            [
                (
                    6,
                    Some("Energie, Règlement UE N° 1169/2011 (kcal/100 g)"),
                    "range"
                ),
                (7, Some("Sodium (mg/100 g)"), "type"),
            ]
        );
        assert_eq!(all.counts.skipped, 1);
        let notes = &all.counts.notes;
        assert_eq!(notes["traces_as_zero"], 1);
        assert_eq!(notes["below_limit_as_half"], 2);
        assert_eq!(notes["energy_kcal_from_kj"], 1);
        assert_eq!(notes["skipped_no_nutrient"], 1);
        assert!(!notes.contains_key("decoded_as_windows_1252"));
    }

    #[test]
    fn foods_ciqual_without_its_columns_is_refused() {
        let err = read(
            Input::bytes("ciqual.csv", b"code;name\n1;x\n".to_vec()),
            &mut |_| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("needs an 'alim_code'"), "{err}");
        let err = read(
            Input::bytes(
                "ciqual.csv",
                b"alim_code;alim_nom_eng;Energy (kcal/100g)\n1;x;5\n".to_vec(),
            ),
            &mut |_| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("French headers"), "{err}");
    }
}
