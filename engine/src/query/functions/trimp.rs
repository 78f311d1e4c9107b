//! `trimp(bpm, time, rest_hr, max_hr [, sex])`: Banister's training impulse.
//!
//! TRIMP = Σ Δtᵢ × HRrᵢ × 0.64 × e^(k × HRrᵢ), with Δt in minutes as in `time_in_zone` (until
//! the next reading, at most 5 minutes, nothing for the last), HRr = (bpm − rest_hr) /
//! (max_hr − rest_hr) clamped to [0, 1], and k = 1.92 for `'male'`, 1.67 for `'female'`.
//! Without a sex (or NULL, `'other'`, `'unknown'`) k is 1.92, Banister's original constant.

use arrow::{
    array::{Array, ArrayRef, AsArray},
    datatypes::{DataType, Float64Type, TimestampNanosecondType},
};
use datafusion::common::{Result, exec_err};

use super::{
    NANOS_PER_MINUTE, check_arity, instant, number,
    series::{Sample, Step},
    text,
};

const USAGE: &str = "trimp(bpm, time, rest_hr, max_hr [, sex])";
const K_MALE: f64 = 1.92;
const K_FEMALE: f64 = 1.67;

pub(super) fn coerce(args: &[DataType]) -> Result<Vec<DataType>> {
    check_arity(USAGE, args, &[4, 5])?;
    let mut coerced = vec![
        number("trimp", "bpm", &args[0])?,
        instant("trimp", "time", &args[1])?,
        number("trimp", "rest_hr", &args[2])?,
        number("trimp", "max_hr", &args[3])?,
    ];
    if let Some(sex) = args.get(4) {
        coerced.push(text("trimp", "sex", sex)?);
    }
    Ok(coerced)
}

fn weighting(sex: Option<&str>) -> Result<f64> {
    match sex.map(str::to_ascii_lowercase).as_deref() {
        Some("female") => Ok(K_FEMALE),
        Some("male" | "other" | "unknown") | None => Ok(K_MALE),
        Some(_) => exec_err!(
            "trimp: sex must be 'male', 'female', 'other', 'unknown' or NULL, got '{}'",
            sex.unwrap_or_default()
        ),
    }
}

/// The impulse per minute of one reading.
fn intensity(bpm: f64, rest_hr: f64, max_hr: f64, k: f64) -> Result<f64> {
    if !(bpm.is_finite() && rest_hr.is_finite() && max_hr.is_finite()) {
        return exec_err!(
            "trimp: bpm, rest_hr and max_hr must be finite, got {bpm}, {rest_hr}, {max_hr}"
        );
    }
    if max_hr <= rest_hr {
        return exec_err!("trimp: max_hr ({max_hr}) must be above rest_hr ({rest_hr})");
    }
    let reserve = ((bpm - rest_hr) / (max_hr - rest_hr)).clamp(0.0, 1.0);
    Ok(reserve * 0.64 * (k * reserve).exp())
}

/// One sample per usable row: its time and its impulse per minute.
pub(super) fn intensities(values: &[ArrayRef], samples: &mut Vec<Sample>) -> Result<()> {
    let bpm = values[0].as_primitive::<Float64Type>();
    let time = values[1].as_primitive::<TimestampNanosecondType>();
    let rest_hr = values[2].as_primitive::<Float64Type>();
    let max_hr = values[3].as_primitive::<Float64Type>();
    let sex = values.get(4).map(|s| s.as_string::<i32>());
    let required: [&dyn Array; 4] = [bpm, time, rest_hr, max_hr];
    for row in 0..bpm.len() {
        if required.iter().any(|column| column.is_null(row)) {
            continue;
        }
        let k = weighting(sex.filter(|s| s.is_valid(row)).map(|s| s.value(row)))?;
        let per_minute = intensity(bpm.value(row), rest_hr.value(row), max_hr.value(row), k)?;
        samples.push((time.value(row), per_minute));
    }
    Ok(())
}

