use arrow::{
    array::{Array, AsArray},
    datatypes::{Float64Type, Int64Type, TimestampNanosecondType},
};

use super::{
    decode::BaseType::{Enum, Sint32, Uint8, Uint32},
    encode::{self, Encoder, V, field, fit_time},
    *,
};

const NAME: &str = "garmin/2026-03-01.fit";

fn read_with(bytes: Vec<u8>, batch_rows: usize) -> Result<Vec<Extract>> {
    let name: Arc<str> = NAME.into();
    let mut reader = Reader::default();
    decode::decode(NAME, &bytes, |message| {
        reader.message(&message);
        Ok(())
    })?;
    let mut extracts = Vec::new();
    reader.finish(
        &name,
        &mut |e| {
            extracts.push(e);
            Ok(())
        },
        batch_rows,
    )?;
    Ok(extracts)
}

fn read_bytes(bytes: Vec<u8>) -> Result<Vec<Extract>> {
    let mut extracts = Vec::new();
    read(Input::bytes(NAME, bytes), &mut |e| {
        extracts.push(e);
        Ok(())
    })?;
    Ok(extracts)
}

fn stream<'a>(extracts: &'a [Extract], name: &str) -> &'a Extract {
    let mut found = extracts.iter().filter(|e| e.stream == name);
    let extract = found.next().unwrap_or_else(|| panic!("no {name} extract"));
    assert!(found.next().is_none(), "one {name} extract");
    extract
}

fn times(extract: &Extract, column: &str) -> Vec<Option<String>> {
    let array = extract.batch.column_by_name(column).unwrap();
    assert_eq!(
        array.data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    let array = array.as_primitive::<TimestampNanosecondType>();
    (0..array.len())
        .map(|i| {
            (!array.is_null(i)).then(|| {
                chrono::DateTime::from_timestamp_nanos(array.value(i))
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string()
            })
        })
        .collect()
}

fn numbers(extract: &Extract, column: &str) -> Vec<Option<f64>> {
    let array = extract.batch.column_by_name(column).unwrap();
    array.as_primitive::<Float64Type>().iter().collect()
}

fn rounded(values: Vec<Option<f64>>, digits: i32) -> Vec<Option<f64>> {
    let factor = 10f64.powi(digits);
    values
        .into_iter()
        .map(|v| v.map(|v| (v * factor).round() / factor))
        .collect()
}

fn close(actual: Vec<Option<f64>>, expected: &[Option<f64>], tolerance: f64) {
    assert_eq!(actual.len(), expected.len(), "{actual:?}");
    for (a, e) in actual.iter().zip(expected) {
        match (a, e) {
            (Some(a), Some(e)) => assert!((a - e).abs() <= tolerance, "{a} vs {e}"),
            _ => assert_eq!(a, e, "{actual:?}"),
        }
    }
}

fn some(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().copied().map(Some).collect()
}

#[test]
fn committed_fixtures_are_what_the_encoder_writes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fit");
    let bless = std::env::var_os("HEALTHAI_BLESS_FIXTURES").is_some();
    for (name, bytes) in encode::fixtures() {
        assert!(bytes.len() < 20 * 1024, "{name} stays small");
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} differs from what the encoder writes: rerun with HEALTHAI_BLESS_FIXTURES=1",
            path.display()
        );
    }
}

#[test]
fn fit_files_are_sniffed_and_detected() {
    let activity = encode::activity();
    assert!(sniff(&activity));
    assert!(sniff(&encode::activity_big_endian()), "12-byte header");
    assert!(!sniff(&activity[..11]));
    assert!(!sniff(b"subject,time,bpm\nS1,2026-03-01T06:00:00Z,60\n"));
    let mut renamed = activity.clone();
    renamed[9] = b'X';
    assert!(!sniff(&renamed));
    use crate::formats::{Format, detect};
    assert_eq!(
        detect(&Input::bytes("export/12345.bin", activity)).unwrap(),
        Format::Fit,
        "by content"
    );
    assert_eq!(
        detect(&Input::bytes("export/12345.FIT", b"\x0e\x10".to_vec())).unwrap(),
        Format::Fit,
        "by extension"
    );
    assert_eq!("fit".parse::<Format>().unwrap(), Format::Fit);
    assert_eq!(Format::Fit.name(), "fit");
    assert!(!Format::Fit.is_generic());
}

