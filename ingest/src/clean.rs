//! Cleaning: an [`Extract`] becomes rows of the stream's schema in canonical units and UTC,
//! in chunks processed in parallel with rayon. Every rule counts what it checked, corrected,
//! rejected or flagged; rejected rows go to the quarantine with their record, column and
//! reason, and the rows around them still land. Missing values stay missing.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use arrow::{
    array::{
        Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
        TimestampNanosecondArray,
    },
    compute::{cast, concat_batches, filter_record_batch},
    datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampNanosecondType},
    error::ArrowError,
};
use catalog::{ColumnRole, ColumnType, StreamColumn};
use chrono_tz::Tz;
use engine::StreamSchema;
use rayon::prelude::*;

use crate::{
    extract::{Extract, MALFORMED, UNIT_SUFFIX},
    series::{Coverage, OVERLAP},
    times::{self, Placed, When},
    units::{self, Conversion},
};

/// Rows per chunk cleaned by one rayon task, at most.
const CHUNK_ROWS: usize = 32 * 1024;
/// Longest text kept of an offending value.
const VALUE_CHARS: usize = 200;
/// Steps counted faster than this, per minute of the interval, are not plausible.
const MAX_STEPS_PER_MINUTE: f64 = 300.0;

/// The whole-row rules, reported under column `*`.
pub const ROW: &str = "*";

/// A rejected row: where it came from and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub stream: Arc<str>,
    pub file: Arc<str>,
    pub record: u64,
    pub column: Option<String>,
    pub rule: &'static str,
    pub reason: String,
    pub value: Option<String>,
}

/// What one rule did to one column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCount {
    pub checked: u64,
    pub corrected: u64,
    pub rejected: u64,
    pub flagged: u64,
}

impl RuleCount {
    fn add(&mut self, other: &RuleCount) {
        self.checked += other.checked;
        self.corrected += other.corrected;
        self.rejected += other.rejected;
        self.flagged += other.flagged;
    }
}

/// The counts of a cleaning, by (column, rule); completeness by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub rows_in: u64,
    pub rows_accepted: u64,
    pub rules: BTreeMap<(String, &'static str), RuleCount>,
    /// Per value column: (values present, rows) among accepted rows.
    pub present: BTreeMap<String, (u64, u64)>,
    /// Per subject id: the time its accepted rows cover.
    pub coverage: BTreeMap<i64, Coverage>,
}

impl Stats {
    pub fn merge(&mut self, other: &Stats) {
        self.rows_in += other.rows_in;
        self.rows_accepted += other.rows_accepted;
        for (key, count) in &other.rules {
            self.rules.entry(key.clone()).or_default().add(count);
        }
        for (column, (present, rows)) in &other.present {
            let entry = self.present.entry(column.clone()).or_default();
            entry.0 += present;
            entry.1 += rows;
        }
        for (subject, coverage) in &other.coverage {
            self.coverage
                .entry(*subject)
                .and_modify(|c| c.merge(coverage))
                .or_insert(*coverage);
        }
    }

    pub(crate) fn rule(&mut self, column: &str, rule: &'static str) -> &mut RuleCount {
        self.rules.entry((column.to_owned(), rule)).or_default()
    }

    pub fn rejected(&self) -> u64 {
        self.rows_in - self.rows_accepted - self.duplicates()
    }

    pub fn corrected(&self) -> u64 {
        self.rules
            .iter()
            .filter(|((column, rule), _)| !is_merge(column, rule))
            .map(|(_, c)| c.corrected)
            .sum()
    }

    /// Rows merged into others: duplicates, and sleep another source recorded in stages.
    pub fn duplicates(&self) -> u64 {
        self.rules
            .iter()
            .filter(|((column, rule), _)| is_merge(column, rule))
            .map(|(_, c)| c.corrected)
            .sum()
    }
}

/// The rule that merges rows with the same series key and time.
pub const DUPLICATE: &str = "duplicate";

/// Whether a rule's corrections are rows merged away (not rejected, not changed).
fn is_merge(column: &str, rule: &str) -> bool {
    column == ROW && (rule == DUPLICATE || rule == OVERLAP)
}

/// Accepted rows in the stream's schema, the rejected ones, and the counts.
#[derive(Debug)]
pub struct Cleaned {
    pub batch: RecordBatch,
    pub rejections: Vec<Rejection>,
    pub stats: Stats,
}

