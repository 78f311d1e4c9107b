//! Text helpers of the food readers: CSV read as text, numbers, encodings.

use std::{
    io::{BufRead, Seek},
    sync::Arc,
};

use arrow::{
    array::{Array, AsArray, RecordBatch, StringArray},
    csv::{ReaderBuilder, reader::Format as CsvFormat},
    datatypes::{DataType, Field, Schema},
};

use crate::{Error, Result};

/// Rows per batch of a CSV read.
const CSV_ROWS: usize = 16 * 1024;

/// A CSV file read as text: its header and its rows in batches, every column Utf8.
pub(super) struct TextCsv<R: BufRead> {
    pub header: Vec<String>,
    reader: arrow::csv::reader::BufReader<R>,
    file: Arc<str>,
    /// The record number of the next row (the header is record 1).
    next_record: u64,
}

impl<R: BufRead + Seek> TextCsv<R> {
    /// Opens a CSV file with a header; `delimiter` is guessed from the header line when
    /// `None`. Quoted fields (RFC 4180) are understood.
    pub(super) fn open(mut reader: R, file: &Arc<str>, delimiter: Option<u8>) -> Result<Self> {
        let cannot = |e: &dyn std::fmt::Display| Error::file(file, format!("cannot read: {e}"));
        let delimiter = match delimiter {
            Some(d) => d,
            None => guess_delimiter(reader.fill_buf().map_err(|e| cannot(&e))?),
        };
        let format = CsvFormat::default()
            .with_header(true)
            .with_delimiter(delimiter);
        let (schema, _) = format
            .clone()
            .infer_schema(&mut reader, Some(0))
            .map_err(|e| Error::file(file, format!("cannot read the header: {e}")))?;
        reader.rewind().map_err(|e| cannot(&e))?;
        let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let text = Schema::new(
            header
                .iter()
                .map(|name| Field::new(name, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        );
        let reader = ReaderBuilder::new(Arc::new(text))
            .with_format(format)
            .with_batch_size(CSV_ROWS)
            .build_buffered(reader)
            .map_err(|e| Error::file(file, e.to_string()))?;
        Ok(TextCsv {
            header,
            reader,
            file: file.clone(),
            next_record: 2,
        })
    }
}

impl<R: BufRead> TextCsv<R> {
    /// The index of the first column named one of `names` (trimmed, any case).
    pub(super) fn column(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|name| {
            self.header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        })
    }

    /// The next batch of rows and the record number of its first row.
    pub(super) fn next_batch(&mut self) -> Result<Option<(u64, RecordBatch)>> {
        match self.reader.next() {
            None => Ok(None),
            Some(Ok(batch)) => {
                let first = self.next_record;
                self.next_record += batch.num_rows() as u64;
                Ok(Some((first, batch)))
            }
            Some(Err(e)) => Err(Error::file(
                &self.file,
                format!(
                    "not readable as CSV after record {}: {e}",
                    self.next_record - 1
                ),
            )),
        }
    }
}

/// The text of a column of a batch read by [`TextCsv`].
pub(super) fn strings(batch: &RecordBatch, column: usize) -> &StringArray {
    batch.column(column).as_string::<i32>()
}

/// A cell's trimmed text; `None` when empty.
pub(super) fn cell(column: Option<&StringArray>, row: usize) -> Option<&str> {
    let column = column?;
    if column.is_null(row) {
        return None;
    }
    Some(column.value(row).trim()).filter(|v| !v.is_empty())
}

/// The most frequent of tab, `;` and `,` in the header line (headers such as CIQUAL's hold
/// commas, but fewer than separators).
pub(super) fn guess_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| line.iter().filter(|b| **b == c).count();
    let (commas, tabs, semicolons) = (count(b','), count(b'\t'), count(b';'));
    if tabs > 0 && tabs >= commas.max(semicolons) {
        b'\t'
    } else if semicolons > commas {
        b';'
    } else {
        b','
    }
}

/// A number as written (`12.5`, `1e-3`); `Ok(None)` when empty, `Err` when not a number.
pub(super) fn number(raw: Option<&str>) -> Result<Option<f64>, ()> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(()),
        },
    }
}

/// Text as UTF-8 when it is valid UTF-8 (a byte-order mark dropped), else as Windows-1252
/// (a superset of Latin-1, what spreadsheets on Windows write); answers whether it decoded
/// Windows-1252.
pub(super) fn decode(bytes: Vec<u8>) -> (String, bool) {
    match String::from_utf8(bytes) {
        Ok(text) => match text.strip_prefix('\u{feff}') {
            Some(rest) => (rest.to_owned(), false),
            None => (text, false),
        },
        Err(e) => (
            e.as_bytes().iter().map(|b| windows_1252(*b)).collect(),
            true,
        ),
    }
}

/// The character of a Windows-1252 byte; the five bytes it leaves undefined map to the C1
/// controls of the same value, as the WHATWG encoding standard does.
fn windows_1252(byte: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}',
        '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}',
        '\u{178}',
    ];
    match byte {
        0x80..=0x9F => HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

/// A header reduced for comparison: lowercase, runs of white space as one space.
pub(super) fn normalized(header: &str) -> String {
    header
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn foods_text_is_decoded_as_utf8_else_windows_1252() {
        assert_eq!(
            decode("Protéines".as_bytes().to_vec()),
            ("Protéines".into(), false)
        );
        assert_eq!(
            decode(b"\xef\xbb\xbfalim_code".to_vec()),
            ("alim_code".into(), false)
        );
        assert_eq!(
            decode(b"Prot\xe9ines \x80 \x9c\x81".to_vec()),
            ("Protéines € œ\u{81}".into(), true)
        );
    }

    #[test]
    fn foods_numbers_and_delimiters_are_read() {
        assert_eq!(number(Some(" 12.5 ")), Ok(Some(12.5)));
        assert_eq!(number(Some("1e-3")), Ok(Some(0.001)));
        assert_eq!(number(Some("")), Ok(None));
        assert_eq!(number(None), Ok(None));
        assert_eq!(number(Some("12,5")), Err(()));
        assert_eq!(number(Some("inf")), Err(()));
        assert_eq!(guess_delimiter(b"a;b, c;d\n"), b';');
        assert_eq!(guess_delimiter(b"a\tb, c\td;e\n"), b'\t');
        assert_eq!(guess_delimiter(b"a,b,c\n"), b',');
        assert_eq!(
            normalized("Energie,  Règlement UE N° 1169/2011 (kcal/100 g) "),
            "energie, règlement ue n° 1169/2011 (kcal/100 g)"
        );
    }

    #[test]
    fn foods_csv_is_read_as_text_with_record_numbers() {
        let file: Arc<str> = "t.csv".into();
        let mut csv = TextCsv::open(
            Cursor::new(b"\"id\",\"name\"\n\"1\",\"Milk, whole\"\n2,\"say \"\"hi\"\"\"\n".to_vec()),
            &file,
            None,
        )
        .unwrap();
        assert_eq!(csv.header, ["id", "name"]);
        assert_eq!(csv.column(&["NAME"]), Some(1));
        let (first, batch) = csv.next_batch().unwrap().unwrap();
        assert_eq!(first, 2);
        assert_eq!(cell(Some(strings(&batch, 1)), 0), Some("Milk, whole"));
        assert_eq!(cell(Some(strings(&batch, 1)), 1), Some("say \"hi\""));
        assert!(csv.next_batch().unwrap().is_none());
    }
}
