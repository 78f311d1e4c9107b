use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlCatalog;
use crate::{Result, db::Row, interface::AuditRepo, model::*, validate};

fn record(row: &Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: AuditId(row.i64("id")?),
        entry: AuditEntry {
            org: OrgId(row.i64("org_id")?),
            at: row.timestamp("at")?,
            user: row.opt_i64("user_id")?.map(UserId),
            actor: row.text("actor")?,
            action: row.text("action")?,
            interface: row.text("interface")?,
            statement: row.opt_text("statement")?,
            subject: row.opt_i64("subject_id")?.map(SubjectId),
            rows: row.opt_i64("rows")?,
            outcome: row.parsed("outcome")?,
            detail: row.opt_text("detail")?,
        },
    })
}

#[async_trait]
impl AuditRepo for SqlCatalog {
    async fn append(&self, entries: Vec<AuditEntry>) -> Result<()> {
        for e in &entries {
            validate::non_empty("audit actor", &e.actor)?;
            validate::non_empty("audit action", &e.action)?;
            validate::non_empty("audit interface", &e.interface)?;
        }
        let mut tx = self.begin().await?;
        for e in entries {
            tx.execute(
                "INSERT INTO audit_log (org_id, at, user_id, actor, action, interface, statement, \
                 subject_id, rows, outcome, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    e.org.0.into(),
                    e.at.into(),
                    e.user.map(|u| u.0).into(),
                    e.actor.as_str().into(),
                    e.action.into(),
                    e.interface.into(),
                    e.statement.into(),
                    e.subject.map(|s| s.0).into(),
                    e.rows.into(),
                    e.outcome.as_str().into(),
                    e.detail.into(),
                ],
            )
            .await
            .map_err(|err| err.on("audit entry", &e.actor))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list(&self, org: OrgId, since: DateTime<Utc>, limit: i64) -> Result<Vec<AuditRecord>> {
        self.connection()
            .await?
            .query(
                "SELECT id, org_id, at, user_id, actor, action, interface, statement, subject_id, \
                 rows, outcome, detail FROM audit_log WHERE org_id = $1 AND at >= $2 \
                 ORDER BY at, id LIMIT $3",
                &[org.0.into(), since.into(), limit.into()],
            )
            .await?
            .iter()
            .map(record)
            .collect()
    }
}
