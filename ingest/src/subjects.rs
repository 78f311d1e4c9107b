//! Subjects named by pseudonym: the `subject` column of incoming rows becomes the catalog's
//! `subject_id`, creating the subjects an organization does not have yet and refusing rows
//! of erased subjects.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use arrow::{
    array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch},
    datatypes::{DataType, Field, Schema},
};
use catalog::{OrgId, Subject};
use chrono_tz::Tz;
use engine::Engine;

use crate::{
    Error, Result,
    clean::RowSubjects,
    extract::{SUBJECT, SUBJECT_ID},
};

/// Pseudonyms to catalog ids, creating subjects the organization does not have yet.
pub(crate) struct Subjects<'a> {
    engine: &'a Engine,
    org: OrgId,
    source: &'a str,
    known: HashMap<String, i64>,
    erased: HashSet<String>,
    /// Home time zones of the subjects met so far.
    zones: HashMap<i64, Tz>,
    /// Every subject of the organization by id, read once when rows name subjects by id.
    by_id: Option<HashMap<i64, Subject>>,
}

impl<'a> Subjects<'a> {
    pub(crate) fn new(engine: &'a Engine, org: OrgId, source: &'a str) -> Self {
        Subjects {
            engine,
            org,
            source,
            known: HashMap::new(),
            erased: HashSet::new(),
            zones: HashMap::new(),
            by_id: None,
        }
    }

