//! `healthai simulate`: realistic, deterministic health data written as files to ingest.

use std::{collections::BTreeSet, io::Write, path::PathBuf};

use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use ingest::simulate::{SimulationFormat, SimulationOptions, simulate};

use crate::CliError;

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Ndjson,
    /// An Apple Health export.xml per subject (apple_health/<pseudonym>/export.xml)
    AppleHealth,
    /// A FHIR R4 Bundle per subject (fhir/<pseudonym>.json)
    Fhir,
}

#[derive(Args)]
pub(crate) struct SimulateArgs {
    /// Number of subjects (pseudonyms S0001, S0002, …)
    #[arg(long, default_value_t = 100)]
    subjects: usize,
    /// Number of days, from --start
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Seed: the same options write the same bytes
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First day (local to each subject)
    #[arg(long, default_value = "2026-03-01")]
    start: NaiveDate,
    /// Directory to write the files to (created)
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "csv")]
    format: FormatArg,
    /// Add the defects of real data: duplicates, out-of-range and unparseable values, pounds,
    /// wear gaps, local times without offset, overlapping sleep
    #[arg(long)]
    defects: bool,
}

pub(crate) fn run(args: &SimulateArgs, out: &mut impl Write) -> Result<(), CliError> {
    let options = SimulationOptions {
        subjects: args.subjects,
        first_subject: 0,
        days: args.days,
        seed: args.seed,
        start: args.start,
        defects: args.defects,
        format: match args.format {
            FormatArg::Csv => SimulationFormat::Csv,
            FormatArg::Ndjson => SimulationFormat::Ndjson,
            FormatArg::AppleHealth => SimulationFormat::AppleHealth,
            FormatArg::Fhir => SimulationFormat::Fhir,
        },
    };
    let summary = simulate(&options, &args.out)
        .map_err(|e| CliError::Failed(format!("cannot write to {}: {e}", args.out.display())))?;
    // A file per stream, or a document per subject holding several streams.
    let mut listed = BTreeSet::new();
    for file in &summary.files {
        let stream = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(rows) = summary.rows.get(&stream) {
            writeln!(out, "{:>12} rows  {}", rows, file.display())?;
            listed.insert(stream);
        }
    }
    if let Some(directory) = options.format.directory() {
        for (stream, rows) in summary.rows.iter().filter(|(s, _)| !listed.contains(*s)) {
            writeln!(out, "{rows:>12} rows  {stream}")?;
        }
        writeln!(
            out,
            "{:>12} files {}",
            summary.files.len() - listed.len(),
            args.out.join(directory).display()
        )?;
    }
    if !summary.defects.is_empty() {
        let defects: Vec<String> = summary
            .defects
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        writeln!(out, "defects: {}", defects.join(", "))?;
    }
    writeln!(
        out,
        "ingest them with: healthai ingest {}",
        args.out.display()
    )?;
    Ok(())
}
