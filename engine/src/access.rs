//! Who is asking, and what that lets them see and do.
//!
//! The network layer authenticates a caller and resolves a [`Principal`]; the engine then
//! applies the policy itself, where SQL cannot reach it: the rows a session's scans return
//! ([`RowScope`]), the personal identifiers `meta.subjects` shows, the catalog tables that
//! exist in the session, and the subjects a writer may write for.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use catalog::{Catalog, Organization, Permission, Role, SubjectId, User, UserId};

use crate::{Error, Result};

/// The rows of an organization a principal may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowScope {
    /// Every subject of the organization.
    All,
    /// These subjects only (a member's own, a coach's groups'), sorted.
    Subjects(Arc<[i64]>),
    /// Nothing (an ingest account writes but never reads).
    Nothing,
}

impl RowScope {
    pub fn allows(&self, subject: i64) -> bool {
        match self {
            RowScope::All => true,
            RowScope::Subjects(ids) => ids.binary_search(&subject).is_ok(),
            RowScope::Nothing => false,
        }
    }
}

/// An authenticated caller of one organization.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org: Organization,
    /// `None` for the operator at the command line.
    pub user: Option<UserId>,
    /// How the caller appears in the audit log: an email, or `cli`.
    pub actor: String,
    pub roles: Vec<Role>,
    pub permissions: BTreeSet<Permission>,
    pub scope: RowScope,
    /// The subject a member may write for.
    pub own_subject: Option<SubjectId>,
    /// Where the request came in: `flight`, `grpc`, `rest`, `cli`.
    pub interface: &'static str,
}

impl Principal {
    /// The operator of the command line: everything in the organization, identifiers too.
    pub fn operator(org: Organization) -> Self {
        Principal {
            org,
            user: None,
            actor: "cli".into(),
            roles: vec![Role::Admin],
            permissions: Permission::ALL.iter().copied().collect(),
            scope: RowScope::All,
            own_subject: None,
            interface: "cli",
        }
    }

    /// A user of the catalog, with the permissions of their roles and the subjects those
    /// let them read.
    pub async fn of_user(
        catalog: &dyn Catalog,
        org: Organization,
        user: &User,
        interface: &'static str,
    ) -> Result<Self> {
        if user.org != org.id {
            return Err(Error::Denied(format!(
                "user {} is not a user of organization {}",
                user.email, org.name
            )));
        }
        if user.disabled {
            return Err(Error::Denied(format!("user {} is disabled", user.email)));
        }
        let permissions: BTreeSet<Permission> = catalog
            .users()
            .permissions(&user.roles)
            .await?
            .into_iter()
            .collect();
        let scope = if permissions.contains(&Permission::ReadAllSubjects) {
            RowScope::All
        } else {
            let mut subjects = BTreeSet::new();
            if permissions.contains(&Permission::ReadOwnSubject)
                && let Some(own) = user.subject
            {
                subjects.insert(own.0);
            }
            if permissions.contains(&Permission::ReadGroupSubjects) {
                subjects.extend(
                    catalog
                        .subjects()
                        .coached_subjects(user.id)
                        .await?
                        .iter()
                        .map(|s| s.0),
                );
            }
            let readable = permissions.contains(&Permission::ReadOwnSubject)
                || permissions.contains(&Permission::ReadGroupSubjects);
            if readable {
                RowScope::Subjects(subjects.into_iter().collect())
            } else {
                RowScope::Nothing
            }
        };
        Ok(Principal {
            org,
            user: Some(user.id),
            actor: user.email.clone(),
            roles: user.roles.clone(),
            permissions,
            scope,
            own_subject: user.subject,
            interface,
        })
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// Refuses a write unless every subject in it is one the principal may write for.
    pub(crate) fn check_write(&self, subjects: impl IntoIterator<Item = i64>) -> Result<()> {
        if self.can(Permission::WriteData) {
            return Ok(());
        }
        if !self.can(Permission::WriteOwnSubject) {
            return Err(Error::Denied(format!(
                "{} may not write data (roles: {})",
                self.actor,
                roles(&self.roles)
            )));
        }
        match (
            self.own_subject,
            subjects
                .into_iter()
                .find(|s| Some(SubjectId(*s)) != self.own_subject),
        ) {
            (Some(_), None) => Ok(()),
            (_, Some(other)) => Err(Error::Denied(format!(
                "{} may only write for their own subject, not subject {other}",
                self.actor
            ))),
            (None, None) => Err(Error::Denied(format!(
                "{} has no subject to write for",
                self.actor
            ))),
        }
    }

    pub(crate) fn check_read(&self) -> Result<()> {
        match self.scope {
            RowScope::Nothing => Err(Error::Denied(format!(
                "{} may not read data (roles: {})",
                self.actor,
                roles(&self.roles)
            ))),
            _ => Ok(()),
        }
    }
}

fn roles(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one query may use before it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Bytes of memory; operators that can spill to disk do so first.
    pub memory: usize,
    pub timeout: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory: 1 << 30,
            timeout: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_what_they_list() {
        let some = RowScope::Subjects(vec![3, 7, 11].into());
        assert!(some.allows(7) && !some.allows(8));
        assert!(RowScope::All.allows(8));
        assert!(!RowScope::Nothing.allows(8));
    }

    fn principal(permissions: &[Permission], own: Option<i64>) -> Principal {
        Principal {
            org: Organization {
                id: catalog::OrgId(1),
                name: "default".into(),
                created_at: chrono::DateTime::UNIX_EPOCH,
            },
            user: Some(UserId(1)),
            actor: "ana@example.com".into(),
            roles: vec![Role::Member],
            permissions: permissions.iter().copied().collect(),
            scope: RowScope::Nothing,
            own_subject: own.map(SubjectId),
            interface: "flight",
        }
    }

    #[test]
    fn members_write_for_themselves_only() {
        let member = principal(&[Permission::WriteOwnSubject], Some(5));
        assert!(member.check_write([5, 5]).is_ok());
        let err = member.check_write([5, 6]).unwrap_err().to_string();
        assert!(
            err.contains("only write for their own subject, not subject 6"),
            "{err}"
        );
        let reader = principal(&[Permission::ReadAllSubjects], None);
        assert!(
            reader
                .check_write([1])
                .unwrap_err()
                .to_string()
                .contains("may not write data")
        );
        assert!(
            principal(&[Permission::WriteData], None)
                .check_write([1, 2])
                .is_ok()
        );
    }
}
