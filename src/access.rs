//! Users, groups and tokens at the command line, and the keys that sign tokens.

use std::{
    io::{self, BufRead, Write},
    path::PathBuf,
    time::Duration,
};

use catalog::{Catalog, GroupKind, NewGroup, NewUser, OrgId, Role};
use clap::Args;
use flight::{Authenticator, SigningKeys};

use crate::CliError;

/// Where token signing keys come from: shared by `serve` and `token issue`, which must agree.
#[derive(Args, Clone)]
pub(crate) struct KeyArgs {
    /// HS256 secret file, created (mode 0600) if absent; share it between nodes
    #[arg(
        long,
        env = "HEALTHAI_JWT_SECRET_FILE",
        default_value = "./healthai-data/jwt.secret"
    )]
    jwt_secret_file: PathBuf,
    /// Sign with a key pair instead: RS256 or EdDSA
    #[arg(long, env = "HEALTHAI_JWT_ALGORITHM", requires_all = ["jwt_private_key", "jwt_public_key"])]
    jwt_algorithm: Option<String>,
    /// PKCS#8 PEM private key for --jwt-algorithm
    #[arg(long, env = "HEALTHAI_JWT_PRIVATE_KEY")]
    jwt_private_key: Option<PathBuf>,
    /// PEM public key for --jwt-algorithm
    #[arg(long, env = "HEALTHAI_JWT_PUBLIC_KEY")]
    jwt_public_key: Option<PathBuf>,
}

impl KeyArgs {
    pub(crate) fn keys(&self) -> Result<SigningKeys, CliError> {
        Ok(
            match (
                &self.jwt_algorithm,
                &self.jwt_private_key,
                &self.jwt_public_key,
            ) {
                (Some(algorithm), Some(private), Some(public)) => {
                    SigningKeys::key_pair(algorithm, private, public)?
                }
                _ => SigningKeys::secret_file(&self.jwt_secret_file)?,
            },
        )
    }
}

#[derive(Args)]
pub(crate) struct UserAdd {
    /// The user's email, which they log in with; unique in the organization
    #[arg(long)]
    email: String,
    /// admin, analyst, coach, member, ingest or service; repeat for several
    #[arg(long = "role", required = true)]
    roles: Vec<Role>,
    /// For a member: the pseudonym of their subject (created if new)
    #[arg(long)]
    subject: Option<String>,
    /// For a coach: a group they coach (created if new); repeat for several
    #[arg(long = "group")]
    groups: Vec<String>,
    /// The name shown for the user
    #[arg(long)]
    name: Option<String>,
    /// Read the password from the first line of stdin (service accounts may have none)
    #[arg(long)]
    password_stdin: bool,
}

pub(crate) async fn add_user(
    catalog: &dyn Catalog,
    org: OrgId,
    args: UserAdd,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let password_hash = if args.password_stdin {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        Some(Authenticator::hash_password(
            line.trim_end_matches(['\r', '\n']),
        )?)
    } else {
        None
    };
    let subject = match &args.subject {
        Some(pseudonym) => Some(
            catalog
                .subjects()
                .ensure(org, std::slice::from_ref(pseudonym))
                .await?[0]
                .id,
        ),
        None => None,
    };
    let mut coach_of = Vec::new();
    for name in &args.groups {
        coach_of.push(group(catalog, org, name).await?);
    }
    let user = catalog
        .users()
        .create(NewUser {
            org,
            email: args.email,
            display_name: args.name,
            password_hash,
            roles: args.roles,
            subject,
            coach_of,
        })
        .await?;
    let roles: Vec<_> = user.roles.iter().map(|r| r.as_str()).collect();
    writeln!(out, "created user {} ({})", user.email, roles.join(", "))?;
    if user.password_hash.is_none() {
        writeln!(
            out,
            "it has no password: issue it a token with `healthai token issue --user {}`",
            user.email
        )?;
    }
    Ok(())
}

/// The group with this name, created as a coaching group if new.
async fn group(
    catalog: &dyn Catalog,
    org: OrgId,
    name: &str,
) -> Result<catalog::GroupId, CliError> {
    if let Some(existing) = catalog
        .subjects()
        .list_groups(org)
        .await?
        .into_iter()
        .find(|g| g.name == name)
    {
        return Ok(existing.id);
    }
    let created = catalog
        .subjects()
        .create_group(NewGroup {
            org,
            name: name.to_owned(),
            kind: GroupKind::Coaching,
            description: String::new(),
        })
        .await?;
    Ok(created.id)
}

pub(crate) async fn add_to_group(
    catalog: &dyn Catalog,
    org: OrgId,
    name: &str,
    members: &[String],
    out: &mut impl Write,
) -> Result<(), CliError> {
    let group = group(catalog, org, name).await?;
    for subject in catalog.subjects().ensure(org, members).await? {
        catalog.subjects().add_member(group, subject.id).await?;
    }
    let count = catalog.subjects().members(group).await?.len();
    writeln!(
        out,
        "group {name} has {count} member{}",
        if count == 1 { "" } else { "s" }
    )?;
    Ok(())
}

pub(crate) async fn list_users(
    catalog: &dyn Catalog,
    org: OrgId,
    out: &mut impl Write,
) -> Result<(), CliError> {
    writeln!(
        out,
        "{:<32} {:<24} {:<9} SUBJECT",
        "EMAIL", "ROLES", "STATUS"
    )?;
    for user in catalog.users().list(org).await? {
        let roles: Vec<_> = user.roles.iter().map(|r| r.as_str()).collect();
        let subject = match user.subject {
            Some(id) => catalog.subjects().get(id).await?.pseudonym,
            None => String::new(),
        };
        let status = if user.disabled { "disabled" } else { "active" };
        writeln!(
            out,
            "{:<32} {:<24} {:<9} {subject}",
            user.email,
            roles.join(","),
            status
        )?;
    }
    Ok(())
}

pub(crate) fn service_token_ttl(days: Option<u64>) -> Option<Duration> {
    days.map(|d| Duration::from_secs(d * 86_400))
}
