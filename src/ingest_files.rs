//! `healthai ingest`: files into the streams as one batch, with progress bars on a terminal,
//! ending with the batch's quality report.

use std::{io::Write, path::PathBuf, time::Instant};

use clap::Args;
use engine::{Engine, Principal};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ingest::{IngestOptions, IngestReport, clean::Stats, formats::Format};

use crate::CliError;

#[derive(Args)]
pub(crate) struct IngestArgs {
    /// Files or directories (walked) to ingest
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// auto (from each file's name and content), csv, ndjson, parquet, arrow, apple-health,
    /// fit, gpx, tcx, fitbit, google-fit, fhir, line-protocol[:ns|us|ms|s], or a
    /// food-composition table: foods, open-food-facts, usda-fdc, ciqual
    #[arg(long, default_value = "auto")]
    format: Format,
    /// The stream generic files feed; by default the stream their name starts with
    #[arg(long)]
    stream: Option<String>,
    /// The subject (pseudonym) of rows that name none
    #[arg(long)]
    subject: Option<String>,
    /// The source (device, app) of rows that name none; by default the format's name
    #[arg(long)]
    source: Option<String>,
    /// Map a file column to a stream column: --map heart_rate=bpm (repeatable)
    #[arg(long = "map", value_name = "FROM=TO", value_parser = parse_mapping)]
    mappings: Vec<(String, String)>,
}

fn parse_mapping(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(from, to)| (from.trim().to_owned(), to.trim().to_owned()))
        .filter(|(from, to)| !from.is_empty() && !to.is_empty())
        .ok_or_else(|| format!("'{text}' is not FROM=TO"))
}

impl IngestArgs {
    /// Files and directories with every option at its default.
    pub(crate) fn of(paths: Vec<PathBuf>) -> Self {
        IngestArgs {
            paths,
            format: Format::Auto,
            stream: None,
            subject: None,
            source: None,
            mappings: Vec::new(),
        }
    }

    fn options(&self) -> IngestOptions {
        let mut options = IngestOptions {
            format: self.format,
            stream: self.stream.clone(),
            subject: self.subject.clone(),
            source: self.source.clone(),
            ..IngestOptions::default()
        };
        options.map.renames = self.mappings.iter().cloned().collect();
        options
    }
}

/// Progress bars: one for the files, one for the rows of the current file.
struct Bars {
    files: ProgressBar,
    rows: ProgressBar,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let files = multi.add(ProgressBar::new(0));
        files.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        files.set_prefix("files");
        let rows = multi.add(ProgressBar::new_spinner());
        rows.set_style(
            ProgressStyle::with_template("{prefix:>8} {human_pos} rows ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        rows.set_prefix("rows");
        Bars { files, rows }
    }
}

impl ingest::Progress for Bars {
    fn files_found(&self, count: u64) {
        self.files.set_length(count);
    }

    fn file_started(&self, name: &str, _bytes: u64) {
        self.files.set_message(name.to_owned());
    }

    fn rows_read(&self, rows: u64) {
        self.rows.inc(rows);
    }

