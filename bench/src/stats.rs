//! Latency histograms and the summaries the report is made of: every number is
//! kept per round, and the report shows min / median / max over rounds — of ratios
//! measured inside one round wherever there is a peer.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// A latency histogram in microseconds (1 µs … 60 s, 3 significant digits).
#[derive(Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        // 1 µs to 60 s with 3 significant figures is always a valid configuration.
        #[allow(clippy::expect_used)]
        let hist = Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        Self { hist }
    }

    /// Records one sample in microseconds (clamped into the histogram's range).
    pub fn record_us(&mut self, us: u64) {
        self.hist.saturating_record(us.clamp(1, 60_000_000));
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The quantile `q` (0..=1) in milliseconds; `None` without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (self.count() > 0).then(|| self.hist.value_at_quantile(q) as f64 / 1000.0)
    }

    /// `{count, p50_ms, p99_ms, p999_ms, max_ms}`.
    pub fn summary(&self) -> Value {
        json!({
            "count": self.count(),
            "p50_ms": self.quantile_ms(0.5),
            "p99_ms": self.quantile_ms(0.99),
            "p999_ms": self.quantile_ms(0.999),
            "max_ms": (self.count() > 0).then(|| self.hist.max() as f64 / 1000.0),
        })
    }
}

/// Min, median and max of values measured in several rounds (`None` when empty).
pub fn min_med_max(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((v[0], median, v[n - 1]))
}

/// `ours / theirs` when both are known and `theirs` is not zero.
pub fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Option<f64> {
    match (ours, theirs) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(min_med_max(&[3.0, 1.0, 2.0]), Some((1.0, 2.0, 3.0)));
        assert_eq!(min_med_max(&[4.0, 1.0, 2.0, 3.0]), Some((1.0, 2.5, 4.0)));
        assert_eq!(min_med_max(&[]), None);
        assert_eq!(min_med_max(&[f64::NAN, 5.0]), Some((5.0, 5.0, 5.0)));
    }

    #[test]
    fn ratios_need_both_sides() {
        assert_eq!(ratio(Some(10.0), Some(4.0)), Some(2.5));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
    }

    #[test]
    fn quantiles_in_milliseconds() {
        let mut l = Latency::new();
        for us in 1..=1000 {
            l.record_us(us * 1000);
        }
        let p50 = l.quantile_ms(0.5).unwrap_or_default();
        assert!((p50 - 500.0).abs() < 1.0, "{p50}");
        let p99 = l.quantile_ms(0.99).unwrap_or_default();
        assert!((p99 - 990.0).abs() < 2.0, "{p99}");
        assert_eq!(l.count(), 1000);
        assert_eq!(Latency::new().quantile_ms(0.5), None);
    }
}
