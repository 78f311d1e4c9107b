use async_trait::async_trait;

use super::SqlCatalog;
use crate::{
    Error, Result,
    db::{DbError, Row},
    interface::GoalRepo,
    model::*,
    validate,
};

macro_rules! goal_columns {
    () => {
        "id, org_id, subject_id, metric, target, comparator, period, starts_on, ends_on, created_at"
    };
}

fn goal(row: &Row) -> Result<Goal> {
    Ok(Goal {
        id: GoalId(row.i64("id")?),
        org: OrgId(row.i64("org_id")?),
        subject: SubjectId(row.i64("subject_id")?),
        metric: row.text("metric")?,
        target: row.f64("target")?,
        comparator: row.parsed("comparator")?,
        period: row.parsed("period")?,
        starts_on: row.date("starts_on")?,
        ends_on: row.opt_date("ends_on")?,
        created_at: row.timestamp("created_at")?,
    })
}

#[async_trait]
impl GoalRepo for SqlCatalog {
    async fn create(&self, new: NewGoal) -> Result<Goal> {
        validate::identifier("goal metric", &new.metric)?;
        validate::date_range(new.starts_on, new.ends_on)?;
        if !new.target.is_finite() {
            return Err(Error::invalid(
                "goal target",
                format!("{} is not a number", new.target),
            ));
        }
        let mut tx = self.begin().await?;
        let row = tx
            .query_one(
                concat!(
                    "INSERT INTO goals (org_id, subject_id, metric, target, comparator, period, \
                     starts_on, ends_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
                    goal_columns!()
                ),
                &[
                    new.org.0.into(),
                    new.subject.0.into(),
                    new.metric.as_str().into(),
                    new.target.into(),
                    new.comparator.as_str().into(),
                    new.period.as_str().into(),
                    new.starts_on.into(),
                    new.ends_on.into(),
                ],
            )
            .await
            .map_err(|e| match e {
                DbError::ForeignKey(_) => Error::invalid(
                    "goal",
                    format!(
                        "subject {} is not a subject of organization {}",
                        new.subject, new.org
                    ),
                ),
                other => other.on("goal", &new.metric),
            })?;
        tx.commit().await?;
        goal(&row)
    }

    async fn list(&self, org: OrgId) -> Result<Vec<Goal>> {
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    goal_columns!(),
                    " FROM goals WHERE org_id = $1 ORDER BY subject_id, id"
                ),
                &[org.0.into()],
            )
            .await?
            .iter()
            .map(goal)
            .collect()
    }

    async fn list_for_subject(&self, subject: SubjectId) -> Result<Vec<Goal>> {
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    goal_columns!(),
                    " FROM goals WHERE subject_id = $1 ORDER BY id"
                ),
                &[subject.0.into()],
            )
            .await?
            .iter()
            .map(goal)
            .collect()
    }

    async fn delete(&self, id: GoalId) -> Result<()> {
        let deleted = self
            .connection()
            .await?
            .execute("DELETE FROM goals WHERE id = $1", &[id.0.into()])
            .await?;
        if deleted == 0 {
            return Err(Error::not_found("goal", id));
        }
        Ok(())
    }
}
