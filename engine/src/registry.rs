//! What the engine remembers of the catalog between requests: organizations, stream schemas
//! and which subjects may have data. Entries are read on first use and re-read when a lookup
//! misses, so another node's new stream or subject is found on the next request.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use arrow::{array::AsArray, datatypes::Int64Type};
use catalog::{Catalog, OrgId, Organization, SubjectId};

use crate::{Error, Result, schema::StreamSchema};

#[derive(Default)]
pub(crate) struct Registry {
    organizations: RwLock<HashMap<String, Organization>>,
    streams: RwLock<HashMap<(OrgId, String), Arc<StreamSchema>>>,
    listed: RwLock<HashMap<OrgId, Listed>>,
    subjects: RwLock<HashMap<OrgId, Subjects>>,
}

/// How stale the list of erased subjects may be on the write path: an erasure requested on
/// another node stops writes here within this time.
const ERASED_RECHECK: Duration = Duration::from_secs(1);

/// How stale a session's list of streams may be. Listing them is most of what starting a
/// session costs, and a stream, once registered, never changes shape; one registered on
/// another node (or by the CLI) is listed within this time, and a session finds it by name
/// at once (it asks the catalog for a name it does not know).
const STREAMS_RELIST: Duration = Duration::from_secs(1);

/// An organization's streams as of the last listing.
struct Listed {
    streams: Arc<[Arc<StreamSchema>]>,
    at: Instant,
}

/// The organization's subjects as of the last read.
struct Subjects {
    live: HashSet<i64>,
    erased: HashSet<i64>,
    erased_read_at: Instant,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects {
            live: HashSet::new(),
            erased: HashSet::new(),
            erased_read_at: Instant::now(),
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    pub(crate) async fn organization(
        &self,
        catalog: &dyn Catalog,
        name: &str,
    ) -> Result<Organization> {
        if let Some(org) = read(&self.organizations).get(name) {
            return Ok(org.clone());
        }
        let org = catalog.organizations().get(name).await?;
        write(&self.organizations).insert(name.to_owned(), org.clone());
        Ok(org)
    }

    pub(crate) async fn organization_by_id(
        &self,
        catalog: &dyn Catalog,
        id: OrgId,
    ) -> Result<Organization> {
        if let Some(org) = read(&self.organizations).values().find(|o| o.id == id) {
            return Ok(org.clone());
        }
        let org = catalog
            .organizations()
            .list()
            .await?
            .into_iter()
            .find(|o| o.id == id)
            .ok_or_else(|| {
                Error::Catalog(catalog::Error::NotFound {
                    entity: "organization",
                    key: id.to_string(),
                })
            })?;
        write(&self.organizations).insert(org.name.clone(), org.clone());
        Ok(org)
    }

    pub(crate) async fn stream(
        &self,
        catalog: &dyn Catalog,
        org: &Organization,
        name: &str,
    ) -> Result<Arc<StreamSchema>> {
        let key = (org.id, name.to_owned());
        if let Some(schema) = read(&self.streams).get(&key) {
            return Ok(schema.clone());
        }
        let stream = catalog.streams().get(org.id, name).await?;
        let schema = Arc::new(StreamSchema::new(&org.name, stream)?);
        write(&self.streams).insert(key, schema.clone());
        Ok(schema)
    }

    /// Every stream of the organization, listed at most [`STREAMS_RELIST`] ago, and
    /// remembered for writes.
    pub(crate) async fn streams(
        &self,
        catalog: &dyn Catalog,
        org: &Organization,
    ) -> Result<Arc<[Arc<StreamSchema>]>> {
        if let Some(listed) = read(&self.listed).get(&org.id)
            && listed.at.elapsed() < STREAMS_RELIST
        {
            return Ok(listed.streams.clone());
        }
        let at = Instant::now();
        let schemas: Arc<[Arc<StreamSchema>]> = catalog
            .streams()
            .list(org.id)
            .await?
            .into_iter()
            .map(|s| StreamSchema::new(&org.name, s).map(Arc::new))
            .collect::<Result<_>>()?;
        let mut cache = write(&self.streams);
        for s in schemas.iter() {
            cache.insert((org.id, s.name().to_owned()), s.clone());
        }
        write(&self.listed).insert(
            org.id,
            Listed {
                streams: schemas.clone(),
                at,
            },
        );
        Ok(schemas)
    }

    /// Checks that every `subject_id` of a conformed batch is a subject of the organization
    /// that is not erased, reading the catalog again when an id is not known yet.
    pub(crate) async fn check_subjects(
        &self,
        catalog: &dyn Catalog,
        schema: &StreamSchema,
        batch: &arrow::array::RecordBatch,
    ) -> Result<Vec<i64>> {
        let ids = batch
            .column(schema.index_of(crate::schema::SUBJECT_ID))
            .as_primitive::<Int64Type>();
        // Rows mostly come in runs of one subject: look each run up once.
        let mut seen = HashSet::new();
        let mut distinct: Vec<(usize, i64)> = Vec::new();
        let mut previous = None;
        for (row, &id) in ids.values().iter().enumerate() {
            if previous != Some(id) {
                previous = Some(id);
                if seen.insert(id) {
                    distinct.push((row, id));
                }
            }
        }
        let org = schema.org();
        let (unknown, stale) = {
            let subjects = read(&self.subjects);
            let known = subjects.get(&org);
            let unknown = distinct.iter().any(|(_, id)| {
                known.is_none_or(|s| !s.live.contains(id) && !s.erased.contains(id))
            });
            (
                unknown,
                known.is_none_or(|s| s.erased_read_at.elapsed() > ERASED_RECHECK),
            )
        };
        if unknown {
            self.refresh_subjects(catalog, org).await?;
        } else if stale {
            let erased: HashSet<i64> = catalog
                .subjects()
                .erased(org)
                .await?
                .into_iter()
                .map(|s| s.0)
                .collect();
            let mut subjects = write(&self.subjects);
            let entry = subjects.entry(org).or_default();
            entry.live.retain(|id| !erased.contains(id));
            entry.erased = erased;
            entry.erased_read_at = Instant::now();
        }
        let subjects = read(&self.subjects);
        let known = subjects.get(&org);
        for &(row, id) in &distinct {
            let refuse = |problem: &str| {
                Error::schema(
                    schema.name(),
                    format!("subject_id {id} at row {row} {problem}"),
                )
            };
            match known {
                Some(s) if s.live.contains(&id) => {}
                Some(s) if s.erased.contains(&id) => {
                    return Err(refuse("is erased; its data is no longer accepted"));
                }
                _ => {
                    return Err(refuse(&format!(
                        "is not a subject of organization {}",
                        schema.org_name
                    )));
                }
            }
        }
        Ok(distinct.into_iter().map(|(_, id)| id).collect())
    }

    pub(crate) async fn refresh_subjects(&self, catalog: &dyn Catalog, org: OrgId) -> Result<()> {
        let mut fresh = Subjects::default();
        for subject in catalog.subjects().list(org).await? {
            if subject.erased_at.is_some() {
                fresh.erased.insert(subject.id.0);
            } else {
                fresh.live.insert(subject.id.0);
            }
        }
        write(&self.subjects).insert(org, fresh);
        Ok(())
    }

    /// Forgets a subject as writable at once, on this node, when its erasure is requested.
    pub(crate) fn mark_erased(&self, org: OrgId, subject: SubjectId) {
        let mut subjects = write(&self.subjects);
        let entry = subjects.entry(org).or_default();
        entry.live.remove(&subject.0);
        entry.erased.insert(subject.0);
    }
}
