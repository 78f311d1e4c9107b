//! Authentication: users and passwords (argon2), short-lived JWT access tokens, and opaque
//! refresh tokens stored hashed, rotated on use and revocable. Every call presents a token;
//! [`Authenticator::authenticate`] turns it into the engine's [`Principal`].
//!
//! A username is `EMAIL` or `ORG/EMAIL`; an email found in one organization only needs no
//! organization.

mod keys;

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::{
    Engine as _,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use catalog::{AuditOutcome, PasswordHash, TokenHash, TokenRejection, User, UserId};
use chrono::{DateTime, Utc};
use engine::{Engine, Principal};
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

pub use self::keys::SigningKeys;
use crate::{Error, Result};

/// Basic credentials, padded or not (Go clients send them unpadded).
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How long an authenticated principal is reused before its roles and scope are read again:
/// a disabled user or a changed role takes effect within this time.
const PRINCIPAL_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Default lifetime of tokens issued for service accounts.
    pub service_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "healthai".into(),
            audience: "healthai".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            service_ttl: Duration::from_secs(90 * 86_400),
        }
    }
}

/// What a login or a refresh hands back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    /// The user id.
    sub: String,
    org: i64,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
}

/// What a verified access token says about its bearer.
struct VerifiedClaims {
    user: UserId,
    org: i64,
}

pub struct Authenticator {
    engine: Engine,
    keys: SigningKeys,
    validation: Validation,
    config: AuthConfig,
    principals: Mutex<HashMap<UserId, (Instant, Principal)>>,
    /// Basic credentials verified lately (argon2 is slow on purpose): hash of the header to
    /// the user and when.
    basic: Mutex<HashMap<TokenHash, (Instant, UserId)>>,
}

impl Authenticator {
    pub fn new(engine: Engine, keys: SigningKeys, config: AuthConfig) -> Self {
        let mut validation = Validation::new(keys.algorithm);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Authenticator {
            engine,
            keys,
            validation,
            config,
            principals: Mutex::new(HashMap::new()),
            basic: Mutex::new(HashMap::new()),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The principal behind an `authorization` header: `Bearer TOKEN` or `Basic CREDENTIALS`.
    pub async fn authenticate(
        &self,
        header: Option<&str>,
        interface: &'static str,
    ) -> Result<Principal> {
        let header = header.ok_or_else(|| {
            Error::Unauthenticated(
                "no credentials: send `authorization: Bearer TOKEN` (or log in with Basic auth)"
                    .into(),
            )
        })?;
        let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => {
                let claims = self.verify_access_token(value.trim())?;
                let principal = self.principal(claims.user, interface).await?;
                // A valid signature over a user of one organization and the id of another means
                // the key leaked or the claims were built by someone else: refuse either way.
                if principal.org.id.0 != claims.org {
                    return Err(Error::Unauthenticated(
                        "access token rejected: it names another organization".into(),
                    ));
                }
                Ok(principal)
            }
            "basic" => {
                let user = self.verify_basic(value.trim()).await?;
                self.principal(user, interface).await
            }
            other => Err(Error::Unauthenticated(format!(
                "unsupported authorization scheme '{other}'; use Bearer or Basic"
            ))),
        }
    }

    /// Logs in with a username (`EMAIL` or `ORG/EMAIL`) and password.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        interface: &'static str,
    ) -> Result<(Principal, Tokens)> {
        let user = self.check_password(username, password).await?;
        let principal = self.principal(user.id, interface).await?;
        let tokens = self.issue(&user).await?;
        self.engine
            .audit(&principal, "login", None, None, AuditOutcome::Ok, None);
        Ok((principal, tokens))
    }

    /// Logs in with an `authorization: Basic …` header value (without the scheme).
    pub async fn login_basic(
        &self,
        credentials: &str,
        interface: &'static str,
    ) -> Result<(Principal, Tokens)> {
        let (username, password) = decode_basic(credentials)?;
        self.login(&username, &password, interface).await
    }