/// Subjects of an extract's rows, as the catalog resolved them.
pub struct RowSubjects {
    /// Null where the row's subject was refused.
    pub ids: Int64Array,
    /// Why, for refused rows.
    pub refusals: HashMap<usize, (String, Option<String>)>,
    /// The home time zone of each subject, for wall-clock times.
    pub zones: HashMap<i64, Tz>,
}

/// Cleans an extract for a stream, in parallel chunks.
pub fn clean(
    schema: &StreamSchema,
    extract: &Extract,
    subjects: &RowSubjects,
) -> Result<Cleaned, ArrowError> {
    let rows = extract.batch.num_rows();
    // Chunks of even length, so that a small last one does not leave a core idle.
    let chunk_rows = rows.div_ceil(rows.div_ceil(CHUNK_ROWS).max(1)).max(1);
    let chunks: Vec<(usize, usize)> = (0..rows)
        .step_by(chunk_rows)
        .map(|start| (start, chunk_rows.min(rows - start)))
        .collect();
    let parts: Vec<Cleaned> = chunks
        .into_par_iter()
        .map(|(offset, len)| Chunk::new(schema, extract, subjects, offset, len).clean())
        .collect::<Result<_, ArrowError>>()?;
    let mut stats = Stats::default();
    let mut rejections = Vec::new();
    let mut batches = Vec::with_capacity(parts.len());
    for part in parts {
        stats.merge(&part.stats);
        rejections.extend(part.rejections);
        batches.push(part.batch);
    }
    // Rules run column by column; the quarantine reads better in record order.
    rejections.sort_by_key(|r| r.record);
    let batch = concat_batches(schema.arrow_schema(), &batches)?;
    Ok(Cleaned {
        batch,
        rejections,
        stats,
    })
}

/// Keeps the last of the rows that share a series key and time, counting the others as
/// duplicates. Rows of `batch` must be in arrival order.
///
/// Runs on every row of an import, so it allocates nothing per row: text key columns become
/// small integers (consecutive repeats, the usual case, skip the lookup), and rows are sorted
/// by (subject, time, key, arrival) in parallel so that duplicates end up side by side.
pub fn deduplicate(
    schema: &StreamSchema,
    batch: RecordBatch,
    stats: &mut Stats,
) -> Result<RecordBatch, ArrowError> {
    let stream = schema.stream();
    let arrow = schema.arrow_schema();
    let (subject, time) = (arrow.index_of("subject_id")?, arrow.index_of("time")?);
    let subjects = batch.column(subject).as_primitive::<Int64Type>();
    let times = batch.column(time).as_primitive::<TimestampNanosecondType>();
    let rows = batch.num_rows();
    let mut keys = vec![0u32; rows];
    let mut combined: HashMap<(u32, u32), u32> = HashMap::new();
    let key_columns = stream
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.role == ColumnRole::Key && c.name != "subject_id")
        .filter_map(|(i, _)| batch.column(i).as_string_opt::<i32>());
    for (position, column) in key_columns.enumerate() {
        let ids = intern(column);
        if position == 0 {
            keys = ids;
            continue;
        }
        for (key, id) in keys.iter_mut().zip(ids) {
            let next = combined.len() as u32;
            *key = *combined.entry((*key, id)).or_insert(next);
        }
    }
    let key = |row: u32| {
        let row = row as usize;
        (subjects.value(row), times.value(row), keys[row])
    };
    let order = series_order(0..rows as u32, key);
    // In arrival order within a key: the later row wins.
    let replaced: Vec<u32> = order
        .par_windows(2)
        .filter(|pair| key(pair[0]) == key(pair[1]))
        .map(|pair| pair[0])
        .collect();
    let count = stats.rule(ROW, DUPLICATE);
    count.checked += rows as u64;
    count.corrected += replaced.len() as u64;
    if replaced.is_empty() {
        return Ok(batch);
    }
    stats.rows_accepted -= replaced.len() as u64;
    let mut keep = vec![true; rows];
    for row in replaced {
        keep[row as usize] = false;
    }
    filter_record_batch(&batch, &BooleanArray::from(keep))
}

