//! Where the rows of a simulated stream go: a buffered file of their own, CSV with a header or
//! NDJSON, with fast formatting of the per-minute rows (times and integers are formatted by
//! hand); or the subjects' documents (Apple Health, FHIR), shared by every stream.

use std::{
    cell::RefCell,
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    rc::Rc,
};

use super::{SimulationFormat, documents::Documents};

/// One cell of a row.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Str(&'a str),
    Int(i64),
    /// A number written with this many decimals.
    Dec(f64, usize),
    /// An instant in seconds since the Unix epoch, written in RFC 3339 in UTC (`…Z`), or as a
    /// local time without offset when the row is written with one.
    Time(i64),
    Missing,
}

/// The rows of one stream.
pub(super) enum Table {
    File(FileTable),
    Document {
        stream: &'static str,
        columns: Vec<&'static str>,
        documents: Rc<RefCell<Documents>>,
        rows: u64,
    },
}

impl Table {
    /// A file `dir/name.ndjson` for NDJSON, else `dir/name.csv`, with these columns.
    pub(super) fn create(
        dir: &Path,
        name: &str,
        columns: Vec<&'static str>,
        format: SimulationFormat,
    ) -> io::Result<Self> {
        FileTable::create(dir, name, columns, format == SimulationFormat::Ndjson).map(Table::File)
    }

    /// The rows of `stream`, written into the current subject's document.
    pub(super) fn document(
        stream: &'static str,
        columns: Vec<&'static str>,
        documents: Rc<RefCell<Documents>>,
    ) -> Self {
        Table::Document {
            stream,
            columns,
            documents,
            rows: 0,
        }
    }

    /// Writes a row `copies` times. With `naive_offset` (seconds east of UTC), times are
    /// written as local times without offset.
    pub(super) fn row(
        &mut self,
        vals: &[Val<'_>],
        naive_offset: Option<i64>,
        copies: u32,
    ) -> io::Result<()> {
        match self {
            Table::File(file) => file.row(vals, naive_offset, copies),
            Table::Document {
                stream,
                columns,
                documents,
                rows,
            } => {
                debug_assert_eq!(vals.len(), columns.len(), "{stream}");
                if documents
                    .borrow_mut()
                    .row(stream, columns, vals, naive_offset, copies)?
                {
                    *rows += u64::from(copies);
                }
                Ok(())
            }
        }
    }

    /// Flushes a file; its path (none for documents, which their subjects close) and the rows
    /// written.
    pub(super) fn finish(self) -> io::Result<(Option<PathBuf>, u64)> {
        match self {
            Table::File(file) => file.finish().map(|(path, rows)| (Some(path), rows)),
            Table::Document { rows, .. } => Ok((None, rows)),
        }
    }
}

/// A file of one stream.
pub(super) struct FileTable {
    path: PathBuf,
    /// NDJSON, else CSV.
    json: bool,
    columns: Vec<&'static str>,
    /// `"column":` for NDJSON.
    keys: Vec<Vec<u8>>,
    out: BufWriter<File>,
    line: Vec<u8>,
    rows: u64,
    /// The day last formatted and its `YYYY-MM-DDT`.
    day: Option<i64>,
    date: Vec<u8>,
}

impl FileTable {
    fn create(dir: &Path, name: &str, columns: Vec<&'static str>, json: bool) -> io::Result<Self> {
        let extension = if json { "ndjson" } else { "csv" };
        let path = dir.join(format!("{name}.{extension}"));
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        if !json {
            out.write_all(columns.join(",").as_bytes())?;
            out.write_all(b"\n")?;
        }
        let keys = columns
            .iter()
            .map(|c| {
                let mut key = Vec::new();
                push_json_string(&mut key, c);
                key.push(b':');
                key
            })
            .collect();
        Ok(FileTable {
            path,
            json,
            columns,
            keys,
            out,
            line: Vec::with_capacity(256),
            rows: 0,
            day: None,
            date: Vec::with_capacity(16),
        })
    }

