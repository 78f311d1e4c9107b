//! The FIT protocol: file headers and CRCs, definition and data records, base types and
//! their invalid values, compressed timestamps. It knows nothing of what messages mean: it
//! hands every data message on as numbered fields of valid values, for the profile
//! ([`super`]) to interpret.
//!
//! A file is checked whole before any record is decoded — every header, the header CRCs
//! where written, the data sizes and every file CRC (FIT files may be chained) — so a
//! damaged or truncated file yields nothing.

use std::{ops::Range, rc::Rc};

use crate::{Error, Result};

/// The field number of `timestamp` in every message that has one.
pub(super) const TIMESTAMP: u8 = 253;
/// The FIT epoch, 1989-12-31T00:00:00Z, in Unix seconds.
pub(super) const FIT_EPOCH_UNIX: i64 = 631_065_600;
/// Timestamps below this count seconds since the device powered on, not since the epoch.
const MIN_DATE_TIME: u32 = 0x1000_0000;

/// The UTC instant, in Unix nanoseconds, of a FIT `date_time`; `None` for a device's
/// relative "system time", which names no instant.
pub(super) fn instant(timestamp: u32) -> Option<i64> {
    (timestamp >= MIN_DATE_TIME).then(|| (i64::from(timestamp) + FIT_EPOCH_UNIX) * 1_000_000_000)
}

/// The time of a compressed-timestamp header: a 5-bit offset from the last full timestamp,
/// rolling over every 32 seconds.
pub(super) fn compressed_time(last: u32, offset: u8) -> u32 {
    let offset = u32::from(offset & 0x1F);
    let time = (last & !0x1F).wrapping_add(offset);
    if offset < last & 0x1F {
        time.wrapping_add(0x20)
    } else {
        time
    }
}

/// The time of a `timestamp_16` field: the low 16 bits of a time after the last full
/// timestamp, rolling over every 65,536 seconds.
pub(super) fn time_from_16(last: u32, timestamp_16: u16) -> u32 {
    let delta = u32::from(timestamp_16).wrapping_sub(last & 0xFFFF) & 0xFFFF;
    last.wrapping_add(delta)
}

/// The CRC-16 of the FIT protocol (CRC-16/ARC), continued from `crc` over `bytes`.
pub(super) fn crc16(mut crc: u16, bytes: &[u8]) -> u16 {
    const TABLE: [u16; 16] = [
        0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401, 0xA001, 0x6C00, 0x7800,
        0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
    ];
    for &byte in bytes {
        for nibble in [byte & 0x0F, byte >> 4] {
            let tmp = TABLE[usize::from(crc & 0x0F)];
            crc = (crc >> 4) & 0x0FFF;
            crc ^= tmp ^ TABLE[usize::from(nibble)];
        }
    }
    crc
}

/// The base types of the FIT protocol, by their number (the low 5 bits of the base type
/// byte; the high bit only says whether byte order matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BaseType {
    Enum,
    Sint8,
    Uint8,
    Sint16,
    Uint16,
    Sint32,
    Uint32,
    String,
    Float32,
    Float64,
    Uint8z,
    Uint16z,
    Uint32z,
    Byte,
    Sint64,
    Uint64,
    Uint64z,
}

impl BaseType {
    pub(super) fn from_byte(byte: u8) -> Option<Self> {
        use BaseType::*;
        Some(match byte & 0x1F {
            0 => Enum,
            1 => Sint8,
            2 => Uint8,
            3 => Sint16,
            4 => Uint16,
            5 => Sint32,
            6 => Uint32,
            7 => String,
            8 => Float32,
            9 => Float64,
            10 => Uint8z,
            11 => Uint16z,
            12 => Uint32z,
            13 => Byte,
            14 => Sint64,
            15 => Uint64,
            16 => Uint64z,
            _ => return None,
        })
    }

    /// The base type byte as files write it.
    #[cfg(test)]
    pub(super) fn byte(self) -> u8 {
        let number = self as u8;
        if self.size() > 1 {
            0x80 | number
        } else {
            number
        }
    }

    /// The size of one value.
    pub(super) fn size(self) -> usize {
        use BaseType::*;
        match self {
            Enum | Sint8 | Uint8 | String | Uint8z | Byte => 1,
            Sint16 | Uint16 | Uint16z => 2,
            Sint32 | Uint32 | Float32 | Uint32z => 4,
            Float64 | Sint64 | Uint64 | Uint64z => 8,
        }
    }

