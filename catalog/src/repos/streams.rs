use std::collections::HashMap;

use async_trait::async_trait;

use super::SqlCatalog;
use crate::{
    Error, Result,
    db::{DbError, Row, Tx},
    interface::StreamRepo,
    model::*,
    validate,
};

macro_rules! stream_columns {
    () => {
        "s.id, s.org_id, s.name, s.kind, s.standard, s.description, s.schema_version, \
         s.retention_days, s.max_duration_seconds, s.created_at"
    };
}

macro_rules! column_columns {
    () => {
        "c.stream_id, c.name, c.arrow_type, c.unit, c.role, c.nullable, c.plausible_min, \
         c.plausible_max, c.allowed_values, c.description"
    };
}

fn stream(row: &Row, columns: Vec<StreamColumn>) -> Result<Stream> {
    Ok(Stream {
        id: StreamId(row.i64("id")?),
        org: OrgId(row.i64("org_id")?),
        name: row.text("name")?,
        kind: row.parsed("kind")?,
        standard: row.bool("standard")?,
        description: row.text("description")?,
        schema_version: row.i64("schema_version")?,
        retention_days: row.opt_i64("retention_days")?,
        max_duration_seconds: row.opt_i64("max_duration_seconds")?,
        columns,
        created_at: row.timestamp("created_at")?,
    })
}

fn column(row: &Row) -> Result<StreamColumn> {
    let allowed_values = row
        .opt_text("allowed_values")?
        .map(|json| {
            serde_json::from_str(&json).map_err(|e| {
                Error::invalid(
                    "stored allowed values",
                    format!("'{json}' is not a JSON list: {e}"),
                )
            })
        })
        .transpose()?;
    Ok(StreamColumn {
        name: row.text("name")?,
        arrow_type: row.parsed("arrow_type")?,
        unit: row.opt_text("unit")?,
        role: row.parsed("role")?,
        nullable: row.bool("nullable")?,
        plausible_min: row.opt_f64("plausible_min")?,
        plausible_max: row.opt_f64("plausible_max")?,
        allowed_values,
        description: row.text("description")?,
    })
}

/// Reads streams and their columns; the two queries select the same streams.
async fn load(tx: &mut dyn Tx, scope: Scope<'_>) -> Result<Vec<Stream>> {
    let (streams_sql, columns_sql, params) = match scope {
        Scope::Org(org) => (
            concat!(
                "SELECT ",
                stream_columns!(),
                " FROM streams s WHERE s.org_id = $1 ORDER BY s.name"
            ),
            concat!(
                "SELECT ",
                column_columns!(),
                " FROM stream_columns c JOIN streams s ON s.id = c.stream_id \
                 WHERE s.org_id = $1 ORDER BY c.stream_id, c.position"
            ),
            vec![org.0.into()],
        ),
        Scope::Name(org, name) => (
            concat!(
                "SELECT ",
                stream_columns!(),
                " FROM streams s WHERE s.org_id = $1 AND s.name = $2"
            ),
            concat!(
                "SELECT ",
                column_columns!(),
                " FROM stream_columns c JOIN streams s ON s.id = c.stream_id \
                 WHERE s.org_id = $1 AND s.name = $2 ORDER BY c.position"
            ),
            vec![org.0.into(), name.into()],
        ),
        Scope::Id(id) => (
            concat!(
                "SELECT ",
                stream_columns!(),
                " FROM streams s WHERE s.id = $1"
            ),
            concat!(
                "SELECT ",
                column_columns!(),
                " FROM stream_columns c WHERE c.stream_id = $1 ORDER BY c.position"
            ),
            vec![id.0.into()],
        ),
    };
    let rows = tx.query(streams_sql, &params).await?;
    let mut columns: HashMap<i64, Vec<StreamColumn>> = HashMap::new();
    for row in tx.query(columns_sql, &params).await? {
        columns
            .entry(row.i64("stream_id")?)
            .or_default()
            .push(column(&row)?);
    }
    rows.iter()
        .map(|row| stream(row, columns.remove(&row.i64("id")?).unwrap_or_default()))
        .collect()
}

enum Scope<'a> {
    Org(OrgId),
    Name(OrgId, &'a str),
    Id(StreamId),
}

#[async_trait]
impl StreamRepo for SqlCatalog {
    async fn list(&self, org: OrgId) -> Result<Vec<Stream>> {
        let mut conn = self.connection().await?;
        load(&mut *conn, Scope::Org(org)).await
    }

    async fn get(&self, org: OrgId, name: &str) -> Result<Stream> {
        let mut conn = self.connection().await?;
        load(&mut *conn, Scope::Name(org, name))
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("stream", name))
    }

    async fn get_by_id(&self, id: StreamId) -> Result<Stream> {
        let mut conn = self.connection().await?;
        load(&mut *conn, Scope::Id(id))
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("stream", id))
    }

    async fn register(&self, org: OrgId, new: NewStream) -> Result<Stream> {
        validate::stream(&new)?;
        let mut tx = self.begin().await?;
        let row = tx
            .query_one(
                "INSERT INTO streams (org_id, name, kind, standard, description, retention_days, \
                 max_duration_seconds) VALUES ($1, $2, $3, FALSE, $4, $5, $6) RETURNING id",
                &[
                    org.0.into(),
                    new.name.as_str().into(),
                    new.kind.as_str().into(),
                    new.description.into(),
                    new.retention_days.into(),
                    new.max_duration_seconds.into(),
                ],
            )
            .await
            .map_err(|e| match e {
                DbError::ForeignKey(_) => Error::not_found("organization", org),
                other => other.on("stream", &new.name),
            })?;
        let id = StreamId(row.i64("id")?);
        for (position, c) in new.columns.iter().enumerate() {
            let allowed = c
                .allowed_values
                .as_ref()
                .map(|values| serde_json::Value::from(values.clone()).to_string());
            tx.execute(
                "INSERT INTO stream_columns (stream_id, position, name, arrow_type, unit, role, \
                 nullable, plausible_min, plausible_max, allowed_values, description) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    id.0.into(),
                    (position as i64).into(),
                    c.name.as_str().into(),
                    c.arrow_type.as_str().into(),
                    c.unit.clone().into(),
                    c.role.as_str().into(),
                    c.nullable.into(),
                    c.plausible_min.into(),
                    c.plausible_max.into(),
                    allowed.into(),
                    c.description.as_str().into(),
                ],
            )
            .await
            .map_err(|e| e.on("stream column", &c.name))?;
        }
        let stream = load(&mut *tx, Scope::Id(id)).await?.pop();
        tx.commit().await?;
        stream.ok_or_else(|| Error::not_found("stream", id))
    }

    async fn set_retention(&self, id: StreamId, days: Option<i64>) -> Result<Stream> {
        validate::positive("retention days", days)?;
        let mut tx = self.begin().await?;
        let changed = tx
            .execute(
                "UPDATE streams SET retention_days = $2 WHERE id = $1",
                &[id.0.into(), days.into()],
            )
            .await?;
        if changed == 0 {
            return Err(Error::not_found("stream", id));
        }
        let stream = load(&mut *tx, Scope::Id(id)).await?.pop();
        tx.commit().await?;
        stream.ok_or_else(|| Error::not_found("stream", id))
    }
}