/// The rows given, in the order of their keys and, within a key, of arrival. Files list a
/// subject's rows in time order, so most rows arrive sorted: one pass over the keys checks
/// that and saves the sort.
pub(crate) fn series_order<K: Ord + Send>(
    rows: impl Iterator<Item = u32>,
    key: impl Fn(u32) -> K + Sync,
) -> Vec<u32> {
    let mut order = Vec::with_capacity(rows.size_hint().1.unwrap_or_default());
    order.extend(rows);
    if !order
        .par_windows(2)
        .all(|pair| key(pair[0]) <= key(pair[1]))
    {
        order.par_sort_unstable_by_key(|&row| (key(row), row));
    }
    order
}

/// A small integer per distinct value of a text column, in the order values first appear.
fn intern(column: &StringArray) -> Vec<u32> {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut previous: Option<(&str, u32)> = None;
    (0..column.len())
        .map(|row| {
            let value = column.value(row);
            match previous {
                Some((text, id)) if text == value => id,
                _ => {
                    let next = ids.len() as u32;
                    let id = *ids.entry(value).or_insert(next);
                    previous = Some((value, id));
                    id
                }
            }
        })
        .collect()
}

/// One chunk of an extract being cleaned.
struct Chunk<'a> {
    schema: &'a StreamSchema,
    extract: &'a Extract,
    subjects: &'a RowSubjects,
    offset: usize,
    len: usize,
    keep: Vec<bool>,
    stream_name: Arc<str>,
    rejections: Vec<Rejection>,
    stats: Stats,
}