    /// The integer this type writes for "no value", as its raw bits.
    pub(super) fn invalid(self) -> u64 {
        use BaseType::*;
        match self {
            Enum | Uint8 | Byte => 0xFF,
            Sint8 => 0x7F,
            Sint16 => 0x7FFF,
            Uint16 => 0xFFFF,
            Sint32 => 0x7FFF_FFFF,
            Uint32 | Float32 => 0xFFFF_FFFF,
            Sint64 => 0x7FFF_FFFF_FFFF_FFFF,
            Uint64 | Float64 => u64::MAX,
            String | Uint8z | Uint16z | Uint32z | Uint64z => 0,
        }
    }
}

/// A field's valid value, before the profile's scale and offset.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Integer(i64),
    Float(f64),
    Text(String),
}

impl Value {
    pub(super) fn integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub(super) fn number(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(_) => None,
        }
    }
}

/// The value of a field's bytes, `None` where the field holds its type's invalid value
/// (or its size is no multiple of its type's). Of an array, the first element.
pub(super) fn value(raw: &[u8], base: BaseType, big_endian: bool) -> Option<Value> {
    match base {
        BaseType::String => {
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            let text = String::from_utf8_lossy(&raw[..end]).trim().to_owned();
            return (!text.is_empty()).then_some(Value::Text(text));
        }
        // A byte array is invalid only when every byte is.
        BaseType::Byte if raw.len() > 1 => {
            return raw
                .iter()
                .any(|b| *b != 0xFF)
                .then(|| Value::Integer(i64::from(raw[0])));
        }
        _ => {}
    }
    let size = base.size();
    if raw.is_empty() || !raw.len().is_multiple_of(size) {
        return None;
    }
    let mut bits = 0u64;
    if big_endian {
        for &byte in &raw[..size] {
            bits = bits << 8 | u64::from(byte);
        }
    } else {
        for &byte in raw[..size].iter().rev() {
            bits = bits << 8 | u64::from(byte);
        }
    }
    if bits == base.invalid() {
        return None;
    }
    Some(match base {
        BaseType::Sint8 => Value::Integer(i64::from(bits as u8 as i8)),
        BaseType::Sint16 => Value::Integer(i64::from(bits as u16 as i16)),
        BaseType::Sint32 => Value::Integer(i64::from(bits as u32 as i32)),
        BaseType::Sint64 => Value::Integer(bits as i64),
        BaseType::Float32 => {
            let float = f64::from(f32::from_bits(bits as u32));
            return float.is_finite().then_some(Value::Float(float));
        }
        BaseType::Float64 => {
            let float = f64::from_bits(bits);
            return float.is_finite().then_some(Value::Float(float));
        }
        BaseType::Uint64 | BaseType::Uint64z => match i64::try_from(bits) {
            Ok(integer) => Value::Integer(integer),
            Err(_) => Value::Float(bits as f64),
        },
        BaseType::Enum
        | BaseType::Uint8
        | BaseType::Uint16
        | BaseType::Uint32
        | BaseType::Uint8z
        | BaseType::Uint16z
        | BaseType::Uint32z
        | BaseType::Byte
        | BaseType::String => Value::Integer(bits as i64),
    })
}

/// A data message: its global number, time and valid fields.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Message {
    /// 1-based, counting definition and data records of the whole file.
    pub record: u64,
    pub global: u16,
    /// The `timestamp` field or the compressed header's time, raw.
    pub timestamp: Option<u32>,
    /// Valid fields by field number; developer fields are not kept.
    pub fields: Vec<(u8, Value)>,
}

