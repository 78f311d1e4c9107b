//! The object store that holds the Parquet files, and where files go in it:
//! `{org}/{stream}/{YYYY-MM-DD}/{uuid}.parquet`.

use std::{path::PathBuf, sync::Arc};

use chrono::NaiveDate;
use object_store::{ObjectStore, local::LocalFileSystem, path::Path};

use crate::{Error, Result, rollup::Width};

/// Where the Parquet files live: a local directory (`./healthai-data/store`, `file:///srv/x`)
/// or, with the `s3` feature, `s3://bucket/prefix` with credentials from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl std::str::FromStr for StoreLocation {
    type Err = Error;

    fn from_str(location: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidStore {
            location: location.to_owned(),
            reason: reason.to_owned(),
        };
        match location.split_once("://") {
            None => Ok(StoreLocation::Local(PathBuf::from(location))),
            Some(("file", path)) if path.starts_with('/') => {
                Ok(StoreLocation::Local(PathBuf::from(path)))
            }
            Some(("file", _)) => Err(invalid(
                "a file:// URL needs an absolute path, as in file:///srv/healthai",
            )),
            Some(("s3", rest)) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid("no bucket name after s3://"));
                }
                Ok(StoreLocation::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                })
            }
            Some((scheme, _)) => Err(invalid(&format!(
                "unsupported scheme '{scheme}': use a directory, file:///PATH or s3://BUCKET/PREFIX"
            ))),
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Local(path) => write!(f, "{}", path.display()),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl StoreLocation {
    /// Opens the store, creating a local directory if needed.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>> {
        match self {
            StoreLocation::Local(path) => {
                std::fs::create_dir_all(path).map_err(|e| Error::InvalidStore {
                    location: path.display().to_string(),
                    reason: format!("cannot create the directory: {e}"),
                })?;
                let store =
                    LocalFileSystem::new_with_prefix(path).map_err(|e| Error::InvalidStore {
                        location: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                Ok(Arc::new(store))
            }
            StoreLocation::S3 { bucket, prefix } => open_s3(bucket, prefix),
        }
    }
}

#[cfg(feature = "s3")]
fn open_s3(bucket: &str, prefix: &str) -> Result<Arc<dyn ObjectStore>> {
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| Error::InvalidStore {
            location: format!("s3://{bucket}/{prefix}"),
            reason: e.to_string(),
        })?;
    if prefix.is_empty() {
        Ok(Arc::new(s3))
    } else {
        Ok(Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)))
    }
}

#[cfg(not(feature = "s3"))]
fn open_s3(bucket: &str, prefix: &str) -> Result<Arc<dyn ObjectStore>> {
    Err(Error::InvalidStore {
        location: format!("s3://{bucket}/{prefix}"),
        reason: "this healthai was built without S3 support; rebuild with `--features s3`".into(),
    })
}

pub(crate) fn file_path(org: &str, stream: &str, day: NaiveDate, id: uuid::Uuid) -> Path {
    Path::from(format!(
        "{org}/{stream}/{}/{id}.parquet",
        day.format("%Y-%m-%d")
    ))
}

/// Where the rollup of width `width` of the data file at `data` lives: beside it, in a
/// `rollups` directory, so globs over a day's data files do not pick rollups up.
pub(crate) fn rollup_path(data: &str, width: Width) -> Path {
    let (directory, file) = data.rsplit_once('/').unwrap_or(("", data));
    let id = file.strip_suffix(".parquet").unwrap_or(file);
    Path::from(format!(
        "{directory}/rollups/{id}.{}.parquet",
        width.label()
    ))
}

/// The data file a rollup belongs to; `None` for a path that is not a rollup's.
pub(crate) fn data_path_of_rollup(path: &str) -> Option<String> {
    let (directory, file) = path.rsplit_once("/rollups/")?;
    let id = Width::ALL
        .iter()
        .find_map(|w| file.strip_suffix(&format!(".{}.parquet", w.label())))?;
    Some(format!("{directory}/{id}.parquet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            "./healthai-data/store".parse::<StoreLocation>().unwrap(),
            StoreLocation::Local("./healthai-data/store".into())
        );
        assert_eq!(
            "file:///srv/healthai".parse::<StoreLocation>().unwrap(),
            StoreLocation::Local("/srv/healthai".into())
        );
        assert_eq!(
            "s3://lake/health/prod/".parse::<StoreLocation>().unwrap(),
            StoreLocation::S3 {
                bucket: "lake".into(),
                prefix: "health/prod".into()
            }
        );
        for bad in ["gs://x", "file://relative", "s3://"] {
            assert!(bad.parse::<StoreLocation>().is_err(), "{bad}");
        }
    }

    #[test]
    fn files_are_laid_out_by_org_stream_and_day() {
        let id = uuid::Uuid::nil();
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(
            file_path("acme", "heart_rate", day, id).as_ref(),
            "acme/heart_rate/2026-03-01/00000000-0000-0000-0000-000000000000.parquet"
        );
    }

    #[test]
    fn rollups_live_beside_their_file_and_lead_back_to_it() {
        let data = "acme/heart_rate/2026-03-01/0a.parquet";
        let rollup = rollup_path(data, Width::Hour);
        assert_eq!(
            rollup.as_ref(),
            "acme/heart_rate/2026-03-01/rollups/0a.1h.parquet"
        );
        assert_eq!(data_path_of_rollup(rollup.as_ref()).as_deref(), Some(data));
        assert_eq!(data_path_of_rollup(data), None);
        assert_eq!(data_path_of_rollup("a/rollups/x.2h.parquet"), None);
    }
}
