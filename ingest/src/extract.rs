//! What a format reader hands to cleaning: rows for one stream, values as the source wrote
//! them, and where each row came from.

use std::{collections::HashMap, sync::Arc};

use arrow::array::RecordBatch;

/// The column naming subjects by pseudonym.
pub const SUBJECT: &str = "subject";
/// The column naming subjects by catalog id.
pub const SUBJECT_ID: &str = "subject_id";
/// The suffix of a column giving, per row, the unit of the column it is named after
/// (`weight_kg_unit` for `weight_kg`).
pub const UNIT_SUFFIX: &str = "_unit";
/// The column of a row a reader could not make sense of (a line that does not parse): the
/// reason, for cleaning to quarantine the row with; null for good rows. No stream column can
/// have this name (they start with a letter).
pub const MALFORMED: &str = "_malformed";

/// Rows a reader found for one stream, before any cleaning.
#[derive(Debug, Clone)]
pub struct Extract {
    pub stream: String,
    /// Columns named like the stream's, of any Arrow type (text when in doubt); subjects as
    /// `subject` or `subject_id`; per-row units as `<column>_unit`; rows that did not parse
    /// marked in [`MALFORMED`]. A missing `source` takes the reader's default.
    pub batch: RecordBatch,
    /// The unit of a whole column, where it is not the canonical one.
    pub units: HashMap<String, String>,
    /// The record number in the source (1-based line, element or message) of each row.
    pub records: Vec<u64>,
    /// The file (or entry of an archive) the rows come from, as messages name it.
    pub file: Arc<str>,
    /// The `source` of rows that do not name one.
    pub default_source: String,
}
