use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;

use super::SqlCatalog;
use crate::{
    Error, Result,
    db::{DbError, Row, Tx},
    interface::UserRepo,
    model::*,
    validate,
};

macro_rules! user_columns {
    () => {
        "id, org_id, email, display_name, password_hash, subject_id, disabled, created_at"
    };
}

fn user(row: &Row, roles: Vec<Role>, coach_of: Vec<GroupId>) -> Result<User> {
    Ok(User {
        id: UserId(row.i64("id")?),
        org: OrgId(row.i64("org_id")?),
        email: row.text("email")?,
        display_name: row.opt_text("display_name")?,
        password_hash: row.opt_text("password_hash")?.map(PasswordHash),
        roles,
        subject: row.opt_i64("subject_id")?.map(SubjectId),
        coach_of,
        disabled: row.bool("disabled")?,
        created_at: row.timestamp("created_at")?,
    })
}

/// Reads users with their roles and coached groups; `scope` selects users by id or by
/// organization, in the same way for the three queries.
async fn load(tx: &mut dyn Tx, scope: Scope) -> Result<Vec<User>> {
    let (users_sql, roles_sql, coaching_sql, key) = match scope {
        Scope::User(id) => (
            concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"),
            "SELECT ur.user_id, r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             WHERE ur.user_id = $1 ORDER BY r.id",
            "SELECT user_id, group_id FROM group_coaches WHERE user_id = $1 ORDER BY group_id",
            id.0,
        ),
        Scope::Org(org) => (
            concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE org_id = $1 ORDER BY email"
            ),
            "SELECT ur.user_id, r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             JOIN users u ON u.id = ur.user_id WHERE u.org_id = $1 ORDER BY r.id",
            "SELECT user_id, group_id FROM group_coaches WHERE org_id = $1 ORDER BY group_id",
            org.0,
        ),
    };
    let rows = tx.query(users_sql, &[key.into()]).await?;
    let mut roles: HashMap<i64, Vec<Role>> = HashMap::new();
    for row in tx.query(roles_sql, &[key.into()]).await? {
        roles
            .entry(row.i64("user_id")?)
            .or_default()
            .push(row.parsed("name")?);
    }
    let mut coaching: HashMap<i64, Vec<GroupId>> = HashMap::new();
    for row in tx.query(coaching_sql, &[key.into()]).await? {
        coaching
            .entry(row.i64("user_id")?)
            .or_default()
            .push(GroupId(row.i64("group_id")?));
    }
    rows.iter()
        .map(|row| {
            let id = row.i64("id")?;
            user(
                row,
                roles.remove(&id).unwrap_or_default(),
                coaching.remove(&id).unwrap_or_default(),
            )
        })
        .collect()
}

enum Scope {
    User(UserId),
    Org(OrgId),
}

async fn insert_role(tx: &mut dyn Tx, id: UserId, role: Role) -> Result<()> {
    tx.execute(
        "INSERT INTO user_roles (user_id, role_id) SELECT $1, id FROM roles WHERE name = $2 \
         ON CONFLICT (user_id, role_id) DO NOTHING",
        &[id.0.into(), role.as_str().into()],
    )
    .await
    .map_err(|e| e.on("user", id))?;
    Ok(())
}

pub(super) async fn insert_coach(tx: &mut dyn Tx, group: GroupId, user: UserId) -> Result<()> {
    let inserted = tx
        .execute(
            "INSERT INTO group_coaches (group_id, user_id, org_id) \
             SELECT $1, $2, org_id FROM groups WHERE id = $1 \
             ON CONFLICT (group_id, user_id) DO NOTHING",
            &[group.0.into(), user.0.into()],
        )
        .await
        .map_err(|e| match e {
            DbError::ForeignKey(_) => Error::invalid(
                "coach",
                format!("user {user} is not a user of the organization of group {group}"),
            ),
            other => other.into(),
        })?;
    if inserted == 0 {
        let exists = tx
            .query_opt(
                "SELECT 1 AS present FROM groups WHERE id = $1",
                &[group.0.into()],
            )
            .await?;
        if exists.is_none() {
            return Err(Error::not_found("group", group));
        }
    }
    Ok(())
}