#[test]
fn fit_activity_records_become_samples() {
    let extracts = read_bytes(encode::activity()).unwrap();
    let streams: Vec<&str> = extracts.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, ["activity_samples", "workouts"]);
    for extract in &extracts {
        assert_eq!(extract.default_source, "garmin fenix 7");
        assert_eq!(&*extract.file, NAME);
        assert!(extract.units.is_empty());
        assert_eq!(extract.records.len(), extract.batch.num_rows());
    }
    let samples = stream(&extracts, "activity_samples");
    assert_eq!(
        times(samples, "time"),
        [
            "2026-03-01T07:00:00.000Z",
            "2026-03-01T07:00:01.000Z",
            "2026-03-01T07:00:02.000Z",
            "2026-03-01T07:00:03.000Z",
            "2026-03-01T07:00:04.000Z",
            "2026-03-01T07:00:05.000Z",
        ]
        .map(|t| Some(t.to_owned())),
        "compressed headers time records 3 and 4; the record with only a time makes no row"
    );
    // file_id 1-2, developer_data_id 3-4, field_description 5-6, device_info 7-8,
    // event 9-10, record definition 11, records 12-14, definition 15, compressed 16-17,
    // definition 18, records 19-20, …
    assert_eq!(samples.records, [12, 13, 14, 16, 17, 19]);
    close(
        numbers(samples, "lat"),
        &[
            Some(48.8566),
            Some(48.85665),
            None,
            Some(48.8567),
            Some(48.85675),
            Some(48.8568),
        ],
        1e-6,
    );
    close(
        numbers(samples, "lon"),
        &[
            Some(2.3522),
            Some(2.35225),
            None,
            Some(2.3523),
            Some(2.35235),
            Some(2.3524),
        ],
        1e-6,
    );
    assert_eq!(
        rounded(numbers(samples, "altitude_m"), 6),
        [Some(35.0), Some(35.2), None, None, None, Some(36.4)],
        "altitude / 5 - 500, enhanced_altitude in the last"
    );
    assert_eq!(
        rounded(numbers(samples, "speed_m_s"), 6),
        some(&[2.5, 2.55, 2.6, 2.65, 2.65, 2.7])
    );
    assert_eq!(
        numbers(samples, "cadence"),
        [Some(80.0), Some(82.0), Some(84.0), None, None, Some(85.5)],
        "fractional_cadence 64/128"
    );
    assert_eq!(
        numbers(samples, "power_w"),
        [Some(210.0), None, Some(230.0), None, None, Some(240.0)],
        "0xFFFF is missing, not 65535"
    );
    assert_eq!(
        numbers(samples, "heart_rate"),
        [
            Some(120.0),
            Some(122.0),
            None,
            Some(125.0),
            Some(126.0),
            Some(128.0)
        ],
        "0xFF is missing, not 255"
    );
    assert_eq!(
        rounded(numbers(samples, "distance_m"), 6),
        some(&[0.0, 3.05, 6.1, 9.15, 12.2, 15.25])
    );

    let workouts = stream(&extracts, "workouts");
    assert_eq!(
        times(workouts, "time"),
        [Some("2026-03-01T07:00:00.000Z".to_owned())]
    );
    assert_eq!(
        times(workouts, "end_time"),
        [Some("2026-03-01T07:30:25.500Z".to_owned())],
        "start + total_elapsed_time 1825.5 s"
    );
    assert_eq!(
        workouts
            .batch
            .column_by_name("sport")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "run"
    );
    assert_eq!(rounded(numbers(workouts, "distance_m"), 6), [Some(5123.4)]);
    assert_eq!(numbers(workouts, "energy_kcal"), [Some(412.0)]);
    assert_eq!(numbers(workouts, "avg_hr"), [Some(148.0)]);
    assert_eq!(numbers(workouts, "max_hr"), [Some(171.0)]);
}

#[test]
fn fit_big_endian_definitions_decode_alike() {
    let extracts = read_bytes(encode::activity_big_endian()).unwrap();
    let samples = stream(&extracts, "activity_samples");
    assert_eq!(samples.default_source, "wahoo elemnt bolt");
    close(numbers(samples, "lat"), &some(&[37.7749, 37.77495]), 1e-6);
    close(
        numbers(samples, "lon"),
        &some(&[-122.4194, -122.41945]),
        1e-6,
    );
    assert_eq!(
        rounded(numbers(samples, "altitude_m"), 6),
        some(&[16.0, 16.4])
    );
    assert_eq!(numbers(samples, "power_w"), [Some(250.0), None]);
    assert_eq!(
        rounded(numbers(samples, "speed_m_s"), 6),
        some(&[8.333, 8.4])
    );
    assert_eq!(numbers(samples, "heart_rate"), some(&[131.0, 133.0]));
    let workouts = stream(&extracts, "workouts");
    assert_eq!(
        workouts
            .batch
            .column_by_name("sport")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "ride"
    );
    assert_eq!(
        times(workouts, "end_time"),
        [Some("2026-03-02T17:30:00.000Z".to_owned())]
    );
    assert_eq!(
        rounded(numbers(workouts, "distance_m"), 6),
        [Some(30123.45)]
    );
}

