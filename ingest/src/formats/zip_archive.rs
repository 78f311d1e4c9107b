//! Zip archives (Apple Health's `export.zip`, Google Takeout): their files, each read into
//! memory as an [`Input`] named `archive!entry`.

use std::io::Read;

use super::Input;
use crate::{Error, Result};

/// The largest entry read, uncompressed.
const ENTRY_LIMIT: u64 = 4 << 30;

/// The regular files of a zip archive, in archive order: directories, symbolic links and the
/// `__MACOSX/` resource forks macOS adds are skipped.
pub(crate) fn entries(input: &Input) -> Result<Vec<Input>> {
    entries_within(input, ENTRY_LIMIT)
}

fn entries_within(input: &Input, limit: u64) -> Result<Vec<Input>> {
    let archive_error = |e: zip::result::ZipError| {
        Error::file(&input.name, format!("not a readable zip archive: {e}"))
    };
    let mut archive = zip::ZipArchive::new(input.open()?).map_err(archive_error)?;
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(archive_error)?;
        let name = entry.name().to_owned();
        if !entry.is_file() || name.starts_with("__MACOSX/") {
            continue;
        }
        let entry_name = format!("{}!{name}", input.name);
        let too_large = |size: u64| {
            Error::file(
                &entry_name,
                format!(
                    "{size} bytes uncompressed, more than the {limit} bytes ({} GiB) an entry may have: unpack the archive and ingest its files",
                    limit >> 30
                ),
            )
        };
        if entry.size() > limit {
            return Err(too_large(entry.size()));
        }
        // The size in the header may lie: read no more than the limit allows.
        let mut bytes = Vec::with_capacity(entry.size().min(64 << 20) as usize);
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::file(&entry_name, format!("cannot unpack: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(too_large(bytes.len() as u64));
        }
        entries.push(Input::bytes(&entry_name, bytes));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use zip::{ZipWriter, write::SimpleFileOptions};

    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default();
        for (name, bytes) in files {
            if name.ends_with('/') {
                writer.add_directory(*name, options).unwrap();
            } else {
                writer.start_file(*name, options).unwrap();
                writer.write_all(bytes).unwrap();
            }
        }
        writer.finish().unwrap().into_inner()
    }

    fn contents(input: &Input) -> Vec<u8> {
        let mut bytes = Vec::new();
        input.open().unwrap().read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn zip_archive_entries_are_its_files_in_order() {
        let xml = b"<HealthData locale=\"en_US\"></HealthData>".repeat(100);
        let zip = archive(&[
            ("apple_health_export/", b""),
            ("apple_health_export/export.xml", &xml),
            (
                "__MACOSX/apple_health_export/._export.xml",
                b"\0\x05\x16\x07",
            ),
            ("apple_health_export/workout-routes/", b""),
            ("apple_health_export/workout-routes/route_1.gpx", b"<gpx/>"),
            (
                "heart_rate.csv",
                b"time,bpm\n2026-03-01 06:00:00 +0100,58\n",
            ),
        ]);
        let entries = entries(&Input::bytes("data/export.zip", zip)).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| &*e.name).collect();
        assert_eq!(
            names,
            [
                "data/export.zip!apple_health_export/export.xml",
                "data/export.zip!apple_health_export/workout-routes/route_1.gpx",
                "data/export.zip!heart_rate.csv",
            ]
        );
        assert_eq!(contents(&entries[0]), xml);
        assert_eq!(contents(&entries[1]), b"<gpx/>");
        assert_eq!(
            contents(&entries[2]),
            b"time,bpm\n2026-03-01 06:00:00 +0100,58\n"
        );
        assert_eq!(
            entries[2].stem(),
            "heart_rate",
            "entries are named like files"
        );
    }

    #[test]
    fn zip_archive_entries_over_the_limit_are_refused() {
        let zip = archive(&[("small.csv", b"a,b\n"), ("big.xml", &[b'x'; 100])]);
        let input = Input::bytes("export.zip", zip);
        assert_eq!(entries_within(&input, 100).unwrap().len(), 2);
        let err = entries_within(&input, 99).unwrap_err().to_string();
        assert!(
            err.starts_with("export.zip!big.xml: 100 bytes uncompressed, more than the 99 bytes"),
            "{err}"
        );
    }

    #[test]
    fn zip_archive_that_is_not_one_is_named() {
        let err = entries(&Input::bytes("export.zip", b"PK but not really".to_vec()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("export.zip: not a readable zip archive: "),
            "{err}"
        );
    }
}
