//! Meals enriched from the `foods` table: a cleaned meals row (quantity in grams) whose
//! nutrients are missing gets them from its food × `quantity_g` / 100. Values the log gives
//! win; a nutrient the food lacks stays missing; a food id the table does not know leaves the
//! row as it is, flagged.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use arrow::{
    array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray},
    datatypes::Float64Type,
    error::ArrowError,
};
use catalog::Nutrients;

use crate::clean::{ROW, Stats};

const FOOD_ID: &str = "food_id";
const QUANTITY: &str = "quantity_g";
/// The rule that fills nutrients, reported under the whole-row column.
const ENRICHMENT: &str = "enrichment";
/// The rule that flags food ids the table does not know.
const FOOD: &str = "food";

/// The columns enrichment reads, when the batch has them all.
struct Columns<'a> {
    foods: &'a StringArray,
    quantities: &'a Float64Array,
    nutrients: [(usize, &'a Float64Array); 7],
}

impl<'a> Columns<'a> {
    fn of(batch: &'a RecordBatch) -> Option<Self> {
        let schema = batch.schema_ref();
        let float = |name: &str| {
            let index = schema.index_of(name).ok()?;
            Some((
                index,
                batch.column(index).as_primitive_opt::<Float64Type>()?,
            ))
        };
        let foods = batch
            .column(schema.index_of(FOOD_ID).ok()?)
            .as_string_opt::<i32>()?;
        let quantities = float(QUANTITY)?.1;
        let mut nutrients = Vec::with_capacity(7);
        for column in Nutrients::COLUMNS {
            nutrients.push(float(column)?);
        }
        Some(Columns {
            foods,
            quantities,
            nutrients: nutrients.try_into().ok()?,
        })
    }

    /// The food of a row that lacks a nutrient, with the quantity eaten.
    fn wanting(&self, row: usize) -> Option<(&'a str, f64)> {
        let wants = self.nutrients.iter().any(|(_, n)| n.is_null(row));
        (wants && !self.foods.is_null(row) && !self.quantities.is_null(row))
            .then(|| (self.foods.value(row), self.quantities.value(row)))
    }
}

/// The food ids of a cleaned meals batch that enrichment needs, each once.
pub(crate) fn wanted(batch: &RecordBatch) -> Vec<String> {
    let Some(columns) = Columns::of(batch) else {
        return Vec::new();
    };
    let ids: BTreeSet<&str> = (0..batch.num_rows())
        .filter_map(|row| columns.wanting(row).map(|(food, _)| food))
        .collect();
    ids.into_iter().map(str::to_owned).collect()
}

/// What enrichment did to a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Enrichment {
    /// Rows that lacked a nutrient and had a food and a quantity.
    pub checked: u64,
    /// Rows that received at least one value.
    pub filled: u64,
    /// Rows whose food the table does not know.
    pub unknown: u64,
    /// Values filled, per nutrient.
    pub values: [u64; 7],
}

impl Enrichment {
    /// Fills the missing nutrients of a cleaned meals batch from `foods` (per 100 g, by id;
    /// `None` for ids known to be absent).
    pub(crate) fn apply(
        batch: RecordBatch,
        foods: &HashMap<String, Option<Nutrients>>,
    ) -> Result<(RecordBatch, Enrichment), ArrowError> {
        let mut done = Enrichment::default();
        let Some(columns) = Columns::of(&batch) else {
            return Ok((batch, done));
        };
        let mut filled: Vec<Vec<Option<f64>>> = columns
            .nutrients
            .iter()
            .map(|(_, n)| n.iter().collect())
            .collect();
        for row in 0..batch.num_rows() {
            let Some((food, grams)) = columns.wanting(row) else {
                continue;
            };
            done.checked += 1;
            let Some(Some(per_100g)) = foods.get(food) else {
                done.unknown += 1;
                continue;
            };
            let mut any = false;
            let computed = per_100g.scaled(grams).values();
            for ((column, value), count) in filled.iter_mut().zip(computed).zip(&mut done.values) {
                if let Some(value) = value
                    && column[row].is_none()
                {
                    column[row] = Some(value);
                    *count += 1;
                    any = true;
                }
            }
            done.filled += u64::from(any);
        }
        if done.filled == 0 {
            return Ok((batch, done));
        }
        let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
        for ((index, _), values) in columns.nutrients.iter().zip(filled) {
            arrays[*index] = Arc::new(Float64Array::from(values));
        }
        Ok((RecordBatch::try_new(batch.schema(), arrays)?, done))
    }

