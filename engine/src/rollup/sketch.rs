//! A mergeable quantile sketch: values counted in logarithmic buckets whose width is 2 % of
//! their value (the DDSketch scheme), so any quantile comes back within 1 % of a value of the
//! input, and two sketches merge by adding counts. Merging is exact, so a quantile computed
//! from minute rollups equals the one computed from the raw values.
//!
//! The encoding is compact for the few distinct values of a minute: a version byte, then
//! the zero count and the positive and negative buckets as LEB128 varints.

/// Relative accuracy: a returned quantile is within this fraction of an input value.
const ACCURACY: f64 = 0.01;
const VERSION: u8 = 1;

fn gamma() -> f64 {
    (1.0 + ACCURACY) / (1.0 - ACCURACY)
}

/// Counts per bucket; buckets kept sorted by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sketch {
    zeros: u64,
    positive: Vec<(i32, u64)>,
    /// Buckets of the magnitudes of negative values.
    negative: Vec<(i32, u64)>,
}

fn key_of(magnitude: f64) -> i32 {
    (magnitude.ln() / gamma().ln()).ceil() as i32
}

fn value_of(key: i32) -> f64 {
    2.0 * gamma().powi(key) / (gamma() + 1.0)
}

fn add(buckets: &mut Vec<(i32, u64)>, key: i32, count: u64) {
    match buckets.binary_search_by_key(&key, |(k, _)| *k) {
        Ok(at) => buckets[at].1 += count,
        Err(at) => buckets.insert(at, (key, count)),
    }
}

impl Sketch {
    /// Counts a value; NaN and infinities are not values a quantile could return, and are
    /// left out.
    pub(crate) fn insert(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        // Magnitudes below this would give keys beyond i32; they count as zero.
        if value.abs() < 1e-300 {
            self.zeros += 1;
        } else if value > 0.0 {
            add(&mut self.positive, key_of(value), 1);
        } else {
            add(&mut self.negative, key_of(-value), 1);
        }
    }

    pub(crate) fn merge(&mut self, other: &Sketch) {
        self.zeros += other.zeros;
        for &(key, count) in &other.positive {
            add(&mut self.positive, key, count);
        }
        for &(key, count) in &other.negative {
            add(&mut self.negative, key, count);
        }
    }

    /// Bytes held beyond the struct itself.
    pub(crate) fn heap_size(&self) -> usize {
        (self.positive.capacity() + self.negative.capacity()) * std::mem::size_of::<(i32, u64)>()
    }

    pub(crate) fn count(&self) -> u64 {
        self.zeros
            + self.positive.iter().map(|b| b.1).sum::<u64>()
            + self.negative.iter().map(|b| b.1).sum::<u64>()
    }

    /// The value at quantile `q` (0 ≤ q ≤ 1) of what was counted: the value of rank
    /// ⌊q × (n − 1)⌋ in ascending order; `None` when nothing was.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64;
        let mut seen = 0;
        for &(key, count) in self.negative.iter().rev() {
            seen += count;
            if seen > rank {
                return Some(-value_of(key));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(0.0);
        }
        for &(key, count) in &self.positive {
            seen += count;
            if seen > rank {
                return Some(value_of(key));
            }
        }
        self.positive.last().map(|&(key, _)| value_of(key))
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        put_varint(out, self.zeros);
        for buckets in [&self.positive, &self.negative] {
            put_varint(out, buckets.len() as u64);
            let mut previous = 0i64;
            for &(key, count) in buckets {
                // Keys ascend: their differences are small and positive.
                put_varint(out, (i64::from(key) - previous) as u64);
                previous = i64::from(key);
                put_varint(out, count);
            }
        }
    }

    /// Reads what [`Sketch::encode`] wrote; `None` for bytes it did not write.
    pub(crate) fn decode(mut bytes: &[u8]) -> Option<Sketch> {
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION {
            return None;
        }
        bytes = rest;
        let zeros = take_varint(&mut bytes)?;
        let mut read_buckets = || -> Option<Vec<(i32, u64)>> {
            let len = usize::try_from(take_varint(&mut bytes)?).ok()?;
            let mut buckets = Vec::with_capacity(len.min(4096));
            let mut key = 0i64;
            for i in 0..len {
                // The first key is written as is (two's complement), the others as steps.
                let step = take_varint(&mut bytes)? as i64;
                key = if i == 0 { step } else { key.checked_add(step)? };
                buckets.push((i32::try_from(key).ok()?, take_varint(&mut bytes)?));
            }
            Some(buckets)
        };
        let positive = read_buckets()?;
        let negative = read_buckets()?;
        bytes.is_empty().then_some(Sketch {
            zeros,
            positive,
            negative,
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(values: &[f64]) -> Sketch {
        let mut sketch = Sketch::default();
        for &v in values {
            sketch.insert(v);
        }
        sketch
    }

    #[test]
    fn quantiles_are_within_the_accuracy_of_the_exact_ones() {
        let values: Vec<f64> = (0..10_000)
            .map(|i| 40.0 + (i * 7919 % 1600) as f64 / 10.0)
            .collect();
        let sketch = sketch_of(&values);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0] {
            let exact = sorted[(q * (sorted.len() - 1) as f64).floor() as usize];
            let estimate = sketch.quantile(q).unwrap();
            assert!(
                (estimate - exact).abs() <= ACCURACY * exact.abs() + 1e-9,
                "q={q}: {estimate} vs {exact}"
            );
        }
    }

    #[test]
    fn merging_parts_gives_the_sketch_of_the_whole() {
        let values: Vec<f64> = (0..3_000)
            .map(|i| ((i * 37) % 501) as f64 - 250.0)
            .collect();
        let whole = sketch_of(&values);
        let mut merged = Sketch::default();
        for part in values.chunks(7) {
            merged.merge(&sketch_of(part));
        }
        assert_eq!(merged, whole);
        assert_eq!(merged.quantile(0.5), whole.quantile(0.5));
        assert!(whole.quantile(0.0).unwrap() < -240.0);
        assert!(whole.quantile(1.0).unwrap() > 240.0);
    }

    #[test]
    fn encoding_round_trips_and_rejects_foreign_bytes() {
        let sketch = sketch_of(&[0.0, 1e-9, 72.5, 72.6, -3.0, 1e12, 61.0]);
        let mut bytes = Vec::new();
        sketch.encode(&mut bytes);
        assert_eq!(Sketch::decode(&bytes), Some(sketch));
        assert_eq!(Sketch::decode(&[]), None);
        assert_eq!(Sketch::decode(&[2, 0, 0, 0]), None);
        assert_eq!(Sketch::decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn empty_and_non_finite_input_has_no_quantile() {
        let sketch = sketch_of(&[f64::NAN, f64::INFINITY]);
        assert_eq!(sketch.count(), 0);
        assert_eq!(sketch.quantile(0.5), None);
        assert_eq!(sketch_of(&[0.0]).quantile(0.3), Some(0.0));
    }
}