    /// Looks up (creating them if new) the pseudonyms not met before.
    async fn learn<'n>(&mut self, names: impl Iterator<Item = &'n str>) -> Result<()> {
        // Files name one subject for many rows in a row: look each run up once.
        let mut previous = None;
        let missing: Vec<String> = names
            .filter(|n| previous.replace(*n) != Some(*n))
            .filter(|n| !n.is_empty() && !self.known.contains_key(*n) && !self.erased.contains(*n))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let found = self
            .engine
            .catalog()
            .subjects()
            .ensure(self.org, &missing)
            .await
            .map_err(|e| Error::file(self.source, e.to_string()))?;
        for subject in found {
            self.remember(subject);
        }
        Ok(())
    }

    fn remember(&mut self, subject: Subject) {
        if subject.erased_at.is_some() {
            self.erased.insert(subject.pseudonym);
            return;
        }
        if let Ok(zone) = subject.profile.timezone.parse::<Tz>() {
            self.zones.insert(subject.id.0, zone);
        }
        self.known.insert(subject.pseudonym, subject.id.0);
    }

    /// The subject of each row of an extract, by pseudonym (`subject`, created when new) or
    /// by id (`subject_id`). Rows with no subject, an unknown id or an erased subject are
    /// refused one by one, not the whole batch.
    pub(crate) async fn rows(&mut self, batch: &RecordBatch) -> Result<RowSubjects> {
        let rows = batch.num_rows();
        let mut ids: Vec<Option<i64>> = vec![None; rows];
        let mut refusals = HashMap::new();
        if let Some(column) = batch.column_by_name(SUBJECT) {
            let names = arrow::compute::cast(column, &DataType::Utf8)
                .map_err(|e| Error::file(self.source, format!("column '{SUBJECT}': {e}")))?;
            let names = names.as_string::<i32>();
            self.learn(names.iter().flatten().map(str::trim)).await?;
            let mut previous: Option<(&str, i64)> = None;
            for (row, id) in ids.iter_mut().enumerate() {
                let name = if names.is_null(row) {
                    ""
                } else {
                    names.value(row).trim()
                };
                if let Some((previous_name, previous_id)) = previous
                    && previous_name == name
                {
                    *id = Some(previous_id);
                } else if name.is_empty() {
                    refusals.insert(row, ("no subject".to_owned(), None));
                } else if let Some(known) = self.known.get(name) {
                    *id = Some(*known);
                    previous = Some((name, *known));
                } else {
                    refusals.insert(
                        row,
                        (
                            format!("subject {name} is erased; its data is no longer accepted"),
                            Some(name.to_owned()),
                        ),
                    );
                }
            }
        } else if let Some(column) = batch.column_by_name(SUBJECT_ID) {
            let given = arrow::compute::cast(column, &DataType::Int64).map_err(|e| {
                Error::file(
                    self.source,
                    format!("column '{SUBJECT_ID}' must hold subject ids: {e}"),
                )
            })?;
            let given = given.as_primitive::<arrow::datatypes::Int64Type>();
            if self.by_id.is_none() {
                let all = self
                    .engine
                    .catalog()
                    .subjects()
                    .list(self.org)
                    .await
                    .map_err(|e| Error::file(self.source, e.to_string()))?;
                self.by_id = Some(all.into_iter().map(|s| (s.id.0, s)).collect());
            }
            let by_id = self.by_id.clone().unwrap_or_default();
            for (row, id) in ids.iter_mut().enumerate() {
                if given.is_null(row) {
                    refusals.insert(row, ("no subject".to_owned(), None));
                    continue;
                }
                let value = given.value(row);
                match by_id.get(&value) {
                    Some(subject) if subject.erased_at.is_none() => {
                        *id = Some(value);
                        if let Ok(zone) = subject.profile.timezone.parse::<Tz>() {
                            self.zones.insert(value, zone);
                        }
                    }
                    Some(_) => {
                        refusals.insert(
                            row,
                            (
                                format!(
                                    "subject {value} is erased; its data is no longer accepted"
                                ),
                                Some(value.to_string()),
                            ),
                        );
                    }
                    None => {
                        refusals.insert(
                            row,
                            (
                                format!("the organization has no subject {value}"),
                                Some(value.to_string()),
                            ),
                        );
                    }
                }
            }
        } else {
            return Err(Error::file(
                self.source,
                format!(
                    "no '{SUBJECT}' or '{SUBJECT_ID}' column: name the subject (e.g. --subject S0001)"
                ),
            ));
        }
        // Rows come in runs of one subject: look each run's zone up once.
        let mut zones = HashMap::new();
        let mut previous = None;
        for id in ids.iter().flatten() {
            if previous.replace(*id) != Some(*id)
                && let Some(zone) = self.zones.get(id)
            {
                zones.insert(*id, *zone);
            }
        }
        Ok(RowSubjects {
            ids: Int64Array::from(ids),
            refusals,
            zones,
        })
    }

    /// Replaces a `subject` column of pseudonyms by `subject_id`; `first_row` is the
    /// 1-based record number of the batch's first row, for messages.
    pub(crate) async fn resolve(
        &mut self,
        batch: RecordBatch,
        first_row: usize,
    ) -> Result<RecordBatch> {
        let Ok(index) = batch.schema().index_of(SUBJECT) else {
            return Ok(batch);
        };
        let names = batch.column(index).as_string_opt::<i32>().ok_or_else(|| {
            Error::file(
                self.source,
                format!("column '{SUBJECT}' must hold pseudonyms (text)"),
            )
        })?;
        if let Some(row) = (0..names.len()).find(|i| names.is_null(*i)) {
            return Err(Error::file(
                self.source,
                format!("record {}: no subject", first_row + row),
            ));
        }
        self.learn(names.iter().flatten()).await?;
        let mut ids = Vec::with_capacity(names.len());
        for (row, name) in names.iter().flatten().enumerate() {
            match self.known.get(name) {
                Some(id) => ids.push(*id),
                None if name.is_empty() => {
                    return Err(Error::file(
                        self.source,
                        format!("record {}: no subject", first_row + row),
                    ));
                }
                None => {
                    return Err(Error::file(
                        self.source,
                        format!(
                            "record {}: subject {name} is erased; its data is no longer accepted",
                            first_row + row
                        ),
                    ));
                }
            }
        }
        let mut fields: Vec<Field> = Vec::with_capacity(batch.num_columns());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (i, field) in batch.schema().fields().iter().enumerate() {
            if i == index {
                fields.push(Field::new("subject_id", DataType::Int64, false));
                columns.push(Arc::new(Int64Array::from(ids.clone())));
            } else {
                fields.push(field.as_ref().clone());
                columns.push(batch.column(i).clone());
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| Error::file(self.source, e.to_string()))
    }
}
