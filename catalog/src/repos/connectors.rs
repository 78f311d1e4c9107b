use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlCatalog;
use crate::{
    Backend, Error, Result,
    db::{DbError, Row},
    interface::ConnectorRepo,
    model::*,
    validate,
};

macro_rules! connector_columns {
    () => {
        "id, org_id, name, kind, config, schedule_seconds, enabled, cursor, status, last_error, \
         last_run_at, next_run_at, lease_until, created_at"
    };
}

fn connector(row: &Row) -> Result<Connector> {
    Ok(Connector {
        id: ConnectorId(row.i64("id")?),
        org: OrgId(row.i64("org_id")?),
        name: row.text("name")?,
        kind: row.text("kind")?,
        config: row.json("config")?,
        schedule_seconds: row.i64("schedule_seconds")?,
        enabled: row.bool("enabled")?,
        cursor: row.opt_text("cursor")?,
        status: row.parsed("status")?,
        last_error: row.opt_text("last_error")?,
        last_run_at: row.opt_timestamp("last_run_at")?,
        next_run_at: row.timestamp("next_run_at")?,
        lease_until: row.opt_timestamp("lease_until")?,
        created_at: row.timestamp("created_at")?,
    })
}

#[async_trait]
impl ConnectorRepo for SqlCatalog {
    async fn create(&self, new: NewConnector) -> Result<Connector> {
        validate::slug("connector name", &new.name)?;
        validate::non_empty("connector kind", &new.kind)?;
        validate::positive("connector schedule (s)", Some(new.schedule_seconds))?;
        if !new.config.is_object() {
            return Err(Error::invalid(
                format!("connector {}", new.name),
                "its configuration must be a JSON object",
            ));
        }
        let mut tx = self.begin().await?;
        let row = tx
            .query_one(
                concat!(
                    "INSERT INTO connectors (org_id, name, kind, config, schedule_seconds, \
                     next_run_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
                    connector_columns!()
                ),
                &[
                    new.org.0.into(),
                    new.name.as_str().into(),
                    new.kind.into(),
                    new.config.into(),
                    new.schedule_seconds.into(),
                    new.first_run_at.into(),
                ],
            )
            .await
            .map_err(|e| match e {
                DbError::ForeignKey(_) => Error::not_found("organization", new.org),
                other => other.on("connector", &new.name),
            })?;
        tx.commit().await?;
        connector(&row)
    }

    async fn get(&self, id: ConnectorId) -> Result<Connector> {
        self.connection()
            .await?
            .query_opt(
                concat!(
                    "SELECT ",
                    connector_columns!(),
                    " FROM connectors WHERE id = $1"
                ),
                &[id.0.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("connector", id))
            .and_then(|row| connector(&row))
    }

    async fn get_by_name(&self, org: OrgId, name: &str) -> Result<Connector> {
        self.connection()
            .await?
            .query_opt(
                concat!(
                    "SELECT ",
                    connector_columns!(),
                    " FROM connectors WHERE org_id = $1 AND name = $2"
                ),
                &[org.0.into(), name.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("connector", name))
            .and_then(|row| connector(&row))
    }

    async fn list(&self, org: OrgId) -> Result<Vec<Connector>> {
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    connector_columns!(),
                    " FROM connectors WHERE org_id = $1 ORDER BY name"
                ),
                &[org.0.into()],
            )
            .await?
            .iter()
            .map(connector)
            .collect()
    }

    async fn set_enabled(&self, id: ConnectorId, enabled: bool) -> Result<()> {
        let changed = self
            .connection()
            .await?
            .execute(
                "UPDATE connectors SET enabled = $2 WHERE id = $1",
                &[id.0.into(), enabled.into()],
            )
            .await?;
        if changed == 0 {
            return Err(Error::not_found("connector", id));
        }
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Connector>> {
        let mut tx = self.begin().await?;
        // PostgreSQL: nodes claiming at once skip each other's rows. SQLite: write
        // transactions are serial already.
        let sql = match tx.backend() {
            Backend::Postgres => concat!(
                "UPDATE connectors SET status = 'running', lease_until = $2 WHERE id = \
                 (SELECT id FROM connectors WHERE enabled AND next_run_at <= $1 \
                  AND (lease_until IS NULL OR lease_until < $1) \
                  ORDER BY next_run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ",
                connector_columns!()
            ),
            Backend::Sqlite => concat!(
                "UPDATE connectors SET status = 'running', lease_until = $2 WHERE id = \
                 (SELECT id FROM connectors WHERE enabled AND next_run_at <= $1 \
                  AND (lease_until IS NULL OR lease_until < $1) \
                  ORDER BY next_run_at, id LIMIT 1) RETURNING ",
                connector_columns!()
            ),
        };
        let row = tx.query_opt(sql, &[now.into(), lease_until.into()]).await?;
        tx.commit().await?;
        row.as_ref().map(connector).transpose()
    }

    async fn claim(
        &self,
        id: ConnectorId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Connector> {
        let mut tx = self.begin().await?;
        let row = tx
            .query_opt(
                concat!(
                    "UPDATE connectors SET status = 'running', lease_until = $3 WHERE id = $1 \
                     AND (lease_until IS NULL OR lease_until < $2) RETURNING ",
                    connector_columns!()
                ),
                &[id.0.into(), now.into(), lease_until.into()],
            )
            .await?;
        let Some(row) = row else {
            let leased = tx
                .query_opt(
                    "SELECT name, lease_until FROM connectors WHERE id = $1",
                    &[id.0.into()],
                )
                .await?;
            return Err(match leased {
                Some(row) => Error::Conflict(format!(
                    "connector {} is running elsewhere{}",
                    row.text("name")?,
                    row.opt_timestamp("lease_until")?
                        .map(|t| format!(" (its lease ends at {})", t.to_rfc3339()))
                        .unwrap_or_default()
                )),
                None => Error::not_found("connector", id),
            });
        };
        tx.commit().await?;
        connector(&row)
    }

    async fn finish_run(&self, id: ConnectorId, run: ConnectorRun) -> Result<Connector> {
        let status = if run.error.is_some() {
            ConnectorStatus::Failed
        } else {
            ConnectorStatus::Ok
        };
        let mut tx = self.begin().await?;
        let row = tx
            .query_opt(
                concat!(
                    "UPDATE connectors SET status = $2, last_error = $3, \
                     cursor = COALESCE($4, cursor), last_run_at = $5, next_run_at = $6, \
                     lease_until = NULL WHERE id = $1 AND status = 'running' RETURNING ",
                    connector_columns!()
                ),
                &[
                    id.0.into(),
                    status.as_str().into(),
                    run.error.into(),
                    run.cursor.into(),
                    run.finished_at.into(),
                    run.next_run_at.into(),
                ],
            )
            .await?;
        let Some(row) = row else {
            let exists = tx
                .query_opt(
                    "SELECT 1 AS present FROM connectors WHERE id = $1",
                    &[id.0.into()],
                )
                .await?;
            return Err(match exists {
                Some(_) => Error::Conflict(format!("connector {id} has no run in progress")),
                None => Error::not_found("connector", id),
            });
        };
        tx.commit().await?;
        connector(&row)
    }
}
