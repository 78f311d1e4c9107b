use async_trait::async_trait;

use super::SqlCatalog;
use crate::{
    Error, Result,
    db::Row,
    interface::OrganizationRepo,
    model::{OrgId, Organization},
    validate,
};

fn organization(row: &Row) -> Result<Organization> {
    Ok(Organization {
        id: OrgId(row.i64("id")?),
        name: row.text("name")?,
        created_at: row.timestamp("created_at")?,
    })
}

#[async_trait]
impl OrganizationRepo for SqlCatalog {
    async fn create(&self, name: &str) -> Result<Organization> {
        validate::slug("organization name", name)?;
        let mut tx = self.begin().await?;
        let row = tx
            .query_one(
                "INSERT INTO organizations (name) VALUES ($1) RETURNING id, name, created_at",
                &[name.into()],
            )
            .await
            .map_err(|e| e.on("organization", name))?;
        tx.commit().await?;
        organization(&row)
    }

    async fn get(&self, name: &str) -> Result<Organization> {
        self.connection()
            .await?
            .query_opt(
                "SELECT id, name, created_at FROM organizations WHERE name = $1",
                &[name.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("organization", name))
            .and_then(|row| organization(&row))
    }

    async fn list(&self) -> Result<Vec<Organization>> {
        self.connection()
            .await?
            .query(
                "SELECT id, name, created_at FROM organizations ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(organization)
            .collect()
    }
}