/// The impulse of the steps; from +0.0, since a `Sum` of no floats is −0.0.
pub(super) fn impulse(steps: &[Step]) -> f64 {
    steps
        .iter()
        .map(|s| s.value * s.span as f64 / NANOS_PER_MINUTE)
        .fold(0.0, |total, x| total + x)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    };

    use super::super::testing::{error, floats, same_when_split, table};
    use super::*;

    const MINUTE: i64 = 60_000_000_000;

    /// (subject, minute, bpm, sex)
    fn rows(rows: &[(i64, i64, Option<f64>, Option<&str>)]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "s",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as _,
            ),
            (
                "time",
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    rows.iter().map(|r| r.1 * MINUTE),
                )) as _,
            ),
            (
                "bpm",
                Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.2))) as _,
            ),
            (
                "sex",
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.3))) as _,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn intensity_is_banisters_and_clamped() {
        // Half the reserve: 0.5 × 0.64 × e^0.96.
        let half = intensity(125.0, 60.0, 190.0, K_MALE).unwrap();
        assert!((half - 0.5 * 0.64 * 0.96f64.exp()).abs() < 1e-12);
        assert_eq!(intensity(50.0, 60.0, 190.0, K_MALE).unwrap(), 0.0);
        assert_eq!(
            intensity(250.0, 60.0, 190.0, K_FEMALE).unwrap(),
            0.64 * K_FEMALE.exp()
        );
    }

    #[tokio::test]
    async fn sums_minutes_times_intensity() {
        let batch = rows(&[
            // 125 bpm (half the reserve) for 10 minutes, one reading a minute, out of order.
            (1, 3, Some(125.0), Some("male")),
            (1, 0, Some(125.0), Some("male")),
            (1, 1, Some(125.0), Some("male")),
            (1, 2, Some(125.0), Some("male")),
            (1, 4, Some(125.0), Some("male")),
            (1, 5, Some(125.0), Some("male")),
            (1, 6, Some(125.0), Some("male")),
            (1, 7, Some(125.0), Some("male")),
            (1, 8, Some(125.0), Some("male")),
            (1, 9, Some(125.0), Some("male")),
            (1, 10, Some(60.0), Some("male")),
            // A gap of an hour counts 5 minutes.
            (2, 0, Some(190.0), Some("Female")),
            (2, 60, Some(60.0), Some("Female")),
            (2, 61, None, Some("Female")),
            // One reading: no time, no impulse.
            (3, 0, Some(190.0), None),
        ]);
        let sql = "SELECT s, trimp(bpm, time, 60, 190, sex) AS trimp, \
                   trimp(bpm, time, 60, 190) AS unsexed FROM t GROUP BY s ORDER BY s";
        same_when_split(sql, batch.clone(), 3).await;
        let male = 10.0 * 0.5 * 0.64 * (0.5 * K_MALE).exp();
        let female = 5.0 * 0.64 * K_FEMALE.exp();
        let male_k = 5.0 * 0.64 * K_MALE.exp();
        let close = |got: Vec<Option<f64>>, want: [f64; 3]| {
            assert_eq!(got.len(), 3);
            for (got, want) in got.into_iter().zip(want) {
                let got = got.unwrap();
                assert!((got - want).abs() < 1e-9, "{got} != {want}");
            }
        };
        close(
            floats(sql, batch.clone(), "trimp").await,
            [male, female, 0.0],
        );
        close(floats(sql, batch, "unsexed").await, [male, male_k, 0.0]);
    }

    #[tokio::test]
    async fn refuses_bad_arguments() {
        let batch = rows(&[(1, 0, Some(100.0), Some("x"))]);
        let sex = error(
            "SELECT trimp(bpm, time, 60, 190, sex) FROM t",
            batch.clone(),
        )
        .await;
        assert!(sex.contains("trimp: sex must be 'male', 'female'"), "{sex}");
        assert!(sex.contains("got 'x'"), "{sex}");
        let reversed = error("SELECT trimp(bpm, time, 190, 60) FROM t", batch.clone()).await;
        assert!(
            reversed.contains("max_hr (60) must be above rest_hr (190)"),
            "{reversed}"
        );
        let arity = error("SELECT trimp(bpm, time, 60) FROM t", batch).await;
        assert!(
            arity.contains("trimp(bpm, time, rest_hr, max_hr [, sex])"),
            "{arity}"
        );
    }

    #[tokio::test]
    async fn null_parameters_skip_the_row() {
        let batch = rows(&[(1, 0, Some(100.0), None), (1, 1, Some(100.0), None)]);
        assert_eq!(
            table("SELECT trimp(bpm, time, NULL, 190) AS x FROM t", batch).await,
            "+---+\n| x |\n+---+\n|   |\n+---+"
        );
    }
}
