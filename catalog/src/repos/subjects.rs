use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use super::{SqlCatalog, numbered_list, users::insert_coach};
use crate::{
    Error, Result,
    db::{DbError, Row, Tx, Value},
    interface::SubjectRepo,
    model::*,
    validate,
};

macro_rules! subject_columns {
    () => {
        "id, org_id, pseudonym, display_name, email, sex, birth_year, height_cm, max_hr, \
         timezone, created_at, erased_at"
    };
}

fn subject(row: &Row) -> Result<Subject> {
    Ok(Subject {
        id: SubjectId(row.i64("id")?),
        org: OrgId(row.i64("org_id")?),
        pseudonym: row.text("pseudonym")?,
        profile: SubjectProfile {
            display_name: row.opt_text("display_name")?,
            email: row.opt_text("email")?,
            sex: row.opt_parsed("sex")?,
            birth_year: row.opt_i64("birth_year")?,
            height_cm: row.opt_f64("height_cm")?,
            max_hr: row.opt_i64("max_hr")?,
            timezone: row.text("timezone")?,
        },
        created_at: row.timestamp("created_at")?,
        erased_at: row.opt_timestamp("erased_at")?,
    })
}

/// Pseudonyms bound in one statement of `ensure`, well under the backends' parameter limits.
const PSEUDONYMS_PER_STATEMENT: usize = 500;

/// The subjects of an organization with these pseudonyms, those it has.
async fn named(db: &mut dyn Tx, org: OrgId, pseudonyms: &[&str]) -> Result<Vec<Subject>> {
    let sql = format!(
        "SELECT {} FROM subjects WHERE org_id = $1 AND pseudonym IN ({})",
        subject_columns!(),
        numbered_list(2, pseudonyms.len(), |n| format!("${n}"))
    );
    db.query(&sql, &with_org(org, pseudonyms))
        .await?
        .iter()
        .map(subject)
        .collect()
}

/// The parameters of a statement about these pseudonyms: `$1` the organization, then them.
fn with_org(org: OrgId, pseudonyms: &[&str]) -> Vec<Value> {
    std::iter::once(Value::from(org.0))
        .chain(pseudonyms.iter().map(|p| Value::from(*p)))
        .collect()
}

fn group(row: &Row) -> Result<Group> {
    Ok(Group {
        id: GroupId(row.i64("id")?),
        org: OrgId(row.i64("org_id")?),
        name: row.text("name")?,
        kind: row.parsed("kind")?,
        description: row.text("description")?,
        created_at: row.timestamp("created_at")?,
    })
}

fn normalized(mut profile: SubjectProfile) -> Result<SubjectProfile> {
    validate::profile(&profile)?;
    profile.email = profile.email.as_deref().map(validate::email).transpose()?;
    Ok(profile)
}

#[async_trait]
impl SubjectRepo for SqlCatalog {
    async fn create(
        &self,
        org: OrgId,
        pseudonym: &str,
        profile: SubjectProfile,
    ) -> Result<Subject> {
        validate::pseudonym(pseudonym)?;
        let p = normalized(profile)?;
        let mut tx = self.begin().await?;
        let row = tx
            .query_one(
                concat!(
                    "INSERT INTO subjects (org_id, pseudonym, display_name, email, sex, birth_year, \
                     height_cm, max_hr, timezone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     RETURNING ",
                    subject_columns!()
                ),
                &[
                    org.0.into(),
                    pseudonym.into(),
                    p.display_name.into(),
                    p.email.into(),
                    p.sex.map(Sex::as_str).into(),
                    p.birth_year.into(),
                    p.height_cm.into(),
                    p.max_hr.into(),
                    p.timezone.into(),
                ],
            )
            .await
            .map_err(|e| e.on("subject", pseudonym))?;
        tx.commit().await?;
        subject(&row)
    }

