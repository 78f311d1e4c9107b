use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlCatalog;
use crate::{Error, Result, db::Row, interface::ErasureRepo, model::*};

macro_rules! erasure_columns {
    () => {
        "id, org_id, subject_id, requested_by, requested_at, status, completed_at, \
         files_rewritten, rows_removed, error"
    };
}

fn request(row: &Row) -> Result<ErasureRequest> {
    Ok(ErasureRequest {
        id: ErasureId(row.i64("id")?),
        org: OrgId(row.i64("org_id")?),
        subject: SubjectId(row.i64("subject_id")?),
        requested_by: row.opt_i64("requested_by")?.map(UserId),
        requested_at: row.timestamp("requested_at")?,
        status: row.parsed("status")?,
        completed_at: row.opt_timestamp("completed_at")?,
        files_rewritten: row.opt_i64("files_rewritten")?,
        rows_removed: row.opt_i64("rows_removed")?,
        error: row.opt_text("error")?,
    })
}

#[async_trait]
impl ErasureRepo for SqlCatalog {
    async fn request(
        &self,
        subject: SubjectId,
        requested_by: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<ErasureRequest> {
        let mut tx = self.begin().await?;
        let org = tx
            .query_opt(
                "SELECT org_id FROM subjects WHERE id = $1",
                &[subject.0.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("subject", subject))?
            .i64("org_id")?;
        let open = tx
            .query_opt(
                "SELECT status FROM erasure_requests WHERE subject_id = $1 \
                 AND status IN ('pending', 'completed') ORDER BY id DESC LIMIT 1",
                &[subject.0.into()],
            )
            .await?;
        if let Some(row) = open {
            return Err(Error::Conflict(format!(
                "subject {subject} already has a {} erasure request",
                row.text("status")?
            )));
        }
        tx.execute(
            "UPDATE subjects SET erased_at = COALESCE(erased_at, $2), display_name = NULL, \
             email = NULL WHERE id = $1",
            &[subject.0.into(), now.into()],
        )
        .await?;
        // The member account of the subject holds personal identifiers too: close it.
        tx.execute(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
             AND user_id IN (SELECT id FROM users WHERE subject_id = $1)",
            &[subject.0.into(), now.into()],
        )
        .await?;
        tx.execute(
            "UPDATE users SET disabled = TRUE, display_name = NULL, password_hash = NULL, \
             email = 'erased-user-' || id || '@invalid' WHERE subject_id = $1",
            &[subject.0.into()],
        )
        .await?;
        let row = tx
            .query_one(
                concat!(
                    "INSERT INTO erasure_requests (org_id, subject_id, requested_by, requested_at, \
                     status) VALUES ($1, $2, $3, $4, 'pending') RETURNING ",
                    erasure_columns!()
                ),
                &[
                    org.into(),
                    subject.0.into(),
                    requested_by.map(|u| u.0).into(),
                    now.into(),
                ],
            )
            .await
            .map_err(|e| e.on("erasure request for subject", subject))?;
        tx.commit().await?;
        request(&row)
    }

    async fn pending(&self) -> Result<Vec<ErasureRequest>> {
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    erasure_columns!(),
                    " FROM erasure_requests WHERE status = 'pending' ORDER BY requested_at, id"
                ),
                &[],
            )
            .await?
            .iter()
            .map(request)
            .collect()
    }

    async fn complete(
        &self,
        id: ErasureId,
        files_rewritten: i64,
        rows_removed: i64,
        now: DateTime<Utc>,
    ) -> Result<ErasureRequest> {
        if files_rewritten < 0 || rows_removed < 0 {
            return Err(Error::invalid("erasure counts", "cannot be negative"));
        }
        self.finish(
            id,
            concat!(
                "UPDATE erasure_requests SET status = 'completed', completed_at = $2, \
                 files_rewritten = $3, rows_removed = $4 WHERE id = $1 AND status = 'pending' \
                 RETURNING ",
                erasure_columns!()
            ),
            &[
                id.0.into(),
                now.into(),
                files_rewritten.into(),
                rows_removed.into(),
            ],
        )
        .await
    }

    async fn fail(&self, id: ErasureId, error: &str) -> Result<ErasureRequest> {
        self.finish(
            id,
            concat!(
                "UPDATE erasure_requests SET status = 'failed', error = $2 \
                 WHERE id = $1 AND status = 'pending' RETURNING ",
                erasure_columns!()
            ),
            &[id.0.into(), error.into()],
        )
        .await
    }

    async fn list(&self, org: OrgId) -> Result<Vec<ErasureRequest>> {
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    erasure_columns!(),
                    " FROM erasure_requests WHERE org_id = $1 ORDER BY requested_at, id"
                ),
                &[org.0.into()],
            )
            .await?
            .iter()
            .map(request)
            .collect()
    }
}

impl SqlCatalog {
    /// Ends a pending request with `sql`, or says why it cannot be ended.
    async fn finish(
        &self,
        id: ErasureId,
        sql: &str,
        params: &[crate::db::Value],
    ) -> Result<ErasureRequest> {
        let mut tx = self.begin().await?;
        let Some(row) = tx.query_opt(sql, params).await? else {
            let current = tx
                .query_opt(
                    "SELECT status FROM erasure_requests WHERE id = $1",
                    &[id.0.into()],
                )
                .await?;
            return Err(match current {
                Some(row) => Error::Conflict(format!(
                    "erasure request {id} is already {}",
                    row.text("status")?
                )),
                None => Error::not_found("erasure request", id),
            });
        };
        tx.commit().await?;
        request(&row)
    }
}