    fn file_finished(&self, _name: &str) {
        self.files.inc(1);
    }
}

pub(crate) async fn ingest(
    engine: &Engine,
    principal: &Principal,
    args: &IngestArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let started = Instant::now();
    let bars = Bars::new();
    let report = ingest::ingest(engine, principal, &args.paths, &args.options(), &bars).await;
    bars.files.finish_and_clear();
    bars.rows.finish_and_clear();
    let report = report?;
    print_report(out, &report, started.elapsed().as_secs_f64())?;
    if !report.failed.is_empty() && report.failed.len() == report.files {
        return Err(CliError::Failed(format!(
            "no file could be read ({} of {})",
            report.failed.len(),
            report.files
        )));
    }
    Ok(())
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A stream's coverage in one line: how many subjects, from when to when, and the subject
/// with the fewest rows (the one most likely to have a gap).
fn coverage_line(stream: &str, stats: &Stats) -> Option<String> {
    let first = stats.coverage.values().map(|c| c.first).min()?;
    let last = stats.coverage.values().map(|c| c.last).max()?;
    let (sparsest, rows) = stats
        .coverage
        .iter()
        .min_by_key(|(_, c)| c.rows)
        .map(|(subject, c)| (*subject, c.rows))?;
    let day = |nanos: i64| {
        chrono::DateTime::from_timestamp_nanos(nanos)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    Some(format!(
        "{stream:<18} {} subject(s), {} → {} UTC; fewest: subject {sparsest} ({} rows)",
        stats.coverage.len(),
        day(first),
        day(last),
        thousands(rows)
    ))
}

fn print_report(out: &mut impl Write, report: &IngestReport, seconds: f64) -> std::io::Result<()> {
    let total = report.totals();
    writeln!(
        out,
        "batch {}: {} file(s), {} rows read in {seconds:.1} s ({}/s)",
        report.batch,
        report.files,
        thousands(total.rows_in),
        thousands((total.rows_in as f64 / seconds.max(1e-9)) as u64),
    )?;
    writeln!(
        out,
        "  {} accepted, {} rejected, {} corrected, {} duplicates merged",
        thousands(total.rows_accepted),
        thousands(total.rejected()),
        thousands(total.corrected()),
        thousands(total.duplicates()),
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<18} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "stream", "rows in", "accepted", "rejected", "corrected", "duplicates"
    )?;
    for (stream, stats) in &report.streams {
        writeln!(
            out,
            "{:<18} {:>12} {:>12} {:>10} {:>10} {:>10}",
            stream,
            thousands(stats.rows_in),
            thousands(stats.rows_accepted),
            thousands(stats.rejected()),
            thousands(stats.corrected()),
            thousands(stats.duplicates()),
        )?;
    }
    if !report.foods.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{:<18} {:>12} {:>12} {:>10}",
            "foods (source)", "loaded", "skipped", "rejected"
        )?;
        for (source, counts) in &report.foods {
            writeln!(
                out,
                "{:<18} {:>12} {:>12} {:>10}",
                source,
                thousands(counts.loaded),
                thousands(counts.skipped),
                thousands(counts.rejected),
            )?;
        }
        for (source, counts) in &report.foods {
            if counts.notes.is_empty() {
                continue;
            }
            let notes: Vec<String> = counts
                .notes
                .iter()
                .map(|(kind, count)| format!("{kind} {}", thousands(*count)))
                .collect();
            writeln!(out, "  {source}: {}", notes.join(", "))?;
        }
    }
    let rules = rule_lines(report);
    if !rules.is_empty() {
        writeln!(out)?;
        writeln!(out, "rules that acted:")?;
        for line in rules {
            writeln!(out, "  {line}")?;
        }
    }
    let gaps: Vec<String> = report
        .streams
        .iter()
        .flat_map(|(stream, stats)| {
            stats
                .present
                .iter()
                .filter(|(_, (present, rows))| *rows > 0 && present < rows)
                .map(move |(column, (present, rows))| {
                    format!(
                        "{stream}.{column} {:.1} %",
                        100.0 * *present as f64 / *rows as f64
                    )
                })
        })
        .collect();
    if !gaps.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "completeness (values present in accepted rows): {}",
            gaps.join(", ")
        )?;
    }
    let covered: Vec<String> = report
        .streams
        .iter()
        .filter_map(|(stream, stats)| coverage_line(stream, stats))
        .collect();
    if !covered.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "time covered (per stream: subjects, span, fewest rows):"
        )?;
        for line in covered {
            writeln!(out, "  {line}")?;
        }
    }
    if !report.failed.is_empty() {
        writeln!(out)?;
        writeln!(out, "files not ingested (nothing of them was written):")?;
        for (file, problem) in &report.failed {
            writeln!(out, "  {file}: {problem}")?;
        }
    }
    if report.rejections_total > 0 {
        writeln!(out)?;
        let kept = report.rejections.len() as u64;
        writeln!(
            out,
            "quarantine: {} rejected rows{}; see them with\n  healthai query \"SELECT * FROM system.quarantine WHERE batch_id = {}\"",
            thousands(report.rejections_total),
            if kept < report.rejections_total {
                format!(" (the first {} kept)", thousands(kept))
            } else {
                String::new()
            },
            report.batch
        )?;
        for r in report.rejections.iter().take(5) {
            writeln!(out, "  {} record {}: {}", r.file, r.record, r.reason)?;
        }
    }
    Ok(())
}

/// One line per stream, column and rule that corrected, rejected or flagged something.
fn rule_lines(report: &IngestReport) -> Vec<String> {
    let describe = |stats: &Stats, stream: &str| -> Vec<String> {
        stats
            .rules
            .iter()
            .filter(|(_, c)| c.corrected + c.rejected + c.flagged > 0)
            .map(|((column, rule), c)| {
                let mut parts = Vec::new();
                if c.rejected > 0 {
                    parts.push(format!("{} rejected", thousands(c.rejected)));
                }
                if c.corrected > 0 {
                    parts.push(format!("{} corrected", thousands(c.corrected)));
                }
                if c.flagged > 0 {
                    parts.push(format!("{} flagged", thousands(c.flagged)));
                }
                format!(
                    "{:<30} {:<12} {} (of {} checked)",
                    format!("{stream}.{column}"),
                    rule,
                    parts.join(", "),
                    thousands(c.checked.max(c.rejected))
                )
            })
            .collect()
    };
    report
        .streams
        .iter()
        .flat_map(|(stream, stats)| describe(stats, stream))
        .collect()
}
