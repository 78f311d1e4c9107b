//! Rows of one stream built as text columns: [`TextRows`], handed on as an extract every
//! `batch_rows` rows, is the output side of the readers that decode values one by one (Fitbit
//! account exports, Google Fit); [`Table`], filled a whole row at a time, that of the XML
//! readers (Apple Health, GPX, TCX). Values are written straight into the column builders, so a row costs no
//! allocation of its own.

use std::{collections::HashMap, fmt::Display, fmt::Write, sync::Arc};

use arrow::{
    array::{ArrayRef, RecordBatch, StringBuilder},
    datatypes::{DataType, Field, Schema},
};

use super::Sink;
use crate::{
    Error, Result,
    extract::Extract,
    times::{self, When},
};

/// One value of a row.
#[derive(Clone, Copy)]
pub(super) enum Cell<'a> {
    Missing,
    Text(&'a str),
    /// Written as it displays (numbers as the source gave them, text joined from parts).
    Display(&'a dyn Display),
    /// A time the reader computed (an interval's end), in the text `times` reads back.
    Time(When),
}

/// Rows of one stream on their way out.
pub(super) struct TextRows {
    stream: &'static str,
    names: &'static [&'static str],
    columns: Vec<StringBuilder>,
    records: Vec<u64>,
    units: HashMap<String, String>,
    file: Arc<str>,
    default_source: &'static str,
    batch_rows: usize,
}

impl TextRows {
    pub(super) fn new(
        stream: &'static str,
        names: &'static [&'static str],
        file: Arc<str>,
        default_source: &'static str,
        batch_rows: usize,
    ) -> Self {
        TextRows {
            stream,
            names,
            columns: names.iter().map(|_| StringBuilder::new()).collect(),
            records: Vec::new(),
            units: HashMap::new(),
            file,
            default_source,
            batch_rows,
        }
    }

    /// Gives a whole column a unit other than the stream's canonical one.
    pub(super) fn with_unit(mut self, column: &str, unit: &str) -> Self {
        self.units.insert(column.to_owned(), unit.to_owned());
        self
    }

    /// Adds a row (one cell per column, in order), handing the rows on once there are
    /// `batch_rows` of them.
    pub(super) fn push(&mut self, record: u64, cells: &[Cell], sink: &mut Sink) -> Result<()> {
        debug_assert_eq!(cells.len(), self.names.len(), "{}", self.stream);
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            let written = match cell {
                Cell::Missing => {
                    column.append_null();
                    Ok(())
                }
                Cell::Text(text) => {
                    column.append_value(text);
                    Ok(())
                }
                Cell::Display(value) => write!(column, "{value}"),
                Cell::Time(when) => times::write(*when, column),
            };
            written.map_err(|e| {
                Error::file(
                    &self.file,
                    format!("record {record}: cannot build rows: {e}"),
                )
            })?;
            if !matches!(cell, Cell::Missing | Cell::Text(_)) {
                column.append_value("");
            }
        }
        self.records.push(record);
        if self.records.len() >= self.batch_rows {
            self.flush(sink)?;
        }
        Ok(())
    }

    /// Hands the rows gathered so far to `sink` as one extract.
    pub(super) fn flush(&mut self, sink: &mut Sink) -> Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let schema = Schema::new(
            self.names
                .iter()
                .map(|n| Field::new(*n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        );
        let columns: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| Arc::new(c.finish()) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(Arc::new(schema), columns)
            .map_err(|e| Error::file(&self.file, format!("cannot build rows: {e}")))?;
        sink(Extract {
            stream: self.stream.to_owned(),
            batch,
            units: self.units.clone(),
            records: std::mem::take(&mut self.records),
            file: self.file.clone(),
            default_source: self.default_source.to_owned(),
        })
    }
}

/// Rows of one stream, as text columns, until they become an extract.
pub(super) struct Table {
    stream: &'static str,
    names: &'static [&'static str],
    columns: Vec<StringBuilder>,
    records: Vec<u64>,
}

impl Table {
    pub(super) fn new(stream: &'static str, names: &'static [&'static str]) -> Self {
        Table {
            stream,
            names,
            columns: names.iter().map(|_| StringBuilder::new()).collect(),
            records: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, record: u64, row: &[Option<&str>]) {
        debug_assert_eq!(row.len(), self.names.len(), "{}", self.stream);
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.append_option(*value);
        }
        self.records.push(record);
    }

    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    /// The rows gathered so far as one extract, if there are any.
    pub(super) fn finish(
        &mut self,
        file: &Arc<str>,
        default_source: &str,
    ) -> Result<Option<Extract>> {
        if self.records.is_empty() {
            return Ok(None);
        }
        let schema = Schema::new(
            self.names
                .iter()
                .map(|n| Field::new(*n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        );
        let columns: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| Arc::new(c.finish()) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(Arc::new(schema), columns)
            .map_err(|e| Error::file(file, format!("cannot build rows: {e}")))?;
        Ok(Some(Extract {
            stream: self.stream.to_owned(),
            batch,
            units: HashMap::new(),
            records: std::mem::take(&mut self.records),
            file: file.clone(),
            default_source: default_source.to_owned(),
        }))
    }

    /// Hands the rows gathered so far to `sink` as one extract.
    pub(super) fn flush(
        &mut self,
        file: &Arc<str>,
        default_source: &str,
        sink: &mut Sink,
    ) -> Result<()> {
        match self.finish(file, default_source)? {
            Some(extract) => sink(extract),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;

    #[test]
    fn text_rows_are_handed_on_in_batches_with_their_units() {
        let mut extracts = Vec::new();
        let mut sink = |extract| {
            extracts.push(extract);
            Ok(())
        };
        let mut rows = TextRows::new("body", &["time", "weight_kg"], "w.json".into(), "x", 2)
            .with_unit("weight_kg", "lb");
        rows.push(1, &[Cell::Text("t1"), Cell::Display(&165.2)], &mut sink)
            .unwrap();
        rows.push(2, &[Cell::Time(When::Local(0)), Cell::Missing], &mut sink)
            .unwrap();
        rows.push(
            5,
            &[
                Cell::Display(&format_args!("{} {}", "a", "b")),
                Cell::Text(""),
            ],
            &mut sink,
        )
        .unwrap();
        rows.flush(&mut sink).unwrap();
        rows.flush(&mut sink).unwrap();
        assert_eq!(
            extracts.len(),
            2,
            "a full batch, then the rest; nothing twice"
        );
        assert_eq!(extracts[0].records, [1, 2]);
        assert_eq!(extracts[1].records, [5]);
        assert_eq!(extracts[0].units["weight_kg"], "lb");
        assert_eq!(extracts[0].default_source, "x");
        let column = |e: &Extract, i: usize| e.batch.column(i).as_string::<i32>().clone();
        assert_eq!(column(&extracts[0], 0).value(0), "t1");
        assert_eq!(column(&extracts[0], 1).value(0), "165.2");
        assert_eq!(column(&extracts[0], 0).value(1), "1970-01-01T00:00:00");
        assert!(column(&extracts[0], 1).is_null(1));
        assert_eq!(column(&extracts[1], 0).value(0), "a b");
        assert!(!column(&extracts[1], 1).is_null(0));
    }
}