    /// Adds the counts to a cleaning's: rule `enrichment` (corrected = rows filled), rule
    /// `food` on `food_id` (flagged = unknown foods), and the completeness of the nutrients.
    pub(crate) fn record(&self, stats: &mut Stats) {
        let enrichment = stats.rules.entry((ROW.to_owned(), ENRICHMENT)).or_default();
        enrichment.checked += self.checked;
        enrichment.corrected += self.filled;
        let food = stats.rules.entry((FOOD_ID.to_owned(), FOOD)).or_default();
        food.checked += self.checked;
        food.flagged += self.unknown;
        for (column, count) in Nutrients::COLUMNS.iter().zip(self.values) {
            if let Some((present, _)) = stats.present.get_mut(*column) {
                *present += count;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// A meal: food, quantity, energy and protein as logged.
    type Meal<'a> = (Option<&'a str>, Option<f64>, Option<f64>, Option<f64>);

    fn meals(rows: &[Meal]) -> RecordBatch {
        let mut fields = vec![
            Field::new("meal", DataType::Utf8, false),
            Field::new(FOOD_ID, DataType::Utf8, false),
            Field::new(QUANTITY, DataType::Float64, true),
        ];
        fields.extend(
            Nutrients::COLUMNS
                .iter()
                .map(|c| Field::new(*c, DataType::Float64, true)),
        );
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["lunch"; rows.len()])),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.2))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.3))),
        ];
        for _ in 2..7 {
            columns.push(Arc::new(Float64Array::from(vec![None; rows.len()])));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    fn column(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .collect()
    }

    #[test]
    fn foods_enrichment_fills_missing_nutrients_from_the_food() {
        let oats = Nutrients {
            energy_kcal: Some(379.0),
            protein_g: Some(13.2),
            fat_g: Some(6.5),
            ..Nutrients::default()
        };
        let foods = HashMap::from([("F001".to_owned(), Some(oats)), ("NOPE".to_owned(), None)]);
        let batch = meals(&[
            (Some("F001"), Some(50.0), None, None),
            (Some("F001"), Some(50.0), Some(100.0), None),
            (Some("NOPE"), Some(50.0), None, None),
            (Some("F001"), None, None, None),
        ]);
        assert_eq!(wanted(&batch), ["F001", "NOPE"]);
        let (enriched, done) = Enrichment::apply(batch, &foods).unwrap();
        assert_eq!(
            column(&enriched, "energy_kcal"),
            [Some(189.5), Some(100.0), None, None],
            "the log's value wins; no quantity, nothing computed"
        );
        assert_eq!(
            column(&enriched, "protein_g"),
            [Some(6.6), Some(6.6), None, None]
        );
        assert_eq!(
            column(&enriched, "fat_g"),
            [Some(3.25), Some(3.25), None, None]
        );
        assert_eq!(
            column(&enriched, "carbs_g"),
            [None; 4],
            "what the food lacks stays missing"
        );
        assert_eq!(
            done,
            Enrichment {
                checked: 3,
                filled: 2,
                unknown: 1,
                values: [1, 2, 0, 2, 0, 0, 0],
            }
        );

        let mut stats = Stats::default();
        stats.present.insert("energy_kcal".into(), (1, 4));
        done.record(&mut stats);
        assert_eq!(stats.rules[&(ROW.to_owned(), ENRICHMENT)].corrected, 2);
        assert_eq!(stats.rules[&(FOOD_ID.to_owned(), FOOD)].flagged, 1);
        assert_eq!(stats.present["energy_kcal"], (2, 4));
    }

    #[test]
    fn foods_enrichment_leaves_complete_rows_and_other_layouts_alone() {
        let batch = meals(&[]);
        let (same, done) = Enrichment::apply(batch.clone(), &HashMap::new()).unwrap();
        assert_eq!(same, batch);
        assert_eq!(done, Enrichment::default());
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "bpm",
                DataType::Float64,
                true,
            )])),
            vec![Arc::new(Float64Array::from(vec![Some(60.0)]))],
        )
        .unwrap();
        assert!(wanted(&other).is_empty());
    }
}