#[test]
fn fit_monitoring_gives_heart_rate_and_step_intervals() {
    let extracts = read_bytes(encode::monitoring()).unwrap();
    let streams: Vec<&str> = extracts.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, ["heart_rate", "steps"]);
    let heart_rate = stream(&extracts, "heart_rate");
    assert_eq!(heart_rate.default_source, "garmin fenix 7");
    assert_eq!(
        times(heart_rate, "time"),
        [
            "2026-03-01T14:00:20.000Z",
            "2026-03-01T14:00:40.000Z",
            "2026-03-01T14:01:00.000Z",
            "2026-03-01T14:20:00.000Z",
            "2026-03-01T14:25:00.000Z",
        ]
        .map(|t| Some(t.to_owned())),
        "compressed headers 20 s and 40 s after 14:00:00 (a multiple of 32 s), timestamp_16 \
         across 14:24:00 (a multiple of 65,536 s)"
    );
    assert_eq!(
        numbers(heart_rate, "bpm"),
        some(&[66.0, 67.0, 64.0, 71.0, 88.0])
    );
    assert_eq!(fit_time("2026-03-01T14:00:00Z") % 32, 0);
    let boundary = fit_time("2026-03-01T14:24:00Z");
    assert_eq!(boundary % 65536, 0, "the fixture crosses a rollover");

    let steps = stream(&extracts, "steps");
    assert_eq!(
        times(steps, "time"),
        ["14:00", "14:15", "14:30"].map(|t| Some(format!("2026-03-01T{t}:00.000Z")))
    );
    assert_eq!(
        times(steps, "end_time"),
        ["14:15", "14:30", "14:45"].map(|t| Some(format!("2026-03-01T{t}:00.000Z")))
    );
    let counts: Vec<Option<i64>> = steps
        .batch
        .column_by_name("count")
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(
        counts,
        [Some(600), Some(400 + 2700), Some(120)],
        "walking 3000→3600; walking 3600→4000 and running 1000→3700 over the same interval; \
         a reset to 120; cycling counts no steps and a count that did not change makes no row"
    );
}

#[test]
fn fit_weigh_ins_become_body_rows() {
    let extracts = read_bytes(encode::weight_scale()).unwrap();
    let body = stream(&extracts, "body");
    assert_eq!(body.default_source, "garmin index smart scale");
    assert_eq!(
        times(body, "time"),
        [
            "2026-03-01T06:30:00.000Z",
            "2026-03-02T06:31:00.000Z",
            "2026-03-03T06:29:00.000Z",
        ]
        .map(|t| Some(t.to_owned())),
        "the weigh-in with nothing makes no row"
    );
    assert_eq!(
        rounded(numbers(body, "weight_kg"), 6),
        [Some(75.3), None, Some(74.8)],
        "0xFFFE (calculating) is missing"
    );
    assert_eq!(
        rounded(numbers(body, "fat_pct"), 6),
        [Some(22.15), Some(22.1), None]
    );
    assert_eq!(rounded(numbers(body, "bmi"), 6), [Some(23.6), None, None]);
}

