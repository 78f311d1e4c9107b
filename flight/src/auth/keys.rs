//! The keys that sign and verify access tokens.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::{Error, Result};

/// How access tokens are signed: a shared secret (HS256, what embedded mode uses), or a key
/// pair (RS256, EdDSA) whose public half is all a verifier needs.
#[derive(Clone)]
pub struct SigningKeys {
    pub(crate) algorithm: Algorithm,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({:?})", self.algorithm)
    }
}

/// Bytes of a generated secret.
const SECRET_BYTES: usize = 32;

impl SigningKeys {
    /// The HS256 secret in `path`, created (random, readable by its owner only) if absent.
    /// Several nodes share tokens by sharing the file.
    pub fn secret_file(path: &Path) -> Result<Self> {
        let secret = match fs::read(path) {
            Ok(secret) => {
                let mode = fs::metadata(path)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0);
                if mode & 0o077 != 0 {
                    return Err(Error::Config(format!(
                        "{} is readable by others (mode {mode:o}); run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    )));
                }
                if secret.len() < SECRET_BYTES {
                    return Err(Error::Config(format!(
                        "{} holds {} bytes; a signing secret needs at least {SECRET_BYTES}",
                        path.display(),
                        secret.len()
                    )));
                }
                secret
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_secret(path)?,
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(SigningKeys {
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        })
    }

    /// An RS256 or EdDSA key pair from PEM files (PKCS#8 private key, SPKI public key).
    pub fn key_pair(algorithm: &str, private_pem: &Path, public_pem: &Path) -> Result<Self> {
        let read = |path: &Path| {
            fs::read(path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))
        };
        let (private, public) = (read(private_pem)?, read(public_pem)?);
        let bad = |path: &Path, e: jsonwebtoken::errors::Error| {
            Error::Config(format!(
                "{}: not a {algorithm} key in PEM: {e}",
                path.display()
            ))
        };
        let (algorithm, encoding, decoding) = match algorithm {
            "RS256" => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(&private).map_err(|e| bad(private_pem, e))?,
                DecodingKey::from_rsa_pem(&public).map_err(|e| bad(public_pem, e))?,
            ),
            "EdDSA" => (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(&private).map_err(|e| bad(private_pem, e))?,
                DecodingKey::from_ed_pem(&public).map_err(|e| bad(public_pem, e))?,
            ),
            other => {
                return Err(Error::Config(format!(
                    "unsupported token algorithm '{other}': use RS256 or EdDSA with a key pair, or a secret file for HS256"
                )));
            }
        };
        Ok(SigningKeys {
            algorithm,
            encoding,
            decoding,
        })
    }
}

fn create_secret(path: &Path) -> Result<Vec<u8>> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)
        .map_err(|e| Error::Config(format!("no randomness for a signing secret: {e}")))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Config(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(&secret)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_secret_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/jwt.secret");
        SigningKeys::secret_file(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let first = fs::read(&path).unwrap();
        SigningKeys::secret_file(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first);
        assert_eq!(first.len(), SECRET_BYTES);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SigningKeys::secret_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("readable by others") && err.contains("chmod 600"),
            "{err}"
        );
    }
}
