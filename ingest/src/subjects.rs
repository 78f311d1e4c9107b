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
use catalog::OrgId;
use engine::Engine;

use crate::{Error, Result};

/// The column that names subjects by pseudonym.
pub(crate) const SUBJECT: &str = "subject";

/// Pseudonyms to catalog ids, creating subjects the organization does not have yet.
pub(crate) struct Subjects<'a> {
    engine: &'a Engine,
    org: OrgId,
    source: &'a str,
    known: HashMap<String, i64>,
    erased: HashSet<String>,
}

impl<'a> Subjects<'a> {
    pub(crate) fn new(engine: &'a Engine, org: OrgId, source: &'a str) -> Self {
        Subjects {
            engine,
            org,
            source,
            known: HashMap::new(),
            erased: HashSet::new(),
        }
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
        let missing: Vec<String> = names
            .iter()
            .flatten()
            .filter(|n| !self.known.contains_key(*n) && !self.erased.contains(*n))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if !missing.is_empty() {
            let found = self
                .engine
                .catalog()
                .subjects()
                .ensure(self.org, &missing)
                .await
                .map_err(|e| Error::file(self.source, e.to_string()))?;
            for subject in found {
                if subject.erased_at.is_some() {
                    self.erased.insert(subject.pseudonym);
                } else {
                    self.known.insert(subject.pseudonym, subject.id.0);
                }
            }
        }
        let mut ids = Vec::with_capacity(names.len());
        for (row, name) in names.iter().flatten().enumerate() {
            match self.known.get(name) {
                Some(id) => ids.push(*id),
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
