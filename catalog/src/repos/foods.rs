use std::fmt::Write;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{SqlCatalog, numbered_list};
use crate::{
    Result,
    db::{Row, Value},
    interface::FoodRepo,
    model::*,
    validate,
};

/// Foods per INSERT statement: 13 parameters each stays under SQLite's 32 766.
const UPSERT_CHUNK: usize = 1000;
const UPSERT_PARAMS: usize = 13;
/// Ids per lookup statement.
const GET_CHUNK: usize = 1000;

const COLUMNS: &str = "id, source, name, brand, energy_kcal, protein_g, carbs_g, fat_g, fiber_g, \
                       sugars_g, sodium_mg";

fn food(row: &Row) -> Result<Food> {
    let mut values = [None; 7];
    for (slot, column) in values.iter_mut().zip(Nutrients::COLUMNS) {
        *slot = row.opt_f64(column)?;
    }
    Ok(Food {
        id: row.text("id")?,
        source: row.text("source")?,
        name: row.text("name")?,
        brand: row.opt_text("brand")?,
        per_100g: Nutrients::from_values(values),
    })
}

fn upsert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO foods (org_id, {COLUMNS}, updated_at) VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..UPSERT_PARAMS {
            let separator = if column == 0 { "" } else { ", " };
            let _ = write!(sql, "{separator}${}", row * UPSERT_PARAMS + column + 1);
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (org_id, id) DO UPDATE SET source = excluded.source, ");
    sql.push_str("name = excluded.name, brand = excluded.brand, ");
    for column in Nutrients::COLUMNS {
        let _ = write!(sql, "{column} = excluded.{column}, ");
    }
    sql.push_str("updated_at = excluded.updated_at");
    sql
}

#[async_trait]
impl FoodRepo for SqlCatalog {
    async fn upsert(&self, org: OrgId, foods: Vec<Food>, now: DateTime<Utc>) -> Result<u64> {
        let mut foods = foods
            .into_iter()
            .map(validate::food)
            .collect::<Result<Vec<_>>>()?;
        // One statement cannot touch a row twice (PostgreSQL refuses it): the last of a
        // repeated id wins, as a later load would.
        foods.reverse();
        let mut seen = std::collections::HashSet::new();
        foods.retain(|f| seen.insert(f.id.clone()));
        foods.reverse();
        let written = foods.len() as u64;
        let mut tx = self.begin().await?;
        for chunk in foods.chunks(UPSERT_CHUNK) {
            let mut params = Vec::with_capacity(chunk.len() * UPSERT_PARAMS);
            for f in chunk {
                params.extend([
                    Value::from(org.0),
                    f.id.clone().into(),
                    f.source.clone().into(),
                    f.name.clone().into(),
                    f.brand.clone().into(),
                ]);
                params.extend(f.per_100g.values().map(Value::from));
                params.push(Value::Timestamp(now));
            }
            tx.execute(&upsert_sql(chunk.len()), &params)
                .await
                .map_err(|e| e.on("food", &chunk[0].id))?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn get(&self, org: OrgId, ids: &[String]) -> Result<Vec<Food>> {
        let mut foods = Vec::new();
        let mut connection = self.connection().await?;
        for chunk in ids.chunks(GET_CHUNK) {
            let sql = format!(
                "SELECT {COLUMNS} FROM foods WHERE org_id = $1 AND id IN ({})",
                numbered_list(2, chunk.len(), |n| format!("${n}"))
            );
            let params: Vec<Value> = std::iter::once(Value::from(org.0))
                .chain(chunk.iter().map(|id| Value::from(id.clone())))
                .collect();
            for row in connection.query(&sql, &params).await? {
                foods.push(food(&row)?);
            }
        }
        foods.sort_by(|a, b| a.id.cmp(&b.id));
        foods.dedup_by(|a, b| a.id == b.id);
        Ok(foods)
    }

    async fn list(&self, org: OrgId, limit: i64) -> Result<Vec<Food>> {
        validate::limit(limit)?;
        self.connection()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM foods WHERE org_id = $1 ORDER BY id LIMIT $2"),
                &[org.0.into(), limit.into()],
            )
            .await?
            .iter()
            .map(food)
            .collect()
    }
}