#[test]
fn fit_damaged_files_hand_nothing_on_and_name_the_byte() {
    let whole = encode::short_run();
    let crc_at = whole.len() - 2;
    let mut handed = 0;
    let err = read(Input::bytes(NAME, encode::corrupt_crc()), &mut |_| {
        handed += 1;
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert_eq!(handed, 0);
    assert!(
        err.starts_with(&format!(
            "{NAME}: not a readable FIT file at byte {crc_at}: the file CRC is 0x"
        )),
        "{err}"
    );
    assert!(err.ends_with("the file is damaged"), "{err}");

    let cut = encode::truncated();
    let err = read_bytes(cut.clone()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{NAME}: not a readable FIT file at byte {}: the file was cut short: its header \
             announces {} bytes of records from byte 14 and a 2-byte CRC, but the file ends at \
             byte {}",
            cut.len(),
            whole.len() - 16,
            cut.len()
        )
    );

    let mut header = whole.clone();
    header[12] ^= 0xFF;
    let err = read_bytes(header).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{NAME}: not a readable FIT file at byte 12: the header CRC"
        )),
        "{err}"
    );
    let mut unchecked = whole.clone();
    unchecked[12..14].copy_from_slice(&[0, 0]);
    let content = unchecked.len() - 2;
    let crc = decode::crc16(0, &unchecked[..content]);
    unchecked[content..].copy_from_slice(&crc.to_le_bytes());
    assert!(
        read_bytes(unchecked).is_ok(),
        "a header CRC of 0 was not computed, and is not checked"
    );

    let mut not_fit = whole.clone();
    not_fit[8..12].copy_from_slice(b".FTI");
    let err = read_bytes(not_fit).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{NAME}: not a readable FIT file at byte 8: no \".FIT\" signature in the file header"
        )
    );
    let err = read_bytes(whole[..10].to_vec()).unwrap_err().to_string();
    assert!(
        err.contains("at byte 10: the file header starting at byte 0 is cut short"),
        "{err}"
    );
    assert!(
        read_bytes(Vec::new())
            .unwrap_err()
            .to_string()
            .contains("the file is empty")
    );
}

#[test]
fn fit_malformed_records_name_the_record_and_byte() {
    // A data record of a local type no definition precedes, after a definition (9 bytes) and
    // a data record (2 bytes).
    let mut e = Encoder::new();
    e.define(0, message::RECORD, &[field(3, Uint8)])
        .data(0, &[V::U(100)])
        .raw(&[0x05, 0x64]);
    let err = read_bytes(e.finish(14)).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{NAME}: not a readable FIT file at byte 25: data record 3 uses local message type 5, \
             which no definition precedes"
        )
    );

    // A record whose fields run past the records.
    let mut e = Encoder::new();
    e.define(0, message::RECORD, &[field(253, Uint32), field(3, Uint8)])
        .raw(&[0x00, 1, 2, 3]);
    let err = read_bytes(e.finish(12)).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{NAME}: not a readable FIT file at byte 24: record 2 runs past the end of the \
             records at byte 28"
        )
    );

    // An architecture that is neither.
    let mut e = Encoder::new();
    e.raw(&[0x40, 0, 2, 20, 0, 0]);
    let err = read_bytes(e.finish(14)).unwrap_err().to_string();
    assert!(
        err.contains("at byte 16: definition record 1 names architecture 2"),
        "{err}"
    );
}

#[test]
fn fit_developer_fields_and_unknown_base_types_are_skipped() {
    let t0 = fit_time("2026-03-01T07:00:00Z");
    let mut e = Encoder::new();
    e.define_with_developer(
        0,
        message::RECORD,
        &[field(253, Uint32), field(3, Uint8)],
        &[(0, 3, 0), (1, 1, 0)],
    )
    .data_with_developer(0, &[V::U(t0.into()), V::U(90)], &[1, 2, 3, 4])
    // A field of base type 0x1F (unknown), 2 bytes, before the heart rate.
    .raw(&[0x41, 0, 0, 20, 0, 3, 253, 4, 0x86, 99, 2, 0x1F, 3, 1, 0x02])
    .raw(&[0x01])
    .raw(&(t0 + 1).to_le_bytes())
    .raw(&[0xAB, 0xCD, 91]);
    let extracts = read_bytes(e.finish(14)).unwrap();
    let samples = stream(&extracts, "activity_samples");
    assert_eq!(numbers(samples, "heart_rate"), some(&[90.0, 91.0]));
    assert_eq!(samples.default_source, "fit", "no file_id");
}

#[test]
fn fit_chained_files_are_read_in_turn() {
    let mut chained = encode::weight_scale();
    chained.extend(encode::activity_big_endian());
    let extracts = read_bytes(chained.clone()).unwrap();
    assert_eq!(stream(&extracts, "body").batch.num_rows(), 3);
    let samples = stream(&extracts, "activity_samples");
    assert_eq!(samples.batch.num_rows(), 2);
    assert_eq!(
        samples.default_source, "garmin index smart scale",
        "the first file_id names the source"
    );
    // Records are numbered across the chain: the weigh-ins have 7 records.
    assert_eq!(samples.records, [11, 12]);

    let mut damaged = chained;
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(
        read_bytes(damaged).is_err(),
        "a damaged second file fails the whole"
    );
}

