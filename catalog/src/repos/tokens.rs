use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::SqlCatalog;
use crate::{
    Error, Result, TokenRejection,
    db::{DbError, Row, Tx},
    interface::TokenRepo,
    model::*,
};

macro_rules! token_columns {
    () => {
        "id, user_id, family_id, issued_at, expires_at, revoked_at, replaced_by"
    };
}

fn token(row: &Row) -> Result<RefreshToken> {
    Ok(RefreshToken {
        id: RefreshTokenId(row.i64("id")?),
        user: UserId(row.i64("user_id")?),
        family: row.uuid("family_id")?,
        issued_at: row.timestamp("issued_at")?,
        expires_at: row.timestamp("expires_at")?,
        revoked_at: row.opt_timestamp("revoked_at")?,
        replaced_by: row.opt_i64("replaced_by")?.map(RefreshTokenId),
    })
}

async fn insert(
    tx: &mut dyn Tx,
    user: UserId,
    family: Uuid,
    hash: TokenHash,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<RefreshToken> {
    if expires_at <= issued_at {
        return Err(Error::invalid(
            "refresh token",
            "expires before it is issued",
        ));
    }
    let row = tx
        .query_one(
            concat!(
                "INSERT INTO refresh_tokens (user_id, family_id, token_hash, issued_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING ",
                token_columns!()
            ),
            &[
                user.0.into(),
                family.into(),
                hash.as_bytes().as_slice().into(),
                issued_at.into(),
                expires_at.into(),
            ],
        )
        .await
        .map_err(|e| match e {
            DbError::ForeignKey(_) => Error::not_found("user", user),
            other => other.on("refresh token", "with this hash"),
        })?;
    token(&row)
}

#[async_trait]
impl TokenRepo for SqlCatalog {
    async fn issue(
        &self,
        user: UserId,
        hash: TokenHash,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<RefreshToken> {
        let mut tx = self.begin().await?;
        let issued = insert(&mut *tx, user, Uuid::new_v4(), hash, issued_at, expires_at).await?;
        tx.commit().await?;
        Ok(issued)
    }

    async fn rotate(
        &self,
        presented: TokenHash,
        replacement: TokenHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<RefreshToken> {
        let mut tx = self.begin().await?;
        // Revoking first, guarded by "still valid", is what makes rotation atomic: of two
        // concurrent rotations only one finds the token unrevoked.
        let claimed = tx
            .query_opt(
                "UPDATE refresh_tokens SET revoked_at = $2 \
                 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2 \
                 RETURNING id, user_id, family_id",
                &[presented.as_bytes().as_slice().into(), now.into()],
            )
            .await?;
        let Some(old) = claimed else {
            let found = tx
                .query_opt(
                    concat!(
                        "SELECT ",
                        token_columns!(),
                        " FROM refresh_tokens WHERE token_hash = $1"
                    ),
                    &[presented.as_bytes().as_slice().into()],
                )
                .await?;
            let rejection = match found.as_ref().map(token).transpose()? {
                None => TokenRejection::Unknown,
                Some(t) if t.replaced_by.is_some() => {
                    tx.execute(
                        "UPDATE refresh_tokens SET revoked_at = $2 \
                         WHERE family_id = $1 AND revoked_at IS NULL",
                        &[t.family.into(), now.into()],
                    )
                    .await?;
                    tx.commit().await?;
                    TokenRejection::Reused
                }
                Some(t) if t.revoked_at.is_some() => TokenRejection::Revoked,
                Some(_) => TokenRejection::Expired,
            };
            return Err(Error::RefreshToken(rejection));
        };
        let user = UserId(old.i64("user_id")?);
        let new = insert(
            &mut *tx,
            user,
            old.uuid("family_id")?,
            replacement,
            now,
            expires_at,
        )
        .await?;
        tx.execute(
            "UPDATE refresh_tokens SET replaced_by = $2 WHERE id = $1",
            &[old.i64("id")?.into(), new.id.0.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(new)
    }

    async fn find(&self, hash: TokenHash) -> Result<Option<RefreshToken>> {
        self.connection()
            .await?
            .query_opt(
                concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM refresh_tokens WHERE token_hash = $1"
                ),
                &[hash.as_bytes().as_slice().into()],
            )
            .await?
            .as_ref()
            .map(token)
            .transpose()
    }

    async fn revoke_family(&self, hash: TokenHash, now: DateTime<Utc>) -> Result<u64> {
        Ok(self
            .connection()
            .await?
            .execute(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
                 AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
                &[hash.as_bytes().as_slice().into(), now.into()],
            )
            .await?)
    }

    async fn revoke_all_for_user(&self, user: UserId, now: DateTime<Utc>) -> Result<u64> {
        Ok(self
            .connection()
            .await?
            .execute(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                &[user.0.into(), now.into()],
            )
            .await?)
    }

    async fn delete_expired(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(self
            .connection()
            .await?
            .execute(
                "DELETE FROM refresh_tokens WHERE expires_at < $1",
                &[before.into()],
            )
            .await?)
    }
}
