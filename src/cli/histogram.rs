//! A fixed-size latency histogram: log-linear buckets (32 per power of two) over
//! microseconds, so recording costs no allocation and quantiles are within ~3%.

/// Sub-buckets per power of two.
const SUB_BUCKETS: u64 = 32;
const SUB_BITS: u32 = 5;
/// Enough powers of two for any u64.
const BUCKETS: usize = (64 * SUB_BUCKETS) as usize;

/// Counts of latencies in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram (allocates its buckets once).
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_us: 0,
        }
    }

    fn bucket_of(us: u64) -> usize {
        if us < SUB_BUCKETS {
            return us as usize;
        }
        let magnitude = 63 - us.leading_zeros(); // >= SUB_BITS
        let shift = magnitude - SUB_BITS;
        let sub = (us >> shift) - SUB_BUCKETS; // 0..SUB_BUCKETS
        ((u64::from(shift) + 1) * SUB_BUCKETS + sub) as usize
    }

    /// The largest value that falls in `bucket`.
    fn upper_bound(bucket: usize) -> u64 {
        let bucket = bucket as u64;
        if bucket < SUB_BUCKETS {
            return bucket;
        }
        let shift = bucket / SUB_BUCKETS - 1;
        let sub = bucket % SUB_BUCKETS;
        let bound = (u128::from(SUB_BUCKETS + sub + 1) << shift) - 1;
        u64::try_from(bound).unwrap_or(u64::MAX)
    }

    /// Records one latency.
    pub fn record(&mut self, us: u64) {
        self.counts[Self::bucket_of(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded.
    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The value at quantile `q` (0..=1), as the upper bound of its bucket (never above
    /// the maximum recorded). 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::upper_bound(bucket).min(self.max_us);
            }
        }
        self.max_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_bound_covers_it() {
        for us in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = Histogram::bucket_of(us);
            assert!(b < BUCKETS, "{us} -> bucket {b}");
            assert!(
                Histogram::upper_bound(b) >= us,
                "{us} above its bucket bound"
            );
            if b > 0 {
                assert!(
                    Histogram::upper_bound(b - 1) < us,
                    "{us} fits an earlier bucket"
                );
            }
        }
    }

    #[test]
    fn quantiles_are_within_a_few_percent() {
        let mut h = Histogram::new();
        for us in 1..=10_000u64 {
            h.record(us);
        }
        for (q, exact) in [(0.5, 5000.0), (0.9, 9000.0), (0.99, 9900.0)] {
            let got = h.quantile_us(q) as f64;
            assert!((got - exact).abs() / exact < 0.04, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.quantile_us(1.0), 10_000);
        assert_eq!(h.max_us(), 10_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(10);
        b.record(1000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max_us(), 1000);
        assert_eq!(Histogram::new().quantile_us(0.5), 0);
    }
}