#[async_trait]
impl UserRepo for SqlCatalog {
    async fn create(&self, new: NewUser) -> Result<User> {
        let email = validate::email(&new.email)?;
        let roles: BTreeSet<Role> = new.roles.iter().copied().collect();
        if roles.is_empty() {
            return Err(Error::invalid(
                format!("user {email}"),
                "needs at least one role",
            ));
        }
        if roles.contains(&Role::Member) && new.subject.is_none() {
            return Err(Error::invalid(
                format!("user {email}"),
                "a member must be linked to a subject",
            ));
        }
        if !new.coach_of.is_empty() && !roles.contains(&Role::Coach) {
            return Err(Error::invalid(
                format!("user {email}"),
                "only a coach can coach groups",
            ));
        }
        let mut tx = self.begin().await?;
        let row = tx
            .query_one(
                "INSERT INTO users (org_id, email, display_name, password_hash, subject_id) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    new.org.0.into(),
                    email.as_str().into(),
                    new.display_name.into(),
                    new.password_hash.map(|h| h.0).into(),
                    new.subject.map(|s| s.0).into(),
                ],
            )
            .await
            .map_err(|e| match (e, new.subject) {
                (DbError::ForeignKey(_), Some(subject)) => Error::invalid(
                    format!("user {email}"),
                    format!(
                        "subject {subject} is not a subject of organization {}",
                        new.org
                    ),
                ),
                (e, _) => e.on("user", &email),
            })?;
        let id = UserId(row.i64("id")?);
        for role in &roles {
            insert_role(&mut *tx, id, *role).await?;
        }
        for group in &new.coach_of {
            insert_coach(&mut *tx, *group, id).await?;
        }
        let user = load(&mut *tx, Scope::User(id)).await?.pop();
        tx.commit().await?;
        user.ok_or_else(|| Error::not_found("user", id))
    }

    async fn get(&self, id: UserId) -> Result<User> {
        let mut conn = self.connection().await?;
        load(&mut *conn, Scope::User(id))
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("user", id))
    }

    async fn get_by_email(&self, org: OrgId, email: &str) -> Result<User> {
        let normalized = validate::email(email)?;
        let mut conn = self.connection().await?;
        let row = conn
            .query_opt(
                "SELECT id FROM users WHERE org_id = $1 AND email = $2",
                &[org.0.into(), normalized.as_str().into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("user", &normalized))?;
        load(&mut *conn, Scope::User(UserId(row.i64("id")?)))
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("user", normalized))
    }

    async fn find_by_email(&self, email: &str) -> Result<Vec<User>> {
        let Ok(normalized) = validate::email(email) else {
            return Ok(Vec::new());
        };
        let mut conn = self.connection().await?;
        let ids = conn
            .query(
                "SELECT id FROM users WHERE email = $1 ORDER BY id",
                &[normalized.as_str().into()],
            )
            .await?;
        let mut users = Vec::with_capacity(ids.len());
        for row in ids {
            users.extend(load(&mut *conn, Scope::User(UserId(row.i64("id")?))).await?);
        }
        Ok(users)
    }

    async fn list(&self, org: OrgId) -> Result<Vec<User>> {
        let mut conn = self.connection().await?;
        load(&mut *conn, Scope::Org(org)).await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
        let changed = self
            .connection()
            .await?
            .execute(
                "UPDATE users SET disabled = $2 WHERE id = $1",
                &[id.0.into(), disabled.into()],
            )
            .await?;
        if changed == 0 {
            return Err(Error::not_found("user", id));
        }
        Ok(())
    }

    async fn set_password_hash(&self, id: UserId, hash: PasswordHash) -> Result<()> {
        let changed = self
            .connection()
            .await?
            .execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1",
                &[id.0.into(), hash.0.into()],
            )
            .await?;
        if changed == 0 {
            return Err(Error::not_found("user", id));
        }
        Ok(())
    }

    async fn grant_role(&self, id: UserId, role: Role) -> Result<()> {
        let mut tx = self.begin().await?;
        let row = tx
            .query_opt("SELECT subject_id FROM users WHERE id = $1", &[id.0.into()])
            .await?
            .ok_or_else(|| Error::not_found("user", id))?;
        if role == Role::Member && row.opt_i64("subject_id")?.is_none() {
            return Err(Error::invalid(
                format!("user {id}"),
                "a member must be linked to a subject",
            ));
        }
        insert_role(&mut *tx, id, role).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_role(&self, id: UserId, role: Role) -> Result<()> {
        self.connection()
            .await?
            .execute(
                "DELETE FROM user_roles WHERE user_id = $1 \
                 AND role_id = (SELECT id FROM roles WHERE name = $2)",
                &[id.0.into(), role.as_str().into()],
            )
            .await?;
        Ok(())
    }

    async fn permissions(&self, roles: &[Role]) -> Result<Vec<Permission>> {
        let rows = self
            .connection()
            .await?
            .query(
                "SELECT r.name AS role, p.name AS permission FROM role_permissions rp \
                 JOIN roles r ON r.id = rp.role_id JOIN permissions p ON p.id = rp.permission_id",
                &[],
            )
            .await?;
        let mut granted = BTreeSet::new();
        for row in rows {
            if roles.contains(&row.parsed::<Role>("role")?) {
                granted.insert(row.parsed::<Permission>("permission")?);
            }
        }
        Ok(granted.into_iter().collect())
    }
}