    async fn ensure(&self, org: OrgId, pseudonyms: &[String]) -> Result<Vec<Subject>> {
        let unique: BTreeSet<&str> = pseudonyms.iter().map(String::as_str).collect();
        for p in &unique {
            validate::pseudonym(p)?;
        }
        let unique: Vec<&str> = unique.into_iter().collect();
        // An import names mostly known subjects: they cost one read per chunk, and only the
        // new ones a write.
        let mut subjects: BTreeMap<String, Subject> = BTreeMap::new();
        let mut connection = self.connection().await?;
        for chunk in unique.chunks(PSEUDONYMS_PER_STATEMENT) {
            for found in named(connection.as_mut(), org, chunk).await? {
                subjects.insert(found.pseudonym.clone(), found);
            }
        }
        drop(connection);
        let missing: Vec<&str> = unique
            .into_iter()
            .filter(|p| !subjects.contains_key(*p))
            .collect();
        if !missing.is_empty() {
            let mut tx = self.begin().await?;
            for chunk in missing.chunks(PSEUDONYMS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO subjects (org_id, pseudonym) VALUES {} \
                     ON CONFLICT (org_id, pseudonym) DO NOTHING",
                    numbered_list(2, chunk.len(), |n| format!("($1, ${n})"))
                );
                tx.execute(&sql, &with_org(org, chunk))
                    .await
                    .map_err(|e| e.on("subject", chunk[0]))?;
                for created in named(tx.as_mut(), org, chunk).await? {
                    subjects.insert(created.pseudonym.clone(), created);
                }
            }
            tx.commit().await?;
        }
        Ok(subjects.into_values().collect())
    }

    async fn get(&self, id: SubjectId) -> Result<Subject> {
        self.connection()
            .await?
            .query_opt(
                concat!(
                    "SELECT ",
                    subject_columns!(),
                    " FROM subjects WHERE id = $1"
                ),
                &[id.0.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("subject", id))
            .and_then(|row| subject(&row))
    }

    async fn get_by_pseudonym(&self, org: OrgId, pseudonym: &str) -> Result<Subject> {
        self.connection()
            .await?
            .query_opt(
                concat!(
                    "SELECT ",
                    subject_columns!(),
                    " FROM subjects WHERE org_id = $1 AND pseudonym = $2"
                ),
                &[org.0.into(), pseudonym.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("subject", pseudonym))
            .and_then(|row| subject(&row))
    }

    async fn list(&self, org: OrgId) -> Result<Vec<Subject>> {
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    subject_columns!(),
                    " FROM subjects WHERE org_id = $1 ORDER BY id"
                ),
                &[org.0.into()],
            )
            .await?
            .iter()
            .map(subject)
            .collect()
    }

    async fn erased(&self, org: OrgId) -> Result<Vec<SubjectId>> {
        self.connection()
            .await?
            .query(
                "SELECT id FROM subjects WHERE org_id = $1 AND erased_at IS NOT NULL ORDER BY id",
                &[org.0.into()],
            )
            .await?
            .iter()
            .map(|row| Ok(SubjectId(row.i64("id")?)))
            .collect()
    }

    async fn update_profile(&self, id: SubjectId, profile: SubjectProfile) -> Result<Subject> {
        let p = normalized(profile)?;
        let mut tx = self.begin().await?;
        let row = tx
            .query_opt(
                concat!(
                    "UPDATE subjects SET display_name = $2, email = $3, sex = $4, birth_year = $5, \
                     height_cm = $6, max_hr = $7, timezone = $8 \
                     WHERE id = $1 AND erased_at IS NULL RETURNING ",
                    subject_columns!()
                ),
                &[
                    id.0.into(),
                    p.display_name.into(),
                    p.email.into(),
                    p.sex.map(Sex::as_str).into(),
                    p.birth_year.into(),
                    p.height_cm.into(),
                    p.max_hr.into(),
                    p.timezone.into(),
                ],
            )
            .await
            .map_err(|e| e.on("subject", id))?;
        let Some(row) = row else {
            let exists = tx
                .query_opt(
                    "SELECT 1 AS present FROM subjects WHERE id = $1",
                    &[id.0.into()],
                )
                .await?;
            return Err(match exists {
                Some(_) => Error::Conflict(format!("subject {id} is erased; its profile is gone")),
                None => Error::not_found("subject", id),
            });
        };
        tx.commit().await?;
        subject(&row)
    }

    async fn create_group(&self, new: NewGroup) -> Result<Group> {
        validate::non_empty("group name", &new.name)?;
        let mut tx = self.begin().await?;
        let row = tx
            .query_one(
                "INSERT INTO groups (org_id, name, kind, description) VALUES ($1, $2, $3, $4) \
                 RETURNING id, org_id, name, kind, description, created_at",
                &[
                    new.org.0.into(),
                    new.name.as_str().into(),
                    new.kind.as_str().into(),
                    new.description.into(),
                ],
            )
            .await
            .map_err(|e| e.on("group", &new.name))?;
        tx.commit().await?;
        group(&row)
    }

    async fn list_groups(&self, org: OrgId) -> Result<Vec<Group>> {
        self.connection()
            .await?
            .query(
                "SELECT id, org_id, name, kind, description, created_at FROM groups \
                 WHERE org_id = $1 ORDER BY name",
                &[org.0.into()],
            )
            .await?
            .iter()
            .map(group)
            .collect()
    }

    async fn add_member(&self, group: GroupId, subject: SubjectId) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.query_opt(
            "SELECT 1 AS present FROM groups WHERE id = $1",
            &[group.0.into()],
        )
        .await?
        .ok_or_else(|| Error::not_found("group", group))?;
        tx.execute(
            "INSERT INTO group_members (group_id, subject_id, org_id) \
             SELECT $1, $2, org_id FROM groups WHERE id = $1 \
             ON CONFLICT (group_id, subject_id) DO NOTHING",
            &[group.0.into(), subject.0.into()],
        )
        .await
        .map_err(|e| match e {
            DbError::ForeignKey(_) => Error::invalid(
                "group member",
                format!("subject {subject} is not a subject of the organization of group {group}"),
            ),
            other => other.into(),
        })?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_member(&self, group: GroupId, subject: SubjectId) -> Result<()> {
        self.connection()
            .await?
            .execute(
                "DELETE FROM group_members WHERE group_id = $1 AND subject_id = $2",
                &[group.0.into(), subject.0.into()],
            )
            .await?;
        Ok(())
    }

    async fn members(&self, group: GroupId) -> Result<Vec<SubjectId>> {
        self.connection()
            .await?
            .query(
                "SELECT subject_id FROM group_members WHERE group_id = $1 ORDER BY subject_id",
                &[group.0.into()],
            )
            .await?
            .iter()
            .map(|row| Ok(SubjectId(row.i64("subject_id")?)))
            .collect()
    }

    async fn add_coach(&self, group: GroupId, user: UserId) -> Result<()> {
        let mut tx = self.begin().await?;
        let is_coach = tx
            .query_opt(
                "SELECT 1 AS present FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                 WHERE ur.user_id = $1 AND r.name = $2",
                &[user.0.into(), Role::Coach.as_str().into()],
            )
            .await?;
        if is_coach.is_none() {
            return Err(Error::invalid(
                "coach",
                format!("user {user} does not exist or does not have the coach role"),
            ));
        }
        insert_coach(&mut *tx, group, user).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn coached_subjects(&self, coach: UserId) -> Result<Vec<SubjectId>> {
        self.connection()
            .await?
            .query(
                "SELECT DISTINCT gm.subject_id FROM group_coaches gc \
                 JOIN group_members gm ON gm.group_id = gc.group_id \
                 WHERE gc.user_id = $1 ORDER BY gm.subject_id",
                &[coach.0.into()],
            )
            .await?
            .iter()
            .map(|row| Ok(SubjectId(row.i64("subject_id")?)))
            .collect()
    }
}