impl Message {
    pub(super) fn get(&self, field: u8) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(number, _)| *number == field)
            .map(|(_, value)| value)
    }

    pub(super) fn integer(&self, field: u8) -> Option<i64> {
        self.get(field).and_then(Value::integer)
    }

    pub(super) fn number(&self, field: u8) -> Option<f64> {
        self.get(field).and_then(Value::number)
    }

    pub(super) fn text(&self, field: u8) -> Option<&str> {
        match self.get(field) {
            Some(Value::Text(text)) => Some(text),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct FieldDefinition {
    number: u8,
    size: usize,
    /// `None` for a base type this decoder does not know: its bytes are skipped.
    base: Option<BaseType>,
}

#[derive(Debug)]
struct Definition {
    global: u16,
    big_endian: bool,
    fields: Vec<FieldDefinition>,
    /// Bytes of developer fields after the fields, skipped.
    developer_size: usize,
}

fn broken(file: &str, at: usize, problem: impl std::fmt::Display) -> Error {
    Error::file(
        file,
        format!("not a readable FIT file at byte {at}: {problem}"),
    )
}

/// The byte ranges of the records of each FIT file in `bytes` (usually one; FIT files may
/// be chained), once every header and CRC is checked.
fn segments(file: &str, bytes: &[u8]) -> Result<Vec<Range<usize>>> {
    let mut segments = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let header = &bytes[start..];
        if header.len() < 12 {
            return Err(broken(
                file,
                bytes.len(),
                format!(
                    "the file header starting at byte {start} is cut short ({} of 12 bytes)",
                    header.len()
                ),
            ));
        }
        let header_size = usize::from(header[0]);
        if &header[8..12] != b".FIT" {
            return Err(broken(
                file,
                start + 8,
                "no \".FIT\" signature in the file header",
            ));
        }
        if header_size < 12 {
            return Err(broken(
                file,
                start,
                format!("the file header size {header_size} is not 12 or 14"),
            ));
        }
        if header.len() < header_size {
            return Err(broken(
                file,
                bytes.len(),
                format!(
                    "the file header starting at byte {start} is cut short ({} of {header_size} bytes)",
                    header.len()
                ),
            ));
        }
        if header_size >= 14 {
            let written = u16::from_le_bytes([header[12], header[13]]);
            let computed = crc16(0, &header[..12]);
            // A header CRC of 0 means the writer did not compute one.
            if written != 0 && written != computed {
                return Err(broken(
                    file,
                    start + 12,
                    format!(
                        "the header CRC is {written:#06x} but the header's is {computed:#06x}: the file is damaged"
                    ),
                ));
            }
        }
        let data_size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let data_start = start + header_size;
        let data_end = usize::try_from(data_size)
            .ok()
            .and_then(|size| data_start.checked_add(size))
            .filter(|end| {
                end.checked_add(2)
                    .is_some_and(|crc_end| crc_end <= bytes.len())
            });
        let Some(data_end) = data_end else {
            return Err(broken(
                file,
                bytes.len(),
                format!(
                    "the file was cut short: its header announces {data_size} bytes of records \
                     from byte {data_start} and a 2-byte CRC, but the file ends at byte {}",
                    bytes.len()
                ),
            ));
        };
        let written = u16::from_le_bytes([bytes[data_end], bytes[data_end + 1]]);
        let computed = crc16(0, &bytes[start..data_end]);
        if written != computed {
            return Err(broken(
                file,
                data_end,
                format!(
                    "the file CRC is {written:#06x} but the content's is {computed:#06x}: the file is damaged"
                ),
            ));
        }
        segments.push(data_start..data_end);
        start = data_end + 2;
    }
    if segments.is_empty() {
        return Err(broken(file, 0, "the file is empty"));
    }
    Ok(segments)
}

/// Decodes a whole FIT file, handing each data message to `on_message` in file order.
/// The file is checked first: a damaged one hands nothing on.
pub(super) fn decode(
    file: &str,
    bytes: &[u8],
    mut on_message: impl FnMut(Message) -> Result<()>,
) -> Result<()> {
    let segments = segments(file, bytes)?;
    let mut record = 0u64;
    for segment in segments {
        let mut records = Records {
            file,
            bytes,
            end: segment.end,
            position: segment.start,
            record,
            definitions: std::array::from_fn(|_| None),
            last_timestamp: None,
        };
        while let Some(message) = records.next()? {
            on_message(message)?;
        }
        record = records.record;
    }
    Ok(())
}

/// The records of one FIT file of a chain: local definitions and the last timestamp are
/// per file.
struct Records<'a> {
    file: &'a str,
    bytes: &'a [u8],
    end: usize,
    position: usize,
    record: u64,
    definitions: [Option<Rc<Definition>>; 16],
    last_timestamp: Option<u32>,
}

