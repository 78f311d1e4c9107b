//! A FIT encoder for tests, and the fixtures of `tests/fixtures/fit/` it writes: the unit
//! tests check that the committed files are what it writes
//! (`HEALTHAI_BLESS_FIXTURES=1 cargo test -p ingest --lib fit::` rewrites them).

use super::{
    decode::{BaseType, FIT_EPOCH_UNIX, crc16},
    message::{FILE_ID, MONITORING, RECORD, SESSION, WEIGHT_SCALE},
};
use BaseType::{Byte, Enum, Sint32, Uint8, Uint16, Uint32, Uint32z};

/// A field of a definition.
#[derive(Debug, Clone, Copy)]
pub(super) struct FieldSpec {
    number: u8,
    base: BaseType,
    size: u8,
}

/// A field holding one value of `base`.
pub(super) fn field(number: u8, base: BaseType) -> FieldSpec {
    FieldSpec {
        number,
        base,
        size: base.size() as u8,
    }
}

/// A string field of `size` bytes.
pub(super) fn text(number: u8, size: u8) -> FieldSpec {
    FieldSpec {
        number,
        base: BaseType::String,
        size,
    }
}

/// A value to write; `Invalid` writes the base type's invalid value.
#[derive(Debug, Clone, Copy)]
pub(super) enum V {
    U(u64),
    I(i64),
    S(&'static str),
    Invalid,
}

struct Definition {
    big_endian: bool,
    fields: Vec<FieldSpec>,
    developer_sizes: Vec<u8>,
}

/// The records of a FIT file, written one by one.
#[derive(Default)]
pub(super) struct Encoder {
    records: Vec<u8>,
    definitions: [Option<Definition>; 16],
}

impl Encoder {
    pub(super) fn new() -> Self {
        Encoder::default()
    }

    pub(super) fn define(&mut self, local: u8, global: u16, fields: &[FieldSpec]) -> &mut Self {
        self.definition(local, global, false, fields, &[])
    }

    pub(super) fn define_big_endian(
        &mut self,
        local: u8,
        global: u16,
        fields: &[FieldSpec],
    ) -> &mut Self {
        self.definition(local, global, true, fields, &[])
    }

    /// A definition with developer fields: (field number, size, developer data index).
    pub(super) fn define_with_developer(
        &mut self,
        local: u8,
        global: u16,
        fields: &[FieldSpec],
        developer: &[(u8, u8, u8)],
    ) -> &mut Self {
        self.definition(local, global, false, fields, developer)
    }

    fn definition(
        &mut self,
        local: u8,
        global: u16,
        big_endian: bool,
        fields: &[FieldSpec],
        developer: &[(u8, u8, u8)],
    ) -> &mut Self {
        let developer_flag = if developer.is_empty() { 0 } else { 0x20 };
        self.records.push(0x40 | developer_flag | local);
        self.records.push(0);
        self.records.push(u8::from(big_endian));
        let global = if big_endian {
            global.to_be_bytes()
        } else {
            global.to_le_bytes()
        };
        self.records.extend(global);
        self.records.push(fields.len() as u8);
        for f in fields {
            self.records.extend([f.number, f.size, f.base.byte()]);
        }
        if !developer.is_empty() {
            self.records.push(developer.len() as u8);
            for (number, size, index) in developer {
                self.records.extend([*number, *size, *index]);
            }
        }
        self.definitions[usize::from(local)] = Some(Definition {
            big_endian,
            fields: fields.to_vec(),
            developer_sizes: developer.iter().map(|(_, size, _)| *size).collect(),
        });
        self
    }

    pub(super) fn data(&mut self, local: u8, values: &[V]) -> &mut Self {
        self.records.push(local);
        self.values(local, values, &[])
    }

    pub(super) fn data_with_developer(
        &mut self,
        local: u8,
        values: &[V],
        developer: &[u8],
    ) -> &mut Self {
        self.records.push(local);
        self.values(local, values, developer)
    }

