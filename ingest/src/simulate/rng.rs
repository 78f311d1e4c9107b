//! A small seeded generator (SplitMix64), so that a seed gives the same data on every machine
//! and every version of the dependencies.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a generator derived from the seed is used for: each purpose draws from its own
/// sequence, so that turning defects on leaves the clean values unchanged.
#[derive(Debug, Clone, Copy)]
pub(super) enum Purpose {
    Profile = 1,
    Days = 2,
    Defects = 3,
}

#[derive(Debug, Clone)]
pub(super) struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng {
            state: mix(seed),
            spare: None,
        }
    }

    /// The generator of one subject for one purpose.
    pub(super) fn derive(seed: u64, subject: usize, purpose: Purpose) -> Self {
        let subject = (subject as u64).wrapping_add(1).wrapping_mul(GOLDEN);
        let purpose = (purpose as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        Rng::new(mix(seed) ^ mix(subject) ^ mix(purpose))
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub(super) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [lo, hi], both included; `lo` when the range is empty.
    pub(super) fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Normal with the given mean and standard deviation (Box–Muller).
    pub(super) fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let z = match self.spare.take() {
            Some(z) => z,
            None => {
                let u1 = 1.0 - self.unit(); // (0, 1]: ln is finite
                let u2 = self.unit();
                let r = (-2.0 * u1.ln()).sqrt();
                let theta = std::f64::consts::TAU * u2;
                self.spare = Some(r * theta.sin());
                r * theta.cos()
            }
        };
        mean + sd * z
    }

    /// An index drawn with the given (non-negative) weights.
    pub(super) fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_rng_is_deterministic_and_in_range() {
        let mut a = Rng::derive(42, 3, Purpose::Days);
        let mut b = Rng::derive(42, 3, Purpose::Days);
        let mut c = Rng::derive(42, 4, Purpose::Days);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..100).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let u = a.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
            let k = a.int(3, 5);
            assert!((3..=5).contains(&k), "{k}");
            sum += a.normal(10.0, 2.0);
        }
        let mean = sum / 10_000.0;
        assert!((mean - 10.0).abs() < 0.1, "mean {mean}");
    }
}