impl<'a> Chunk<'a> {
    fn new(
        schema: &'a StreamSchema,
        extract: &'a Extract,
        subjects: &'a RowSubjects,
        offset: usize,
        len: usize,
    ) -> Self {
        Chunk {
            schema,
            extract,
            subjects,
            offset,
            len,
            keep: vec![true; len],
            stream_name: schema.name().into(),
            rejections: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn input(&self, name: &str) -> Option<ArrayRef> {
        self.extract
            .batch
            .column_by_name(name)
            .map(|c| c.slice(self.offset, self.len))
    }

    fn reject(
        &mut self,
        row: usize,
        column: Option<&str>,
        rule: &'static str,
        reason: String,
        value: Option<String>,
    ) {
        if !self.keep[row] {
            return;
        }
        self.keep[row] = false;
        self.stats.rule(column.unwrap_or(ROW), rule).rejected += 1;
        self.rejections.push(Rejection {
            stream: self.stream_name.clone(),
            file: self.extract.file.clone(),
            record: self
                .extract
                .records
                .get(self.offset + row)
                .copied()
                .unwrap_or(0),
            column: column.map(str::to_owned),
            rule,
            reason,
            value: value.map(|v| v.chars().take(VALUE_CHARS).collect()),
        });
    }

    /// Rejects every row of the chunk: the whole column is unusable.
    fn reject_all(&mut self, column: &str, rule: &'static str, reason: String) {
        for row in 0..self.len {
            self.reject(row, Some(column), rule, reason.clone(), None);
        }
    }

    fn clean(mut self) -> Result<Cleaned, ArrowError> {
        self.stats.rows_in = self.len as u64;
        self.malformed();
        let subject_ids = self.subject_ids();
        let times = self.times("time", &subject_ids, true);
        let end_times = self
            .schema
            .arrow_schema()
            .index_of("end_time")
            .ok()
            .map(|_| self.times("end_time", &subject_ids, true));
        let source = self.source();
        let stream = self.schema.stream().clone();
        let mut values: Vec<(String, ArrayRef)> = Vec::new();
        for column in stream.columns.iter().filter(|c| {
            !matches!(
                c.name.as_str(),
                "subject_id" | "source" | "time" | "end_time"
            )
        }) {
            let array = self.value(column);
            values.push((column.name.clone(), array));
        }
        if let Some(end_times) = &end_times {
            self.intervals(&times, end_times, &values);
        }
        self.required(&values);
        let keep = BooleanArray::from(self.keep.clone());
        let accepted = keep.true_count();
        self.stats.rows_accepted = accepted as u64;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(stream.columns.len());
        for column in &stream.columns {
            let array: ArrayRef = match column.name.as_str() {
                "subject_id" => Arc::new(subject_ids.clone()),
                "source" => source.clone(),
                "time" => Arc::new(times.clone()),
                "end_time" => Arc::new(end_times.clone().unwrap_or_else(|| times.clone())),
                name => values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_else(|| {
                        arrow::array::new_null_array(
                            &engine::arrow_type(column.arrow_type),
                            self.len,
                        )
                    }),
            };
            columns.push(array);
        }
        let filtered: Vec<ArrayRef> = columns
            .iter()
            .map(|c| arrow::compute::filter(c, &keep))
            .collect::<Result<_, ArrowError>>()?;
        for (name, array) in &values {
            let kept = arrow::compute::filter(array, &keep).map(|a| a.len() - a.null_count())?;
            let entry = self.stats.present.entry(name.clone()).or_default();
            entry.0 += kept as u64;
            entry.1 += accepted as u64;
        }
        // Non-nullable columns had their nulls rejected above, so the schema holds.
        let batch = RecordBatch::try_new(self.schema.arrow_schema().clone(), filtered)?;
        Ok(Cleaned {
            batch,
            rejections: self.rejections,
            stats: self.stats,
        })
    }

    /// Rows the reader could not parse, rejected with the reader's reason before any other
    /// rule looks at them.
    fn malformed(&mut self) {
        let Some(column) = self.input(MALFORMED) else {
            return;
        };
        let Some(reasons) = column.as_string_opt::<i32>() else {
            return;
        };
        for row in 0..self.len {
            if reasons.is_valid(row) {
                let reason = reasons.value(row).to_owned();
                self.reject(row, None, "parse", reason, None);
            }
        }
        self.stats.rule(ROW, "parse").checked += self.len as u64;
    }

    fn subject_ids(&mut self) -> Int64Array {
        let ids = self.subjects.ids.slice(self.offset, self.len);
        for row in 0..self.len {
            if ids.is_null(row) {
                let (reason, value) = self
                    .subjects
                    .refusals
                    .get(&(self.offset + row))
                    .cloned()
                    .unwrap_or_else(|| ("no subject".to_owned(), None));
                self.reject(row, Some("subject"), "subject", reason, value);
            }
        }
        self.stats.rule("subject", "subject").checked += self.len as u64;
        // Rejected rows are filtered out; a placeholder keeps the array non-null.
        Int64Array::from_iter_values(
            (0..self.len).map(|row| if ids.is_null(row) { 0 } else { ids.value(row) }),
        )
    }

    /// A time column as UTC nanoseconds; rows with no usable time are rejected.
    fn times(
        &mut self,
        name: &str,
        subject_ids: &Int64Array,
        required: bool,
    ) -> TimestampNanosecondArray {
        let mut out = vec![0i64; self.len];
        let Some(input) = self.input(name) else {
            if required {
                self.reject_all(name, "required", format!("no {name} column"));
            }
            return TimestampNanosecondArray::from(out);
        };
        let mut zone_rule = RuleCount::default();
        let parse_rule = RuleCount {
            checked: self.len as u64,
            ..RuleCount::default()
        };
        match input.data_type() {
            DataType::Timestamp(_, zone) => {
                let instants = zone.is_some();
                let nanos = cast(&input, &DataType::Timestamp(TimeUnit::Nanosecond, None));
                let Ok(nanos) = nanos else {
                    self.reject_all(name, "time", format!("{name} is out of range"));
                    return TimestampNanosecondArray::from(out);
                };
                let nanos = nanos.as_primitive::<TimestampNanosecondType>();
                for (row, slot) in out.iter_mut().enumerate() {
                    if nanos.is_null(row) {
                        self.reject(
                            row,
                            Some(name),
                            "required",
                            format!("{name} is missing"),
                            None,
                        );
                    } else if instants {
                        *slot = nanos.value(row);
                    } else {
                        *slot =
                            self.local(row, nanos.value(row), subject_ids, name, &mut zone_rule);
                    }
                }
            }
            _ => {
                let text = match cast(&input, &DataType::Utf8) {
                    Ok(text) => text,
                    Err(e) => {
                        self.reject_all(
                            name,
                            "time",
                            format!("{name} cannot be read as a time: {e}"),
                        );
                        return TimestampNanosecondArray::from(out);
                    }
                };
                let text = text.as_string::<i32>();
                for (row, slot) in out.iter_mut().enumerate() {
                    if text.is_null(row) || text.value(row).trim().is_empty() {
                        self.reject(
                            row,
                            Some(name),
                            "required",
                            format!("{name} is missing"),
                            None,
                        );
                        continue;
                    }
                    match times::parse(text.value(row)) {
                        Some(When::Instant(n)) => *slot = n,
                        Some(When::Local(n)) => {
                            *slot = self.local(row, n, subject_ids, name, &mut zone_rule);
                        }
                        None => {
                            let value = text.value(row).to_owned();
                            self.reject(
                                row,
                                Some(name),
                                "time",
                                format!("{name} '{value}' is not a time (use RFC 3339, e.g. 2026-03-01T06:00:00Z)"),
                                Some(value),
                            );
                        }
                    }
                }
            }
        }
        self.stats.rule(name, "time").add(&parse_rule);
        self.stats.rule(name, "timezone").add(&zone_rule);
        TimestampNanosecondArray::from(out)
    }

    /// A wall-clock time placed in the row subject's home zone (UTC when it has none).
    fn local(
        &mut self,
        row: usize,
        wall: i64,
        subject_ids: &Int64Array,
        name: &str,
        rule: &mut RuleCount,
    ) -> i64 {
        rule.checked += 1;
        let Some(zone) = self.subjects.zones.get(&subject_ids.value(row)) else {
            return wall;
        };
        match times::place(wall, *zone) {
            Some(Placed::Exact(n)) => {
                if n != wall {
                    rule.corrected += 1;
                }
                n
            }
            Some(placed @ (Placed::Ambiguous(_) | Placed::Skipped(_))) => {
                rule.corrected += 1;
                rule.flagged += 1;
                placed.nanos()
            }
            None => {
                self.reject(
                    row,
                    Some(name),
                    "timezone",
                    format!("{name} cannot be placed in {zone}"),
                    None,
                );
                wall
            }
        }
    }

    fn source(&mut self) -> ArrayRef {
        let default = self.extract.default_source.as_str();
        match self.input("source").map(|s| cast(&s, &DataType::Utf8)) {
            Some(Ok(text)) => {
                let text = text.as_string::<i32>();
                let mut filled = 0;
                let values: StringArray = (0..self.len)
                    .map(|row| {
                        if text.is_null(row) || text.value(row).trim().is_empty() {
                            filled += 1;
                            Some(default)
                        } else {
                            Some(text.value(row).trim())
                        }
                    })
                    .collect();
                let rule = self.stats.rule("source", "default");
                rule.checked += self.len as u64;
                rule.corrected += filled;
                Arc::new(values)
            }
            _ => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                default, self.len,
            ))),
        }
    }

    /// A value column typed, in its canonical unit, checked against its range and vocabulary.
    fn value(&mut self, column: &StreamColumn) -> ArrayRef {
        let name = column.name.as_str();
        let target = engine::arrow_type(column.arrow_type);
        let Some(input) = self.input(name) else {
            return arrow::array::new_null_array(&target, self.len);
        };
        match column.arrow_type {
            ColumnType::Float64 | ColumnType::Int64 => self.number(column, &input),
            ColumnType::Utf8 => self.text(column, &input),
            ColumnType::Boolean => self.boolean(column, &input),
            ColumnType::TimestampNs => {
                let ids = Int64Array::from(vec![0; self.len]);
                Arc::new(self.times(name, &ids, false))
            }
        }
    }

    fn number(&mut self, column: &StreamColumn, input: &ArrayRef) -> ArrayRef {
        let name = column.name.as_str();
        let type_rule = RuleCount {
            checked: self.len as u64,
            ..RuleCount::default()
        };
        let mut values: Vec<Option<f64>> = match input.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let text = cast(input, &DataType::Utf8).unwrap_or_else(|_| input.clone());
                let text = text.as_string::<i32>();
                let mut out = Vec::with_capacity(self.len);
                for row in 0..self.len {
                    let raw = if text.is_null(row) {
                        ""
                    } else {
                        text.value(row).trim()
                    };
                    if raw.is_empty() {
                        out.push(None);
                        continue;
                    }
                    match raw.parse::<f64>() {
                        Ok(v) if v.is_finite() => out.push(Some(v)),
                        _ => {
                            out.push(None);
                            self.reject(
                                row,
                                Some(name),
                                "type",
                                format!("{name} '{raw}' is not a number"),
                                Some(raw.to_owned()),
                            );
                        }
                    }
                }
                out
            }
            _ => match cast(input, &DataType::Float64) {
                Ok(numbers) => numbers.as_primitive::<Float64Type>().iter().collect(),
                Err(e) => {
                    self.reject_all(
                        name,
                        "type",
                        format!("{name} of type {} is not a number: {e}", input.data_type()),
                    );
                    vec![None; self.len]
                }
            },
        };
        self.stats.rule(name, "type").add(&type_rule);
        self.convert_units(column, &mut values);
        self.check_range(column, &mut values);
        match column.arrow_type {
            ColumnType::Int64 => {
                let mut rounded = 0;
                let ints: Int64Array = values
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            if v.fract() != 0.0 {
                                rounded += 1;
                            }
                            v.round() as i64
                        })
                    })
                    .collect();
                let rule = self.stats.rule(name, "integer");
                rule.checked += self.len as u64;
                rule.corrected += rounded;
                Arc::new(ints)
            }
            _ => Arc::new(Float64Array::from(values)),
        }
    }

    fn convert_units(&mut self, column: &StreamColumn, values: &mut [Option<f64>]) {
        let name = column.name.as_str();
        let Some(canonical) = column.unit.as_deref() else {
            return;
        };
        let column_unit = self.extract.units.get(name).cloned();
        let row_units = self
            .input(&format!("{name}{UNIT_SUFFIX}"))
            .and_then(|u| cast(&u, &DataType::Utf8).ok());
        if column_unit.is_none() && row_units.is_none() {
            return;
        }
        let mut rule = RuleCount::default();
        let mut conversions: HashMap<String, Result<Conversion, String>> = HashMap::new();
        for (row, slot) in values.iter_mut().enumerate() {
            let Some(value) = *slot else { continue };
            rule.checked += 1;
            let row_unit = row_units
                .as_ref()
                .map(|u| u.as_string::<i32>())
                .filter(|u| !u.is_null(row) && !u.value(row).trim().is_empty())
                .map(|u| u.value(row).trim().to_owned());
            let Some(unit) = row_unit.or_else(|| column_unit.clone()) else {
                continue;
            };
            let conversion = conversions
                .entry(unit.clone())
                .or_insert_with(|| units::conversion(&unit, canonical))
                .clone();
            match conversion {
                Ok(c) if c.is_identity() => {}
                Ok(c) => {
                    *slot = Some(c.apply(value));
                    rule.corrected += 1;
                }
                Err(reason) => {
                    *slot = None;
                    self.reject(
                        row,
                        Some(name),
                        "unit",
                        format!("{name}: {reason}"),
                        Some(unit),
                    );
                }
            }
        }
        self.stats.rule(name, "unit").add(&rule);
    }

    fn check_range(&mut self, column: &StreamColumn, values: &mut [Option<f64>]) {
        let name = column.name.as_str();
        if column.plausible_min.is_none() && column.plausible_max.is_none() {
            return;
        }
        let min = column.plausible_min.unwrap_or(f64::NEG_INFINITY);
        let max = column.plausible_max.unwrap_or(f64::INFINITY);
        let mut checked = 0;
        for (row, slot) in values.iter_mut().enumerate() {
            let Some(value) = *slot else { continue };
            checked += 1;
            if value < min || value > max {
                *slot = None;
                let unit = column.unit.as_deref().unwrap_or("");
                self.reject(
                    row,
                    Some(name),
                    "range",
                    format!("{name} {value} {unit} is outside the plausible {min}–{max}"),
                    Some(value.to_string()),
                );
            }
        }
        self.stats.rule(name, "range").checked += checked;
    }

    fn text(&mut self, column: &StreamColumn, input: &ArrayRef) -> ArrayRef {
        let name = column.name.as_str();
        let text = match cast(input, &DataType::Utf8) {
            Ok(text) => text,
            Err(e) => {
                self.reject_all(name, "type", format!("{name} cannot be read as text: {e}"));
                return arrow::array::new_null_array(&DataType::Utf8, self.len);
            }
        };
        let text = text.as_string::<i32>();
        let allowed: Option<HashSet<&str>> = column
            .allowed_values
            .as_ref()
            .map(|v| v.iter().map(String::as_str).collect());
        let mut rule = RuleCount::default();
        let mut out: Vec<Option<String>> = Vec::with_capacity(self.len);
        for row in 0..self.len {
            let raw = if text.is_null(row) {
                ""
            } else {
                text.value(row).trim()
            };
            if raw.is_empty() {
                out.push(None);
                continue;
            }
            let Some(allowed) = &allowed else {
                out.push(Some(raw.to_owned()));
                continue;
            };
            rule.checked += 1;
            if allowed.contains(raw) {
                out.push(Some(raw.to_owned()));
                continue;
            }
            let normalized = raw.to_lowercase().replace([' ', '-'], "_");
            if allowed.contains(normalized.as_str()) {
                rule.corrected += 1;
                out.push(Some(normalized));
            } else {
                out.push(None);
                let mut choices: Vec<_> = allowed.iter().copied().collect();
                choices.sort();
                self.reject(
                    row,
                    Some(name),
                    "vocabulary",
                    format!("{name} '{raw}' is not one of {}", choices.join(", ")),
                    Some(raw.to_owned()),
                );
            }
        }
        self.stats.rule(name, "vocabulary").add(&rule);
        Arc::new(StringArray::from(out))
    }

    fn boolean(&mut self, column: &StreamColumn, input: &ArrayRef) -> ArrayRef {
        let name = column.name.as_str();
        let text = cast(input, &DataType::Utf8).unwrap_or_else(|_| input.clone());
        let Some(text) = text.as_string_opt::<i32>() else {
            return arrow::array::new_null_array(&DataType::Boolean, self.len);
        };
        let mut out = Vec::with_capacity(self.len);
        for row in 0..self.len {
            let raw = if text.is_null(row) {
                ""
            } else {
                text.value(row).trim()
            };
            out.push(match raw.to_ascii_lowercase().as_str() {
                "" => None,
                "true" | "1" | "yes" | "y" => Some(true),
                "false" | "0" | "no" | "n" => Some(false),
                _ => {
                    self.reject(
                        row,
                        Some(name),
                        "type",
                        format!("{name} '{raw}' is not true or false"),
                        Some(raw.to_owned()),
                    );
                    None
                }
            });
        }
        Arc::new(BooleanArray::from(out))
    }

    /// Intervals end after they start, last no longer than the stream allows, and count
    /// steps no faster than a person walks.
    fn intervals(
        &mut self,
        starts: &TimestampNanosecondArray,
        ends: &TimestampNanosecondArray,
        values: &[(String, ArrayRef)],
    ) {
        let max = self
            .schema
            .stream()
            .max_duration_seconds
            .map(|s| s.saturating_mul(1_000_000_000));
        let steps = self
            .schema
            .stream()
            .columns
            .iter()
            .find(|c| c.unit.as_deref() == Some("{steps}"))
            .and_then(|c| values.iter().find(|(n, _)| *n == c.name))
            .and_then(|(n, a)| Some((n.clone(), cast(a, &DataType::Float64).ok()?)));
        let mut rule = RuleCount::default();
        for row in 0..self.len {
            if !self.keep[row] {
                continue;
            }
            rule.checked += 1;
            let duration = ends.value(row) - starts.value(row);
            if duration < 0 {
                self.reject(
                    row,
                    Some("end_time"),
                    "interval",
                    "end_time is before time".into(),
                    None,
                );
            } else if let Some(max) = max.filter(|max| duration > *max) {
                self.reject(
                    row,
                    Some("end_time"),
                    "interval",
                    format!(
                        "the interval lasts {} s, more than the {} s allowed",
                        duration / 1_000_000_000,
                        max / 1_000_000_000
                    ),
                    None,
                );
            } else if let Some((name, counts)) = &steps {
                let counts = counts.as_primitive::<Float64Type>();
                let count = (!counts.is_null(row)).then(|| counts.value(row));
                let minutes = duration as f64 / 60e9;
                if let Some(count) = count
                    && count > MAX_STEPS_PER_MINUTE * minutes.max(1.0 / 60.0)
                {
                    self.reject(
                        row,
                        Some(name),
                        "rate",
                        format!("{count} steps in {minutes:.1} min is more than {MAX_STEPS_PER_MINUTE} per minute"),
                        Some(count.to_string()),
                    );
                }
            }
        }
        self.stats.rule(ROW, "interval").add(&rule);
    }

    /// Rows whose required values are missing, after every other rule ran.
    fn required(&mut self, values: &[(String, ArrayRef)]) {
        let stream = self.schema.stream().clone();
        for column in stream.columns.iter().filter(|c| !c.nullable) {
            let Some((_, array)) = values.iter().find(|(n, _)| *n == column.name) else {
                continue;
            };
            let mut checked = 0;
            for row in 0..self.len {
                if !self.keep[row] {
                    continue;
                }
                checked += 1;
                if array.is_null(row) {
                    self.reject(
                        row,
                        Some(&column.name),
                        "required",
                        format!("{} is missing; it is required", column.name),
                        None,
                    );
                }
            }
            self.stats.rule(&column.name, "required").checked += checked;
        }
    }
}