    /// A data record with a compressed-timestamp header (local types 0–3) at `time`.
    pub(super) fn compressed(&mut self, local: u8, time: u32, values: &[V]) -> &mut Self {
        assert!(local < 4, "compressed headers address local types 0-3");
        self.records.push(0x80 | local << 5 | (time & 0x1F) as u8);
        self.values(local, values, &[])
    }

    /// Bytes as they are, for records no definition describes.
    pub(super) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.records.extend(bytes);
        self
    }

    fn values(&mut self, local: u8, values: &[V], developer: &[u8]) -> &mut Self {
        let definition = self.definitions[usize::from(local)]
            .as_ref()
            .expect("defined before use");
        assert_eq!(values.len(), definition.fields.len(), "one value per field");
        assert_eq!(
            developer.len(),
            definition
                .developer_sizes
                .iter()
                .map(|s| usize::from(*s))
                .sum::<usize>()
        );
        let mut out = Vec::new();
        for (spec, value) in definition.fields.iter().zip(values) {
            out.extend(encode(spec, *value, definition.big_endian));
        }
        out.extend(developer);
        self.records.extend(out);
        self
    }

    /// The file: header (12 bytes, or 14 with its CRC), records, file CRC.
    pub(super) fn finish(&self, header_size: u8) -> Vec<u8> {
        assert!(header_size == 12 || header_size == 14);
        let mut file = vec![header_size, 0x20];
        file.extend(2195u16.to_le_bytes());
        file.extend((self.records.len() as u32).to_le_bytes());
        file.extend(b".FIT");
        if header_size == 14 {
            let crc = crc16(0, &file);
            file.extend(crc.to_le_bytes());
        }
        file.extend(&self.records);
        let crc = crc16(0, &file);
        file.extend(crc.to_le_bytes());
        file
    }
}

