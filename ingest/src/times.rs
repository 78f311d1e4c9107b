//! Timestamps as sources write them, read fast: this runs once per row of every text file.
//!
//! A time with an offset (`Z`, `+02:00`, `+0200`) is an instant. A time without one is a
//! wall-clock time in the subject's home time zone, converted to UTC with that zone's rules
//! (DST included). Accepted shapes: ISO 8601 / RFC 3339 with `T` or a space, optional seconds
//! and fraction; a bare date; Apple Health's `2026-03-01 06:00:00 +0100`; the US
//! `M/D/YYYY h:mm:ss AM` of Fitabase files and the `MM/DD/YY HH:MM:SS` of Fitbit account
//! exports; epoch seconds or milliseconds.

use chrono::{LocalResult, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A parsed time: an instant, or a wall-clock time still to be placed in a time zone. Both
/// are nanoseconds since 1970-01-01T00:00:00 (for `Local`, as if the wall clock were UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Instant(i64),
    Local(i64),
}

pub(crate) fn parse(text: &str) -> Option<When> {
    let s = text.trim().as_bytes();
    if s.is_empty() {
        return None;
    }
    if s.iter().all(u8::is_ascii_digit) {
        return epoch(s);
    }
    if s.len() >= 8 && s[4] == b'-' {
        return iso(s);
    }
    us(s)
}

/// Epoch seconds (10 digits or fewer) or milliseconds (13).
fn epoch(s: &[u8]) -> Option<When> {
    let value: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    match s.len() {
        1..=10 => value.checked_mul(NANOS_PER_SECOND).map(When::Instant),
        13 => value.checked_mul(1_000_000).map(When::Instant),
        _ => None,
    }
}

fn digits(s: &[u8], at: usize, count: usize) -> Option<i64> {
    let slice = s.get(at..at + count)?;
    let mut value = 0i64;
    for b in slice {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(value)
}

fn iso(s: &[u8]) -> Option<When> {
    let year = digits(s, 0, 4)?;
    let month = digits(s, 5, 2)?;
    let day = digits(s, 8, 2)?;
    if s.get(7) != Some(&b'-') {
        return None;
    }
    let date = days_from_civil(year, month, day)?;
    if s.len() == 10 {
        return Some(When::Local(date * 86_400 * NANOS_PER_SECOND));
    }
    if !matches!(s.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (seconds_of_day, fraction, rest) = clock(s, 11)?;
    let wall = (date * 86_400 + seconds_of_day) * NANOS_PER_SECOND + fraction;
    let rest = match rest.first() {
        Some(b' ') => &rest[1..],
        _ => rest,
    };
    match offset(rest)? {
        Some(offset_seconds) => Some(When::Instant(wall - offset_seconds * NANOS_PER_SECOND)),
        None => Some(When::Local(wall)),
    }
}

/// `HH:MM[:SS[.fraction]]` at `at`: seconds of the day, nanoseconds, and what follows.
fn clock(s: &[u8], at: usize) -> Option<(i64, i64, &[u8])> {
    let hour = digits(s, at, 2)?;
    if s.get(at + 2) != Some(&b':') {
        return None;
    }
    let minute = digits(s, at + 3, 2)?;
    let mut next = at + 5;
    let mut second = 0;
    let mut fraction = 0;
    if s.get(next) == Some(&b':') {
        second = digits(s, next + 1, 2)?;
        next += 3;
        if matches!(s.get(next), Some(b'.' | b',')) {
            next += 1;
            let start = next;
            while next < s.len() && s[next].is_ascii_digit() {
                if next - start < 9 {
                    fraction = fraction * 10 + i64::from(s[next] - b'0');
                }
                next += 1;
            }
            let read = (next - start).min(9);
            if read == 0 {
                return None;
            }
            fraction *= 10i64.pow(9 - read as u32);
        }
    }
    // 24:00:00 is not accepted; 60 seconds only as a leap second, folded into the next minute.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some((hour * 3600 + minute * 60 + second, fraction, &s[next..]))
}

/// `Z`, `±HH:MM`, `±HHMM`, `±HH`, or nothing. `Some(None)` means no offset.
fn offset(s: &[u8]) -> Option<Option<i64>> {
    match s {
        [] => Some(None),
        [b'Z' | b'z'] => Some(Some(0)),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let hours = digits(rest, 0, 2)?;
            let minutes = match rest.len() {
                2 => 0,
                4 => digits(rest, 2, 2)?,
                5 if rest[2] == b':' => digits(rest, 3, 2)?,
                _ => return None,
            };
            if hours > 18 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            Some(Some(if *sign == b'-' { -seconds } else { seconds }))
        }
        _ => None,
    }
}

/// `M/D/YYYY h:mm[:ss] AM|PM` or `M/D/YYYY H:mm[:ss]`: always a local time.
fn us(s: &[u8]) -> Option<When> {
    let text = std::str::from_utf8(s).ok()?;
    let (date, time) = text.split_once(' ').unwrap_or((text, "00:00"));
    let mut parts = date.split('/');
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let year_text = parts.next()?;
    let year: i64 = year_text.parse().ok()?;
    // Two-digit years as POSIX `%y` reads them: 69–99 are 1969–1999, 00–68 are 2000–2068.
    let year = match (year_text.len(), year) {
        (2, 69..) => 1900 + year,
        (2, _) => 2000 + year,
        (_, 1000..) => year,
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let time = time.trim();
    let (clock_text, meridiem) = match time.rsplit_once(' ') {
        Some((clock_text, m)) => (clock_text, Some(m.to_ascii_uppercase())),
        None => (time, None),
    };
    let mut fields = clock_text.split(':');
    let mut hour: i64 = fields.next()?.parse().ok()?;
    let minute: i64 = fields.next()?.parse().ok()?;
    let second: i64 = fields.next().map(str::parse).transpose().ok()?.unwrap_or(0);
    match meridiem.as_deref() {
        Some("AM") if (1..=12).contains(&hour) => hour %= 12,
        Some("PM") if (1..=12).contains(&hour) => hour = hour % 12 + 12,
        None if hour <= 23 => {}
        _ => return None,
    }
    if minute > 59 || second > 60 {
        return None;
    }
    let date = days_from_civil(year, month, day)?;
    Some(When::Local(
        (date * 86_400 + hour * 3600 + minute * 60 + second) * NANOS_PER_SECOND,
    ))
}

/// Writes a parsed time back as text [`parse`] reads: ISO 8601, with `Z` for an instant and
/// no offset for a wall-clock time. Readers use it for times they compute (the end of an
/// interval given as a start and a duration).
pub(crate) fn write(when: When, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let (nanos, zone) = match when {
        When::Instant(n) => (n, "Z"),
        When::Local(n) => (n, ""),
    };
    let seconds = nanos.div_euclid(NANOS_PER_SECOND);
    let fraction = nanos.rem_euclid(NANOS_PER_SECOND);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
    )?;
    if fraction != 0 {
        write!(out, ".{fraction:09}")?;
    }
    out.write_str(zone)
}

impl When {
    /// The same kind of time, `nanos` later.
    pub(crate) fn plus(self, nanos: i64) -> Option<When> {
        match self {
            When::Instant(n) => n.checked_add(nanos).map(When::Instant),
            When::Local(n) => n.checked_add(nanos).map(When::Local),
        }
    }
}

/// The proleptic Gregorian date of a day since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Where a wall-clock time falls in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    Exact(i64),
    /// In the hour repeated when clocks go back: the first occurrence was taken.
    Ambiguous(i64),
    /// In the hour skipped when clocks go forward: moved forward by the gap.
    Skipped(i64),
}

