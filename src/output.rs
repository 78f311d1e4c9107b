//! Query results on stdout: an aligned table for people, CSV with a header row, a JSON array
//! of objects, or a Parquet file.

use std::io::Write;

use arrow::{array::RecordBatch, util::pretty::pretty_format_batches};
use engine::QueryOutput;

use crate::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

impl Format {
    pub(crate) fn is_binary(self) -> bool {
        self == Format::Parquet
    }
}

pub(crate) fn write(
    out: &mut impl Write,
    format: Format,
    result: &QueryOutput,
) -> Result<(), CliError> {
    let batches: Vec<&RecordBatch> = result.batches.iter().collect();
    match format {
        Format::Table => {
            if result.batches.is_empty() {
                // Still show the columns of an empty result.
                let empty = RecordBatch::new_empty(result.schema.clone());
                writeln!(out, "{}", pretty_format_batches(&[empty])?)?;
            } else {
                writeln!(out, "{}", pretty_format_batches(&result.batches)?)?;
            }
            writeln!(
                out,
                "{} row{}",
                result.num_rows(),
                if result.num_rows() == 1 { "" } else { "s" }
            )?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(result.schema.clone()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut *out);
            writer.write_batches(&batches)?;
            writer.finish()?;
            writeln!(out)?;
        }
        Format::Parquet => {
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(Vec::new(), result.schema.clone(), None)?;
            for batch in batches {
                writer.write(batch)?;
            }
            out.write_all(&writer.into_inner()?)?;
        }
    }
    Ok(())
}