fn encode(spec: &FieldSpec, value: V, big_endian: bool) -> Vec<u8> {
    let size = usize::from(spec.size);
    if spec.base == BaseType::String {
        let mut bytes = match value {
            V::S(text) => text.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        bytes.resize(size, 0);
        return bytes;
    }
    let bits = match (value, spec.base) {
        (V::Invalid, base) => base.invalid(),
        (V::U(u), _) => u,
        (V::I(i), _) => i as u64,
        (other, base) => panic!("{other:?} cannot be written as {base:?}"),
    };
    let le = bits.to_le_bytes();
    let mut bytes = le[..spec.base.size()].to_vec();
    if big_endian {
        bytes.reverse();
    }
    bytes.resize(size, 0);
    bytes
}

/// The FIT timestamp of an RFC 3339 time.
pub(super) fn fit_time(rfc3339: &str) -> u32 {
    let unix = chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .timestamp();
    u32::try_from(unix - FIT_EPOCH_UNIX).expect("after 1989-12-31")
}

/// Degrees as semicircles.
pub(super) fn semicircles(degrees: f64) -> V {
    V::I((degrees * 2f64.powi(31) / 180.0).round() as i64)
}

/// Global message numbers the fixtures write besides the ones the reader maps.
const DEVICE_INFO: u16 = 23;
const EVENT: u16 = 21;
const LAP: u16 = 19;
const ACTIVITY: u16 = 34;
const FIELD_DESCRIPTION: u16 = 206;
const DEVELOPER_DATA_ID: u16 = 207;

fn file_id(e: &mut Encoder, kind: u64, manufacturer: u64, product: u64, created: u32) {
    e.define(
        0,
        FILE_ID,
        &[
            field(0, Enum),
            field(1, Uint16),
            field(2, Uint16),
            field(3, Uint32z),
            field(4, Uint32),
        ],
    )
    .data(
        0,
        &[
            V::U(kind),
            V::U(manufacturer),
            V::U(product),
            V::U(3_456_789_012),
            V::U(u64::from(created)),
        ],
    );
}

fn session_fields() -> [FieldSpec; 9] {
    [
        field(253, Uint32),
        field(2, Uint32),
        field(5, Enum),
        field(6, Enum),
        field(7, Uint32),
        field(9, Uint32),
        field(11, Uint16),
        field(16, Uint8),
        field(17, Uint8),
    ]
}

/// A run in Paris from a Garmin fenix 7, little endian with a 14-byte header: developer
/// data, skipped messages, local types redefined, invalid values, compressed timestamps,
/// enhanced fields.
pub(super) fn activity() -> Vec<u8> {
    let t0 = fit_time("2026-03-01T07:00:00Z");
    let mut e = Encoder::new();
    file_id(&mut e, 4, 1, 3906, t0);
    e.define(1, DEVELOPER_DATA_ID, &[field(3, Uint8)])
        .data(1, &[V::U(0)])
        .define(
            1,
            FIELD_DESCRIPTION,
            &[
                field(0, Uint8),
                field(1, Uint8),
                field(2, Uint8),
                text(3, 16),
                text(8, 8),
            ],
        )
        .data(
            1,
            &[V::U(0), V::U(0), V::U(0x84), V::S("Form Power"), V::S("W")],
        )
        .define(
            2,
            DEVICE_INFO,
            &[
                field(253, Uint32),
                field(0, Uint8),
                field(2, Uint16),
                field(4, Uint16),
            ],
        )
        .data(2, &[V::U(t0.into()), V::U(0), V::U(1), V::U(3906)])
        .define(
            3,
            EVENT,
            &[field(253, Uint32), field(0, Enum), field(1, Enum)],
        )
        .data(3, &[V::U(t0.into()), V::U(0), V::U(0)]);
    e.define_with_developer(
        0,
        RECORD,
        &[
            field(253, Uint32),
            field(0, Sint32),
            field(1, Sint32),
            field(2, Uint16),
            field(3, Uint8),
            field(4, Uint8),
            field(5, Uint32),
            field(6, Uint16),
            field(7, Uint16),
        ],
        &[(0, 2, 0)],
    );
    let t = |s: u32| V::U(u64::from(t0 + s));
    e.data_with_developer(
        0,
        &[
            t(0),
            semicircles(48.8566),
            semicircles(2.3522),
            V::U(2675),
            V::U(120),
            V::U(80),
            V::U(0),
            V::U(2500),
            V::U(210),
        ],
        &[200, 0],
    )
    .data_with_developer(
        0,
        &[
            t(1),
            semicircles(48.85665),
            semicircles(2.35225),
            V::U(2676),
            V::U(122),
            V::U(82),
            V::U(305),
            V::U(2550),
            V::Invalid,
        ],
        &[205, 0],
    )
    .data_with_developer(
        0,
        &[
            t(2),
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::U(84),
            V::U(610),
            V::U(2600),
            V::U(230),
        ],
        &[0xFF, 0xFF],
    );
    e.define(
        1,
        RECORD,
        &[
            field(0, Sint32),
            field(1, Sint32),
            field(3, Uint8),
            field(5, Uint32),
            field(6, Uint16),
        ],
    )
    .compressed(
        1,
        t0 + 3,
        &[
            semicircles(48.8567),
            semicircles(2.3523),
            V::U(125),
            V::U(915),
            V::U(2650),
        ],
    )
    .compressed(
        1,
        t0 + 4,
        &[
            semicircles(48.85675),
            semicircles(2.35235),
            V::U(126),
            V::U(1220),
            V::U(2650),
        ],
    );
    e.define(
        0,
        RECORD,
        &[
            field(253, Uint32),
            field(0, Sint32),
            field(1, Sint32),
            field(78, Uint32),
            field(73, Uint32),
            field(3, Uint8),
            field(4, Uint8),
            field(53, Uint8),
            field(7, Uint16),
            field(5, Uint32),
        ],
    )
    .data(
        0,
        &[
            t(5),
            semicircles(48.8568),
            semicircles(2.3524),
            V::U(2682),
            V::U(2700),
            V::U(128),
            V::U(85),
            V::U(64),
            V::U(240),
            V::U(1525),
        ],
    )
    .data(
        0,
        &[
            t(6),
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::Invalid,
        ],
    );
    e.define(
        2,
        LAP,
        &[field(253, Uint32), field(2, Uint32), field(7, Uint32)],
    )
    .data(2, &[t(1826), t(0), V::U(1_825_500)])
    .define(3, SESSION, &session_fields())
    .data(
        3,
        &[
            t(1826),
            t(0),
            V::U(1),
            V::U(0),
            V::U(1_825_500),
            V::U(512_340),
            V::U(412),
            V::U(148),
            V::U(171),
        ],
    )
    .define(2, ACTIVITY, &[field(253, Uint32), field(1, Uint16)])
    .data(2, &[t(1826), V::U(1)]);
    e.finish(14)
}

/// A ride in San Francisco from a Wahoo computer naming its product, every definition big
/// endian, with a 12-byte header.
pub(super) fn activity_big_endian() -> Vec<u8> {
    let t1 = fit_time("2026-03-02T16:30:00Z");
    let t = |s: u32| V::U(u64::from(t1 + s));
    let mut e = Encoder::new();
    e.define_big_endian(
        0,
        FILE_ID,
        &[
            field(0, Enum),
            field(1, Uint16),
            field(2, Uint16),
            field(4, Uint32),
            text(8, 20),
        ],
    )
    .data(0, &[V::U(4), V::U(32), V::U(28), t(0), V::S("ELEMNT BOLT")])
    .define_big_endian(
        1,
        RECORD,
        &[
            field(253, Uint32),
            field(0, Sint32),
            field(1, Sint32),
            field(2, Uint16),
            field(3, Uint8),
            field(4, Uint8),
            field(7, Uint16),
            field(6, Uint16),
            field(5, Uint32),
        ],
    )
    .data(
        1,
        &[
            t(0),
            semicircles(37.7749),
            semicircles(-122.4194),
            V::U(2580),
            V::U(131),
            V::U(88),
            V::U(250),
            V::U(8333),
            V::U(0),
        ],
    )
    .data(
        1,
        &[
            t(1),
            semicircles(37.77495),
            semicircles(-122.41945),
            V::U(2582),
            V::U(133),
            V::U(90),
            V::Invalid,
            V::U(8400),
            V::U(840),
        ],
    )
    .define_big_endian(2, SESSION, &session_fields())
    .data(
        2,
        &[
            t(3600),
            t(0),
            V::U(2),
            V::U(7),
            V::U(3_600_000),
            V::U(3_012_345),
            V::U(980),
            V::U(141),
            V::U(168),
        ],
    );
    e.finish(12)
}

/// An afternoon of a fenix 7's daily monitoring: cumulative steps per activity type (a
/// counter reset, two types at once, cycling that counts no steps), heart rate by
/// compressed headers across a 32-second rollover and by `timestamp_16` across a
/// 65,536-second one.
pub(super) fn monitoring() -> Vec<u8> {
    let m0 = fit_time("2026-03-01T14:00:00Z");
    let at = |minutes: u32, seconds: u32| m0 + minutes * 60 + seconds;
    let full = |s: u32| V::U(u64::from(s));
    let low16 = |s: u32| V::U(u64::from(s & 0xFFFF));
    let mut e = Encoder::new();
    file_id(&mut e, 32, 1, 3906, m0);
    e.define(
        0,
        MONITORING,
        &[
            field(253, Uint32),
            field(5, Enum),
            field(3, Uint32),
            field(19, Uint16),
        ],
    )
    .define(1, MONITORING, &[field(26, Uint16), field(27, Uint8)])
    .define(2, MONITORING, &[field(27, Uint8)])
    .define(
        3,
        MONITORING,
        &[field(253, Uint32), field(24, Byte), field(3, Uint32)],
    )
    .data(0, &[full(at(0, 0)), V::U(6), V::U(3000), V::U(40)])
    .compressed(2, at(0, 20), &[V::U(66)])
    .compressed(2, at(0, 40), &[V::U(67)])
    .data(1, &[low16(at(1, 0)), V::U(64)])
    .data(0, &[full(at(15, 0)), V::U(6), V::U(3600), V::U(52)])
    .data(0, &[full(at(15, 0)), V::U(1), V::U(1000), V::U(90)])
    .data(1, &[low16(at(20, 0)), V::U(71)])
    .data(1, &[low16(at(25, 0)), V::U(88)])
    .data(0, &[full(at(30, 0)), V::U(6), V::U(4000), V::U(60)])
    .data(0, &[full(at(30, 0)), V::U(1), V::U(3700), V::U(210)])
    .data(3, &[full(at(45, 0)), V::U(3 << 5 | 6), V::U(120)])
    .data(0, &[full(at(45, 0)), V::U(2), V::U(500), V::U(15)])
    .data(1, &[low16(at(46, 0)), V::Invalid])
    .data(0, &[full(at(60, 0)), V::U(6), V::U(120), V::Invalid]);
    e.finish(14)
}

/// Weigh-ins on a Garmin Index scale: a full one, one still "calculating" its weight, one
/// without fat or BMI, one with nothing.
pub(super) fn weight_scale() -> Vec<u8> {
    let mut e = Encoder::new();
    file_id(&mut e, 9, 1, 2429, fit_time("2026-03-01T06:30:00Z"));
    let at = |time: &str| V::U(u64::from(fit_time(time)));
    e.define(
        1,
        WEIGHT_SCALE,
        &[
            field(253, Uint32),
            field(0, Uint16),
            field(1, Uint16),
            field(13, Uint16),
            field(12, Uint16),
            field(11, Uint8),
        ],
    )
    .data(
        1,
        &[
            at("2026-03-01T06:30:00Z"),
            V::U(7530),
            V::U(2215),
            V::U(236),
            V::U(0),
            V::U(6),
        ],
    )
    .data(
        1,
        &[
            at("2026-03-02T06:31:00Z"),
            V::U(0xFFFE),
            V::U(2210),
            V::Invalid,
            V::U(0),
            V::Invalid,
        ],
    )
    .data(
        1,
        &[
            at("2026-03-03T06:29:00Z"),
            V::U(7480),
            V::Invalid,
            V::Invalid,
            V::U(0),
            V::Invalid,
        ],
    )
    .data(
        1,
        &[
            at("2026-03-03T06:30:00Z"),
            V::Invalid,
            V::Invalid,
            V::Invalid,
            V::U(0),
            V::Invalid,
        ],
    );
    e.finish(14)
}

/// A short run on 2026-03-05, the base of the damaged fixtures.
pub(super) fn short_run() -> Vec<u8> {
    let t0 = fit_time("2026-03-05T07:00:00Z");
    let mut e = Encoder::new();
    file_id(&mut e, 4, 1, 3906, t0);
    e.define(
        1,
        RECORD,
        &[field(253, Uint32), field(3, Uint8), field(6, Uint16)],
    );
    for second in 0..20u32 {
        e.data(
            1,
            &[
                V::U(u64::from(t0 + second)),
                V::U(u64::from(100 + second)),
                V::U(3000),
            ],
        );
    }
    e.define(2, SESSION, &session_fields()).data(
        2,
        &[
            V::U(u64::from(t0 + 20)),
            V::U(u64::from(t0)),
            V::U(1),
            V::U(0),
            V::U(20_000),
            V::U(6_000),
            V::U(5),
            V::U(110),
            V::U(119),
        ],
    );
    e.finish(14)
}

/// The short run with one heart rate changed after its CRC was written.
pub(super) fn corrupt_crc() -> Vec<u8> {
    let mut bytes = short_run();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    bytes
}

/// The short run cut two thirds of the way.
pub(super) fn truncated() -> Vec<u8> {
    let mut bytes = short_run();
    bytes.truncate(bytes.len() * 2 / 3);
    bytes
}

/// The fixture files, by name.
pub(super) fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("activity.fit", activity()),
        ("activity_big_endian.fit", activity_big_endian()),
        ("monitoring.fit", monitoring()),
        ("weight_scale.fit", weight_scale()),
        ("corrupt_crc.fit", corrupt_crc()),
        ("truncated.fit", truncated()),
    ]
}
