//! The outbox's last word on a number's pace: a per-number, per-node GCRA limiter
//! (the `governor` crate) that broadcast copies wait on just before their
//! provider call.
//!
//! The runner already gives every copy a send slot a pace-gap apart, shared by
//! all nodes through `number_pacing`; but an outbox that falls behind (a slow
//! pass, a busy database) finds several slots due at once and would send them
//! back to back. This limiter keeps the gap between calls even then, so the
//! provider never sees copies faster than the number's pace (Meta's throughput
//! limit; WAHA's minimum gap, seed 003).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use super::pacing::Pace;

/// One limiter per number, rebuilt when the number's pace changes.
#[derive(Default)]
pub struct Pacer {
    limiters: Mutex<HashMap<String, (i64, Arc<DefaultDirectRateLimiter>)>>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").finish_non_exhaustive()
    }
}

impl Pacer {
    /// Waits until number `number_id` may make its next broadcast call at `pace`:
    /// at most one call per gap (Meta: `1000 / per_second` ms, rounded up; WAHA:
    /// its minimum gap, the runner's slots add the jitter), no bursts.
    pub async fn wait(&self, number_id: &str, pace: Pace) {
        let gap = pace.gap_ms(0.0).max(1);
        let limiter = {
            let mut map = self.limiters.lock();
            match map.get(number_id) {
                Some((g, l)) if *g == gap => l.clone(),
                _ => {
                    let l = Arc::new(RateLimiter::direct(quota(gap)));
                    map.insert(number_id.to_string(), (gap, l.clone()));
                    l
                }
            }
        };
        limiter.until_ready().await;
    }
}

/// One cell per `gap_ms`, burst of one.
fn quota(gap_ms: i64) -> Quota {
    let period = Duration::from_millis(u64::try_from(gap_ms).unwrap_or(1).max(1));
    // `with_period` refuses only a zero period, excluded above.
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_call_waits_a_gap_and_a_new_pace_takes_effect() {
        let pacer = Pacer::default();
        let fast = Pace::Meta {
            per_second: 1_000,
            limit: super::super::pacing::MessagingLimit::Unlimited,
        };
        pacer.wait("n1", fast).await;
        let t = std::time::Instant::now();
        pacer.wait("n1", fast).await;
        pacer.wait("n1", fast).await;
        // Two more calls at 1 ms apart: at least ~2 ms, not instantly.
        assert!(
            t.elapsed() >= Duration::from_micros(1_500),
            "{:?}",
            t.elapsed()
        );
        pacer.wait("n2", fast).await;
        assert_eq!(pacer.limiters.lock().len(), 2, "one limiter per number");
        let slow = Pace::Meta {
            per_second: 1,
            limit: super::super::pacing::MessagingLimit::Unlimited,
        };
        pacer.wait("n1", slow).await;
        assert_eq!(
            pacer.limiters.lock().get("n1").map(|(g, _)| *g),
            Some(1_000)
        );
    }
}
