use std::{fmt, path::PathBuf, str::FromStr};

use crate::{Error, Result};

/// Which database holds the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        })
    }
}

/// Where the catalog lives: `postgres://user:password@host:port/db` (or `postgresql://`) or
/// `sqlite://PATH`. Displaying it never shows the password.
///
/// ```
/// let url: catalog::CatalogUrl = "postgres://healthai:secret@db.internal/healthai".parse().unwrap();
/// assert_eq!(url.to_string(), "postgres://healthai:***@db.internal/healthai");
/// let url: catalog::CatalogUrl = "sqlite://./healthai-data/catalog.db".parse().unwrap();
/// assert_eq!(url.backend(), catalog::Backend::Sqlite);
/// ```
#[derive(Clone)]
pub struct CatalogUrl {
    target: Target,
    redacted: String,
}

#[derive(Clone)]
pub(crate) enum Target {
    Postgres(Box<tokio_postgres::Config>),
    Sqlite(PathBuf),
}

impl CatalogUrl {
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        CatalogUrl {
            redacted: format!("sqlite://{}", path.display()),
            target: Target::Sqlite(path),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.target {
            Target::Postgres(_) => Backend::Postgres,
            Target::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }
}

impl FromStr for CatalogUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: redact_password(url),
            reason,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid(format!(
                "expected postgres://… or sqlite://PATH (for a file, write sqlite://{url})"
            )));
        };
        match scheme {
            "postgres" | "postgresql" => {
                let config = tokio_postgres::Config::from_str(url)
                    .map_err(|e| invalid(format!("not a PostgreSQL connection URL: {e}")))?;
                if config.get_hosts().is_empty() {
                    return Err(invalid("no host".into()));
                }
                if config.get_user().is_none() {
                    return Err(invalid("no user name".into()));
                }
                Ok(CatalogUrl {
                    target: Target::Postgres(Box::new(config)),
                    redacted: redact_password(url),
                })
            }
            "sqlite" if rest.is_empty() => Err(invalid("no file path after sqlite://".into())),
            "sqlite" => Ok(CatalogUrl::sqlite(rest)),
            other => Err(invalid(format!(
                "unsupported scheme '{other}': use postgres://… or sqlite://PATH"
            ))),
        }
    }
}

impl fmt::Display for CatalogUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for CatalogUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CatalogUrl({})", self.redacted)
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        for url in [
            "postgres://u:hunter2@localhost:5432/db",
            "postgresql://u:hunter2@localhost/db?sslmode=disable",
        ] {
            let parsed: CatalogUrl = url.parse().unwrap();
            assert!(!parsed.to_string().contains("hunter2"), "{parsed}");
            assert!(!format!("{parsed:?}").contains("hunter2"));
        }
        let err = "postgres://u:hunter2@localhost:notaport/db"
            .parse::<CatalogUrl>()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn rejects_what_it_cannot_open() {
        for (url, expected) in [
            ("catalog.db", "sqlite://catalog.db"),
            ("mysql://x@y/z", "unsupported scheme 'mysql'"),
            ("sqlite://", "no file path"),
            (
                "postgres://u@h:99999999/db",
                "not a PostgreSQL connection URL",
            ),
        ] {
            let err = url.parse::<CatalogUrl>().unwrap_err().to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
    }

    #[test]
    fn sqlite_paths_keep_their_form() {
        let url: CatalogUrl = "sqlite:///var/lib/healthai/catalog.db".parse().unwrap();
        match url.target() {
            Target::Sqlite(path) => {
                assert_eq!(path, &PathBuf::from("/var/lib/healthai/catalog.db"))
            }
            Target::Postgres(_) => panic!("parsed as PostgreSQL"),
        }
    }
}
