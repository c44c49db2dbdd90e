//! Random draws: xoshiro256** seeded through splitmix64, Zipf(s) by a
//! cumulative table, exponential inter-arrival times.

pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }
}

/// Zipf(s) over 1..=n with rank k = id k (id 1 hottest), as the shared
/// load tools draw it (common.lua): a cumulative table, then a binary search.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: u64, s: f64) -> Zipf {
        assert!(n >= 1, "Zipf over an empty range");
        let mut cdf = Vec::with_capacity(n as usize);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += if s == 1.0 { 1.0 / k as f64 } else { (k as f64).powf(-s) };
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    pub fn draw(&self, rng: &mut Rng) -> u64 {
        let u = rng.f64();
        let i = self.cdf.partition_point(|&c| c < u);
        (i.min(self.cdf.len() - 1) + 1) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(1000, 1.0);
        let mut rng = Rng::new(1);
        let mut ones = 0;
        for _ in 0..100_000 {
            let v = z.draw(&mut rng);
            assert!((1..=1000).contains(&v));
            if v == 1 {
                ones += 1;
            }
        }
        // P(1) = 1 / H_1000 = 0.1336
        assert!((12_000..15_000).contains(&ones), "{ones}");
    }

    #[test]
    fn exp_has_its_mean() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let mean: f64 = (0..n).map(|_| rng.exp(2.0)).sum::<f64>() / n as f64;
        assert!((mean - 2.0).abs() < 0.03, "{mean}");
        let r = rng.range(1, 3);
        assert!((1..=3).contains(&r));
    }
}