    fn row(&mut self, vals: &[Val<'_>], naive_offset: Option<i64>, copies: u32) -> io::Result<()> {
        debug_assert_eq!(vals.len(), self.columns.len(), "{}", self.path.display());
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match self.json {
            false => {
                for (i, val) in vals.iter().enumerate() {
                    if i > 0 {
                        line.push(b',');
                    }
                    match *val {
                        Val::Str(s) => push_csv_string(&mut line, s),
                        Val::Int(n) => push_int(&mut line, n),
                        Val::Dec(x, decimals) => push_dec(&mut line, x, decimals),
                        Val::Time(t) => self.push_time(&mut line, t, naive_offset),
                        Val::Missing => {}
                    }
                }
                line.push(b'\n');
            }
            true => {
                line.push(b'{');
                let mut first = true;
                for (i, val) in vals.iter().enumerate() {
                    if matches!(val, Val::Missing) {
                        continue;
                    }
                    if !first {
                        line.push(b',');
                    }
                    first = false;
                    line.extend_from_slice(&self.keys[i]);
                    match *val {
                        Val::Str(s) => push_json_string(&mut line, s),
                        Val::Int(n) => push_int(&mut line, n),
                        Val::Dec(x, decimals) => push_dec(&mut line, x, decimals),
                        Val::Time(t) => {
                            line.push(b'"');
                            self.push_time(&mut line, t, naive_offset);
                            line.push(b'"');
                        }
                        Val::Missing => {}
                    }
                }
                line.extend_from_slice(b"}\n");
            }
        }
        let result = (0..copies).try_for_each(|_| self.out.write_all(&line));
        self.line = line;
        result?;
        self.rows += u64::from(copies);
        Ok(())
    }

    /// Flushes the file; its path and the rows written.
    fn finish(mut self) -> io::Result<(PathBuf, u64)> {
        self.out.flush()?;
        Ok((self.path, self.rows))
    }

    fn push_time(&mut self, line: &mut Vec<u8>, t: i64, naive_offset: Option<i64>) {
        let local = t + naive_offset.unwrap_or(0);
        let day = local.div_euclid(86_400);
        let second = local.rem_euclid(86_400);
        if self.day != Some(day) {
            let (y, m, d) = civil_from_days(day);
            self.date.clear();
            // Writing to a Vec cannot fail.
            let _ = write!(self.date, "{y:04}-{m:02}-{d:02}T");
            self.day = Some(day);
        }
        line.extend_from_slice(&self.date);
        push_two(line, second / 3600);
        line.push(b':');
        push_two(line, second / 60 % 60);
        line.push(b':');
        push_two(line, second % 60);
        if naive_offset.is_none() {
            line.push(b'Z');
        }
    }
}

/// Year, month and day of a day number counted from 1970-01-01 (H. Hinnant's algorithm).
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub(super) fn push_two(line: &mut Vec<u8>, n: i64) {
    line.push(b'0' + (n / 10) as u8);
    line.push(b'0' + (n % 10) as u8);
}

pub(super) fn push_int(line: &mut Vec<u8>, n: i64) {
    if n < 0 {
        line.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    line.extend_from_slice(&digits[i..]);
}

pub(super) fn push_dec(line: &mut Vec<u8>, x: f64, decimals: usize) {
    // Writing to a Vec cannot fail.
    let _ = write!(line, "{x:.decimals$}");
}

fn push_csv_string(line: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        line.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                line.push(b'"');
            }
            line.push(b);
        }
        line.push(b'"');
    } else {
        line.extend_from_slice(s.as_bytes());
    }
}

pub(super) fn push_json_string(line: &mut Vec<u8>, s: &str) {
    line.push(b'"');
    for c in s.chars() {
        match c {
            '"' => line.extend_from_slice(b"\\\""),
            '\\' => line.extend_from_slice(b"\\\\"),
            '\n' => line.extend_from_slice(b"\\n"),
            '\r' => line.extend_from_slice(b"\\r"),
            '\t' => line.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => {
                let mut buf = [0u8; 4];
                line.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    line.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_formats_dates_like_chrono() {
        for day in [-719_468, -1, 0, 59, 365, 10_957, 20_513, 20_543, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            let expected = chrono::DateTime::from_timestamp(day * 86_400, 0)
                .unwrap()
                .date_naive();
            assert_eq!(
                format!("{y:04}-{m:02}-{d:02}"),
                expected.format("%Y-%m-%d").to_string(),
                "day {day}"
            );
        }
        let mut line = Vec::new();
        push_int(&mut line, -1203);
        line.push(b' ');
        push_int(&mut line, 0);
        line.push(b' ');
        push_csv_string(&mut line, "a \"b\", c");
        line.push(b' ');
        push_json_string(&mut line, "q\"\\\u{1}é");
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "-1203 0 \"a \"\"b\"\", c\" \"q\\\"\\\\\\u0001é\""
        );
    }
}