#[test]
fn fit_sessions_and_times_without_instants() {
    let end = fit_time("2026-03-01T08:00:00Z");
    let mut e = Encoder::new();
    e.define(
        0,
        message::SESSION,
        &[field(253, Uint32), field(5, Enum), field(7, Uint32)],
    )
    .data(0, &[V::U(end.into()), V::U(10), V::U(1_800_000)])
    .define(
        1,
        message::RECORD,
        &[field(253, Uint32), field(0, Sint32), field(3, Uint8)],
    )
    .data(1, &[V::U(1234), V::I(-1), V::U(60)]);
    let extracts = read_bytes(e.finish(14)).unwrap();
    let workouts = stream(&extracts, "workouts");
    assert_eq!(
        times(workouts, "time"),
        [Some("2026-03-01T07:30:00.000Z".to_owned())],
        "without start_time, the session started total_elapsed_time before it ended"
    );
    assert_eq!(
        workouts
            .batch
            .column_by_name("sport")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "training"
    );
    let samples = stream(&extracts, "activity_samples");
    assert_eq!(
        times(samples, "time"),
        [None],
        "1234 s after power-on names no instant: cleaning rejects the row"
    );
    assert!(numbers(samples, "lat")[0].unwrap() < 0.0);
}

#[test]
fn fit_streams_are_handed_on_in_batches() {
    let extracts = read_with(encode::short_run(), 8).unwrap();
    let sizes: Vec<(&str, usize)> = extracts
        .iter()
        .map(|e| (e.stream.as_str(), e.batch.num_rows()))
        .collect();
    assert_eq!(
        sizes,
        [
            ("activity_samples", 8),
            ("activity_samples", 8),
            ("activity_samples", 4),
            ("workouts", 1)
        ]
    );
    assert_eq!(
        extracts[1].records[0], 12,
        "file_id 1-2, definition 3, records 4…"
    );
}

/// Recomputes the header and file CRCs of a single FIT file, so that damage reaches the
/// record decoder.
fn with_fresh_crcs(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 16 && bytes[0] == 14 {
        let crc = decode::crc16(0, &bytes[..12]);
        bytes[12..14].copy_from_slice(&crc.to_le_bytes());
    }
    if bytes.len() >= 2 {
        let content = bytes.len() - 2;
        let crc = decode::crc16(0, &bytes[..content]);
        bytes[content..].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

#[test]
fn fit_damage_behind_valid_crcs_is_an_error_or_rows_never_a_panic() {
    for (name, bytes) in [
        ("activity", encode::activity()),
        ("big endian", encode::activity_big_endian()),
        ("monitoring", encode::monitoring()),
        ("weight", encode::weight_scale()),
    ] {
        for at in 0..bytes.len() - 2 {
            for pattern in [0x01, 0x80, 0xFF] {
                let mut damaged = bytes.clone();
                damaged[at] ^= pattern;
                let outcome = std::panic::catch_unwind(|| read_bytes(with_fresh_crcs(damaged)));
                assert!(outcome.is_ok(), "{name}: byte {at} ^ {pattern:#x} panicked");
            }
        }
        for len in 0..bytes.len() {
            let mut cut = bytes[..len].to_vec();
            if len >= 12 {
                let records = len.saturating_sub(usize::from(cut[0]) + 2) as u32;
                cut[4..8].copy_from_slice(&records.to_le_bytes());
            }
            let outcome = std::panic::catch_unwind(|| read_bytes(with_fresh_crcs(cut)));
            assert!(outcome.is_ok(), "{name}: cut at {len} panicked");
        }
    }
}

#[test]
fn fit_step_counts_become_intervals() {
    use field::monitoring::{RUNNING, WALKING};
    let mut steps = Steps::default();
    steps.reading(1, WALKING, 100, 50);
    steps.reading(2, WALKING, 160, 80);
    steps.reading(3, WALKING, 160, 90);
    steps.reading(4, WALKING, 150, 95);
    steps.reading(5, WALKING, 220, 10);
    steps.reading(6, RUNNING, 100, -3);
    steps.reading(7, RUNNING, 150, 5);
    steps.reading(8, RUNNING, 230, 25);
    assert_eq!(
        steps.rows,
        [(2, 100, 160, 30), (5, 150, 230, 10 + 20)],
        "a first reading, a repeated time and an earlier time are baselines only; a reset \
         counts from zero; a negative count is none; rows starting together are one"
    );
}