impl Placed {
    pub(crate) fn nanos(self) -> i64 {
        match self {
            Placed::Exact(n) | Placed::Ambiguous(n) | Placed::Skipped(n) => n,
        }
    }
}

/// The UTC instant of a wall-clock time in `zone`.
pub(crate) fn place(local_nanos: i64, zone: Tz) -> Option<Placed> {
    let seconds = local_nanos.div_euclid(NANOS_PER_SECOND);
    let nanos = local_nanos.rem_euclid(NANOS_PER_SECOND);
    let naive = chrono::DateTime::from_timestamp(seconds, nanos as u32)?.naive_utc();
    let utc = |t: NaiveDateTime| t.and_utc().timestamp_nanos_opt();
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.timestamp_nanos_opt().map(Placed::Exact),
        LocalResult::Ambiguous(first, _) => first.timestamp_nanos_opt().map(Placed::Ambiguous),
        LocalResult::None => {
            // Clocks jumped over this time: the zone's offset before the gap tells how far.
            let before = naive - chrono::Duration::hours(3);
            let offset = match zone.from_local_datetime(&before) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    t.naive_utc() - t.naive_local()
                }
                LocalResult::None => return None,
            };
            utc(naive + offset).map(Placed::Skipped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn instants_with_offsets() {
        let t = instant("2026-03-01T06:00:00Z");
        for text in [
            "2026-03-01T06:00:00Z",
            "2026-03-01T07:00:00+01:00",
            "2026-03-01 07:00:00 +0100",
            "2026-03-01T01:00:00-05",
            "2026-03-01t06:00:00z",
            "1772344800",
            "1772344800000",
        ] {
            assert_eq!(parse(text), Some(When::Instant(t)), "{text}");
        }
        assert_eq!(
            parse("2026-03-01T06:00:00.25Z"),
            Some(When::Instant(t + 250_000_000))
        );
        assert_eq!(
            parse("2026-03-01T06:00:00.123456789123Z"),
            Some(When::Instant(t + 123_456_789))
        );
    }

    #[test]
    fn wall_clock_times_stay_local() {
        let t = instant("2026-03-01T06:00:00Z");
        for text in [
            "2026-03-01T06:00:00",
            "2026-03-01 06:00",
            "3/1/2026 6:00:00 AM",
            "03/01/2026 06:00",
        ] {
            assert_eq!(parse(text), Some(When::Local(t)), "{text}");
        }
        assert_eq!(
            parse("3/1/2026 12:30:00 PM"),
            Some(When::Local(
                t + 6 * 3600 * NANOS_PER_SECOND + 1800 * NANOS_PER_SECOND
            ))
        );
        assert_eq!(
            parse("3/1/2026 12:00:00 AM"),
            Some(When::Local(t - 6 * 3600 * NANOS_PER_SECOND))
        );
        assert_eq!(
            parse("2026-03-01"),
            Some(When::Local(t - 6 * 3600 * NANOS_PER_SECOND))
        );
    }

    #[test]
    fn fitbit_two_digit_years_are_wall_clock_times() {
        let local = |rfc3339: &str| Some(When::Local(instant(rfc3339)));
        assert_eq!(parse("01/01/20 00:00:05"), local("2020-01-01T00:00:05Z"));
        assert_eq!(parse("03/29/20 02:30:00"), local("2020-03-29T02:30:00Z"));
        assert_eq!(parse("12/31/99 23:59:59"), local("1999-12-31T23:59:59Z"));
        assert_eq!(parse("01/01/68"), local("2068-01-01T00:00:00Z"));
        assert_eq!(parse("4/12/2016 7:21:00 AM"), local("2016-04-12T07:21:00Z"));
        assert_eq!(parse("02/30/20 00:00:00"), None);
        assert_eq!(
            parse("01/01/020 00:00:00"),
            None,
            "three digits are no year"
        );
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let Some(When::Local(wall)) = parse("03/29/20 02:30:00") else {
            panic!("not local")
        };
        assert_eq!(
            place(wall, paris),
            Some(Placed::Skipped(instant("2020-03-29T01:30:00Z"))),
            "in the hour Paris skipped that night"
        );
    }

    #[test]
    fn written_times_read_back() {
        let text = |when| {
            let mut out = String::new();
            write(when, &mut out).unwrap();
            out
        };
        for (when, expected) in [
            (
                When::Local(instant("2020-01-01T23:10:30Z")),
                "2020-01-01T23:10:30",
            ),
            (
                When::Instant(instant("2020-02-29T00:00:00Z")),
                "2020-02-29T00:00:00Z",
            ),
            (
                When::Instant(instant("1969-12-31T23:59:59.25Z")),
                "1969-12-31T23:59:59.250000000Z",
            ),
            (
                When::Local(instant("2100-03-01T12:00:00Z")),
                "2100-03-01T12:00:00",
            ),
        ] {
            assert_eq!(text(when), expected);
            assert_eq!(parse(&text(when)), Some(when), "{expected}");
        }
        assert_eq!(
            When::Local(0).plus(60 * NANOS_PER_SECOND),
            Some(When::Local(60 * NANOS_PER_SECOND))
        );
        assert_eq!(When::Instant(i64::MAX).plus(1), None);
    }

    #[test]
    fn nonsense_is_refused() {
        for text in [
            "",
            "--",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-03-01T25:00:00Z",
            "2026-03-01T06:00:00+2500",
            "2026-03-01T06:00:00 UTC",
            "2026-03-01X06:00",
            "13/40/2026 1:00 PM",
            "3/1/2026 13:00 PM",
            "12345678901",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
        assert_eq!(
            parse("2024-02-29T00:00:00Z"),
            Some(When::Instant(instant("2024-02-29T00:00:00Z")))
        );
    }

    #[test]
    fn local_times_follow_the_zone_rules() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let local = |text| match parse(text) {
            Some(When::Local(n)) => n,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            place(local("2026-01-15T08:00:00"), paris),
            Some(Placed::Exact(instant("2026-01-15T07:00:00Z")))
        );
        assert_eq!(
            place(local("2026-07-15T08:00:00"), paris),
            Some(Placed::Exact(instant("2026-07-15T06:00:00Z")))
        );
        // 2026-03-29 02:30 does not exist in Paris; 2026-10-25 02:30 happens twice.
        assert_eq!(
            place(local("2026-03-29T02:30:00"), paris),
            Some(Placed::Skipped(instant("2026-03-29T01:30:00Z")))
        );
        assert_eq!(
            place(local("2026-10-25T02:30:00"), paris),
            Some(Placed::Ambiguous(instant("2026-10-25T00:30:00Z")))
        );
    }
}