impl Records<'_> {
    /// The next data message; definitions are taken in on the way.
    fn next(&mut self) -> Result<Option<Message>> {
        while self.position < self.end {
            let at = self.position;
            self.record += 1;
            let header = self.take(1, at)?[0];
            if header & 0x80 != 0 {
                let local = (header >> 5) & 0x03;
                let time = self
                    .last_timestamp
                    .map(|last| compressed_time(last, header & 0x1F));
                let mut message = self.data(local, at)?;
                if message.timestamp.is_none() {
                    message.timestamp = time;
                }
                self.last_timestamp = message.timestamp.or(self.last_timestamp);
                return Ok(Some(message));
            }
            let local = header & 0x0F;
            if header & 0x40 != 0 {
                self.definition(local, header & 0x20 != 0, at)?;
                continue;
            }
            let message = self.data(local, at)?;
            self.last_timestamp = message.timestamp.or(self.last_timestamp);
            return Ok(Some(message));
        }
        Ok(None)
    }

    /// `len` bytes at the current position, or an error naming the record at `at`.
    fn take(&mut self, len: usize, at: usize) -> Result<&[u8]> {
        let start = self.position;
        match start.checked_add(len).filter(|end| *end <= self.end) {
            Some(end) => {
                self.position = end;
                Ok(&self.bytes[start..end])
            }
            None => Err(broken(
                self.file,
                at,
                format!(
                    "record {} runs past the end of the records at byte {}",
                    self.record, self.end
                ),
            )),
        }
    }

    fn definition(&mut self, local: u8, developer: bool, at: usize) -> Result<()> {
        let record = self.record;
        let fixed = self.take(5, at)?;
        let big_endian = match fixed[1] {
            0 => false,
            1 => true,
            other => {
                return Err(broken(
                    self.file,
                    at + 2,
                    format!(
                        "definition record {record} names architecture {other}, not 0 (little endian) or 1 (big endian)"
                    ),
                ));
            }
        };
        let global = if big_endian {
            u16::from_be_bytes([fixed[2], fixed[3]])
        } else {
            u16::from_le_bytes([fixed[2], fixed[3]])
        };
        let count = usize::from(fixed[4]);
        let fields = self
            .take(3 * count, at)?
            .chunks_exact(3)
            .map(|field| FieldDefinition {
                number: field[0],
                size: usize::from(field[1]),
                base: BaseType::from_byte(field[2]),
            })
            .collect();
        let mut developer_size = 0;
        if developer {
            let count = usize::from(self.take(1, at)?[0]);
            developer_size = self
                .take(3 * count, at)?
                .chunks_exact(3)
                .map(|field| usize::from(field[1]))
                .sum();
        }
        self.definitions[usize::from(local)] = Some(Rc::new(Definition {
            global,
            big_endian,
            fields,
            developer_size,
        }));
        Ok(())
    }

    fn data(&mut self, local: u8, at: usize) -> Result<Message> {
        let record = self.record;
        let Some(definition) = self.definitions[usize::from(local)].clone() else {
            return Err(broken(
                self.file,
                at,
                format!(
                    "data record {record} uses local message type {local}, which no definition precedes"
                ),
            ));
        };
        let mut fields = Vec::with_capacity(definition.fields.len());
        for field in &definition.fields {
            let raw = self.take(field.size, at)?;
            if let Some(base) = field.base
                && let Some(value) = value(raw, base, definition.big_endian)
            {
                fields.push((field.number, value));
            }
        }
        self.take(definition.developer_size, at)?;
        let timestamp = fields
            .iter()
            .find(|(number, _)| *number == TIMESTAMP)
            .and_then(|(_, value)| value.integer())
            .and_then(|t| u32::try_from(t).ok());
        Ok(Message {
            record,
            global: definition.global,
            timestamp,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_crc16_arc() {
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
        assert_eq!(crc16(crc16(0, b"1234"), b"56789"), 0xBB3D);
    }

    #[test]
    fn invalid_sentinels_are_missing_never_zero() {
        use BaseType::*;
        let cases: [(BaseType, &[u8]); 16] = [
            (Enum, &[0xFF]),
            (Sint8, &[0x7F]),
            (Uint8, &[0xFF]),
            (Sint16, &[0xFF, 0x7F]),
            (Uint16, &[0xFF, 0xFF]),
            (Sint32, &[0xFF, 0xFF, 0xFF, 0x7F]),
            (Uint32, &[0xFF; 4]),
            (String, &[0, 0, 0]),
            (Float32, &[0xFF; 4]),
            (Float64, &[0xFF; 8]),
            (Uint8z, &[0]),
            (Uint16z, &[0, 0]),
            (Uint32z, &[0; 4]),
            (Byte, &[0xFF, 0xFF]),
            (Sint64, &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
            (Uint64, &[0xFF; 8]),
        ];
        for (base, raw) in cases {
            assert_eq!(value(raw, base, false), None, "{base:?}");
        }
        assert_eq!(
            value(&[0x7F, 0xFF], Sint16, true),
            None,
            "big endian 0x7FFF"
        );
        assert_eq!(value(&[0; 8], Uint64z, false), None);
        assert_eq!(value(&[0], Uint8, false), Some(Value::Integer(0)));
        assert_eq!(
            value(&[0xFE, 0xFF], Uint16, false),
            Some(Value::Integer(0xFFFE))
        );
        assert_eq!(
            value(&[0xFF, 0xFF, 0xFF, 0xFF], Sint32, false),
            Some(Value::Integer(-1))
        );
        assert_eq!(value(&[0x80], Sint8, false), Some(Value::Integer(-128)));
        assert_eq!(
            value(&[0, 0, 0, 0x80], Sint32, false),
            Some(Value::Integer(i64::from(i32::MIN)))
        );
        assert_eq!(
            value(&[0x12, 0x34], Uint16, true),
            Some(Value::Integer(0x1234))
        );
        assert_eq!(
            value(&[0x12, 0x34], Uint16, false),
            Some(Value::Integer(0x3412))
        );
        assert_eq!(
            value(&1.5f32.to_le_bytes(), Float32, false),
            Some(Value::Float(1.5))
        );
        assert_eq!(
            value(&(-2.25f64).to_be_bytes(), Float64, true),
            Some(Value::Float(-2.25))
        );
        assert_eq!(value(&f32::NAN.to_le_bytes(), Float32, false), None);
        assert_eq!(
            value(b"fenix\0\0\0", String, false),
            Some(Value::Text("fenix".into()))
        );
        assert_eq!(
            value(&[0xFF, 0x01], Byte, false),
            Some(Value::Integer(0xFF))
        );
        assert_eq!(
            value(&[1, 2, 3], Uint16, false),
            None,
            "a size no multiple of 2"
        );
        assert_eq!(
            value(&[1, 0, 2, 0], Uint16, false),
            Some(Value::Integer(1)),
            "an array"
        );
    }

    #[test]
    fn timestamps_roll_over() {
        // A compressed header's 5-bit offset after the last full timestamp.
        let offset = |time: u32| (time & 0x1F) as u8;
        assert_eq!(compressed_time(1000, offset(1000)), 1000);
        assert_eq!(compressed_time(1000, offset(1005)), 1005);
        assert_eq!(compressed_time(1000, offset(1031)), 1031, "rolled over");
        assert_eq!(compressed_time(0x3E, 0x01), 0x41);
        // A timestamp_16 after the last full timestamp.
        assert_eq!(time_from_16(0x0001_FF00, 0xFF10), 0x0001_FF10);
        assert_eq!(
            time_from_16(0x0001_FF00, 0x0010),
            0x0002_0010,
            "rolled over"
        );
        assert_eq!(time_from_16(0x0001_FF00, 0xFF00), 0x0001_FF00);
        assert_eq!(instant(0), None, "system time");
        assert_eq!(instant(0x0FFF_FFFF), None);
        // 2026-03-01T00:00:00Z
        assert_eq!(
            instant(1_772_323_200 - 631_065_600),
            Some(1_772_323_200_000_000_000)
        );
    }

    #[test]
    fn base_types_round_trip_their_bytes() {
        for number in 0..=16u8 {
            let base = BaseType::from_byte(number).unwrap();
            assert_eq!(BaseType::from_byte(base.byte()), Some(base));
            assert_eq!(base.byte() & 0x1F, number);
        }
        assert_eq!(BaseType::from_byte(0x84), Some(BaseType::Uint16));
        assert_eq!(BaseType::from_byte(0x11), None);
    }
}