    /// Exchanges a refresh token for new tokens; the old one stops working.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let replacement = random_token()?;
        let now = Utc::now();
        let rotated = self
            .engine
            .catalog()
            .tokens()
            .rotate(
                TokenHash::of(refresh_token),
                TokenHash::of(&replacement),
                now,
                now + chrono_duration(self.config.refresh_ttl),
            )
            .await
            .map_err(|e| match e {
                catalog::Error::RefreshToken(rejection) => {
                    Error::Unauthenticated(format!("refresh token rejected: {rejection}"))
                }
                other => other.into(),
            })?;
        let user = self.engine.catalog().users().get(rotated.user).await?;
        if user.disabled {
            return Err(Error::Unauthenticated(format!(
                "user {} is disabled",
                user.email
            )));
        }
        Ok(Tokens {
            access_token: self.access_token(&user, self.config.access_ttl)?.0,
            refresh_token: replacement,
            expires_in: self.config.access_ttl.as_secs(),
        })
    }

    /// Ends the login a refresh token belongs to.
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let revoked = self
            .engine
            .catalog()
            .tokens()
            .revoke_family(TokenHash::of(refresh_token), Utc::now())
            .await?;
        if revoked == 0 {
            return Err(Error::Unauthenticated(format!(
                "refresh token rejected: {}",
                TokenRejection::Unknown
            )));
        }
        Ok(())
    }

    /// A long-lived access token for a service account.
    pub fn service_token(
        &self,
        user: &User,
        ttl: Option<Duration>,
    ) -> Result<(String, DateTime<Utc>)> {
        self.access_token(user, ttl.unwrap_or(self.config.service_ttl))
    }

    /// Hashes a password for the catalog.
    pub fn hash_password(password: &str) -> Result<PasswordHash> {
        if password.chars().count() < 8 {
            return Err(Error::Invalid(
                "a password needs at least 8 characters".into(),
            ));
        }
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| PasswordHash(hash.to_string()))
            .map_err(|e| Error::Internal(format!("cannot hash the password: {e}")))
    }

    async fn issue(&self, user: &User) -> Result<Tokens> {
        let refresh_token = random_token()?;
        let now = Utc::now();
        self.engine
            .catalog()
            .tokens()
            .issue(
                user.id,
                TokenHash::of(&refresh_token),
                now,
                now + chrono_duration(self.config.refresh_ttl),
            )
            .await?;
        Ok(Tokens {
            access_token: self.access_token(user, self.config.access_ttl)?.0,
            refresh_token,
            expires_in: self.config.access_ttl.as_secs(),
        })
    }

    fn access_token(&self, user: &User, ttl: Duration) -> Result<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires = now + chrono_duration(ttl);
        let claims = Claims {
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            sub: user.id.0.to_string(),
            org: user.org.0,
            exp: expires.timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(self.keys.algorithm),
            &claims,
            &self.keys.encoding,
        )
        .map_err(|e| Error::Internal(format!("cannot sign an access token: {e}")))?;
        Ok((token, expires))
    }

    fn verify_access_token(&self, token: &str) -> Result<VerifiedClaims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.keys.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind::*;
                let reason = match e.kind() {
                    ExpiredSignature => "expired; refresh it or log in again".to_owned(),
                    ImmatureSignature => "not valid yet".to_owned(),
                    InvalidIssuer => "issued by someone else".to_owned(),
                    InvalidAudience => "meant for another service".to_owned(),
                    InvalidSignature | InvalidAlgorithm | InvalidKeyFormat => {
                        "not signed by this server".to_owned()
                    }
                    MissingRequiredClaim(claim) => format!("missing the {claim} claim"),
                    _ => "malformed".to_owned(),
                };
                Error::Unauthenticated(format!("access token rejected: {reason}"))
            })?;
        let user = data.claims.sub.parse().map(UserId).map_err(|_| {
            Error::Unauthenticated("access token rejected: malformed subject".into())
        })?;
        Ok(VerifiedClaims {
            user,
            org: data.claims.org,
        })
    }

    async fn verify_basic(&self, credentials: &str) -> Result<UserId> {
        let key = TokenHash::of(credentials);
        if let Some((at, user)) = lock(&self.basic).get(&key)
            && at.elapsed() < PRINCIPAL_TTL
        {
            return Ok(*user);
        }
        let (username, password) = decode_basic(credentials)?;
        let user = self.check_password(&username, &password).await?;
        lock(&self.basic).insert(key, (Instant::now(), user.id));
        Ok(user.id)
    }

    async fn check_password(&self, username: &str, password: &str) -> Result<User> {
        let refused = || Error::Unauthenticated("wrong username or password".into());
        let user = self.find_user(username).await?.ok_or_else(refused)?;
        let Some(hash) = user.password_hash.clone() else {
            return Err(Error::Unauthenticated(format!(
                "{} has no password; it signs in with an issued token",
                user.email
            )));
        };
        let candidate = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(candidate.as_bytes(), hash.0.as_str())
                .is_ok()
        })
        .await
        .map_err(|e| Error::Internal(format!("password check failed: {e}")))?;
        if !matches {
            return Err(refused());
        }
        if user.disabled {
            return Err(Error::Unauthenticated(format!(
                "user {} is disabled",
                user.email
            )));
        }
        Ok(user)
    }

    /// The user a username names: `ORG/EMAIL`, or an email unique across organizations.
    async fn find_user(&self, username: &str) -> Result<Option<User>> {
        let catalog = self.engine.catalog();
        let (org, email) = match username.split_once('/') {
            Some((org, email)) => (Some(org), email),
            None => (None, username),
        };
        match org {
            Some(org) => {
                let Ok(org) = catalog.organizations().get(org).await else {
                    return Ok(None);
                };
                match catalog.users().get_by_email(org.id, email).await {
                    Ok(user) => Ok(Some(user)),
                    Err(catalog::Error::NotFound { .. } | catalog::Error::Invalid { .. }) => {
                        Ok(None)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            None => {
                let mut found = catalog.users().find_by_email(email).await?;
                match found.len() {
                    0 | 1 => Ok(found.pop()),
                    _ => Err(Error::Unauthenticated(format!(
                        "{email} has accounts in several organizations; log in as ORG/{email}"
                    ))),
                }
            }
        }
    }

    async fn principal(&self, user: UserId, interface: &'static str) -> Result<Principal> {
        if let Some((at, principal)) = lock(&self.principals).get(&user)
            && at.elapsed() < PRINCIPAL_TTL
        {
            let mut principal = principal.clone();
            principal.interface = interface;
            return Ok(principal);
        }
        let record = match self.engine.catalog().users().get(user).await {
            Ok(record) => record,
            Err(catalog::Error::NotFound { .. }) => {
                return Err(Error::Unauthenticated(
                    "the token's user no longer exists".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let principal = self
            .engine
            .principal(&record, interface)
            .await
            .map_err(|e| match e {
                engine::Error::Denied(reason) => Error::Unauthenticated(reason),
                other => other.into(),
            })?;
        lock(&self.principals).insert(user, (Instant::now(), principal.clone()));
        Ok(principal)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn decode_basic(credentials: &str) -> Result<(String, String)> {
    let malformed = || {
        Error::Unauthenticated(
            "malformed Basic credentials: expected base64 of USERNAME:PASSWORD".into(),
        )
    };
    let raw = BASIC.decode(credentials.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(raw).map_err(|_| malformed())?;
    let (username, password) = text.split_once(':').ok_or_else(malformed)?;
    Ok((username.to_owned(), password.to_owned()))
}

/// An opaque refresh token: 32 random bytes, base64url.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Internal(format!("no randomness for a token: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_padded_or_not() {
        for encoded in [
            "YW5hQGV4YW1wbGUub3JnOnMzY3JldCE=",
            "YW5hQGV4YW1wbGUub3JnOnMzY3JldCE",
        ] {
            assert_eq!(
                decode_basic(encoded).unwrap(),
                ("ana@example.org".to_owned(), "s3cret!".to_owned())
            );
        }
        assert!(decode_basic("not base64 at all!").is_err());
        assert!(decode_basic(&BASIC.encode("no-colon")).is_err());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = Authenticator::hash_password("correct horse").unwrap();
        assert!(hash.0.starts_with("$argon2id$"));
        let argon = Argon2::default();
        assert!(
            argon
                .verify_password(b"correct horse", hash.0.as_str())
                .is_ok()
        );
        assert!(
            argon
                .verify_password(b"wrong horse", hash.0.as_str())
                .is_err()
        );
        assert!(Authenticator::hash_password("short").is_err());
    }
}
