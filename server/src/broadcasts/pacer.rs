//! The outbox's last word on a number's pace: a per-number, per-node GCRA limiter
//! (the `governor` crate) that broadcast copies wait on just before their
//! provider call, and this node's cache of each number's [`Pace`].
//!
//! The runner already gives every copy a send slot a pace-gap apart, shared by
//! all nodes through `number_pacing`; but an outbox that falls behind (a slow
//! pass, a busy database) finds several slots due at once and would send them
//! back to back. This limiter keeps the gap between calls even then, so the
//! provider never sees copies faster than the number's pace (Meta's throughput
//! limit; WAHA's minimum gap, seed 003).
//!
//! The pace itself is cached here so a broadcast copy does not read
//! `number_pacing` before every call (it did: one database round trip per copy,
//! on the pool the inbound path shares). A cached pace is trusted for [`PACE_TTL`]
//! (5 s). `PUT /api/whatsapp/numbers/{id}/pace` calls [`Pacer::invalidate`] on the
//! node that served it, so there the new pace applies to the next copy; other
//! nodes pick it up within the TTL. A copy sent in those few seconds at the old
//! pace is still within what the runner's slots (read from the database, not
//! from this cache) allowed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use super::pacing::Pace;

/// How long this node trusts a cached pace without reading it again: the delay
/// after which a pace changed on another node applies here.
pub const PACE_TTL: Duration = Duration::from_secs(5);

/// What this node knows of one number: its pace (when read and not yet stale or
/// invalidated) and its limiter.
struct Number {
    /// The pace and when it was read; `None` after [`Pacer::invalidate`].
    pace: Option<(Pace, Instant)>,
    /// The gap the limiter was built for, ms.
    gap: i64,
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// One limiter and one cached pace per number. The limiter is rebuilt only when
/// the number's gap changes, so re-reading an unchanged pace never lets a burst
/// through.
pub struct Pacer {
    numbers: Mutex<HashMap<String, Number>>,
    /// Bumped by every [`Pacer::invalidate`]: a pace read from the database that
    /// started before an invalidation is not cached (it may predate the change).
    epoch: AtomicU64,
    ttl: Duration,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::with_ttl(PACE_TTL)
    }
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Pacer {
    /// A pacer whose cached paces go stale after `ttl` (tests use short ones).
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            numbers: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            ttl,
        }
    }

    /// The cached pace of number `number_id`, if it was read less than the TTL
    /// before `now` and not invalidated since; `None` means "read it from the
    /// database and [`remember`](Self::remember) it".
    pub fn cached(&self, number_id: &str, now: Instant) -> Option<Pace> {
        let map = self.numbers.lock();
        let (pace, read_at) = map.get(number_id)?.pace?;
        (now.saturating_duration_since(read_at) < self.ttl).then_some(pace)
    }

    /// The current invalidation epoch: take it *before* reading a pace from the
    /// database and give it to [`remember`](Self::remember).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches `pace` for number `number_id`, read at `now`, unless an
    /// invalidation happened since `epoch` (then the value may be older than the
    /// change, and the next copy reads it again).
    pub fn remember(&self, number_id: &str, pace: Pace, epoch: u64, now: Instant) {
        let mut map = self.numbers.lock();
        // Checked under the lock `invalidate` also takes, so an invalidation
        // cannot slip in between this check and the insert.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let gap = gap_of(pace);
        match map.get_mut(number_id) {
            Some(n) => n.pace = Some((pace, now)),
            None => {
                map.insert(number_id.to_string(), Number::new(Some((pace, now)), gap));
            }
        }
    }

    /// Forgets number `number_id`'s cached pace (its pace was just changed on
    /// this node); its limiter stays, so calls already spaced stay spaced.
    pub fn invalidate(&self, number_id: &str) {
        let mut map = self.numbers.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(n) = map.get_mut(number_id) {
            n.pace = None;
        }
    }

    /// Waits until number `number_id` may make its next broadcast call at `pace`:
    /// at most one call per gap (Meta: `1000 / per_second` ms, rounded up; WAHA:
    /// its minimum gap, the runner's slots add the jitter), no bursts.
    pub async fn wait(&self, number_id: &str, pace: Pace) {
        let gap = gap_of(pace);
        let limiter = {
            let mut map = self.numbers.lock();
            match map.get_mut(number_id) {
                Some(n) if n.gap == gap => n.limiter.clone(),
                Some(n) => {
                    *n = Number::new(n.pace, gap);
                    n.limiter.clone()
                }
                None => {
                    let n = Number::new(None, gap);
                    let l = n.limiter.clone();
                    map.insert(number_id.to_string(), n);
                    l
                }
            }
        };
        limiter.until_ready().await;
    }
}

impl Number {
    fn new(pace: Option<(Pace, Instant)>, gap: i64) -> Self {
        Self {
            pace,
            gap,
            limiter: Arc::new(RateLimiter::direct(quota(gap))),
        }
    }
}

/// The limiter's gap for `pace`, ms (at least 1).
fn gap_of(pace: Pace) -> i64 {
    pace.gap_ms(0.0).max(1)
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
    use super::super::pacing::MessagingLimit;
    use super::*;

    fn meta(per_second: u32) -> Pace {
        Pace::Meta {
            per_second,
            limit: MessagingLimit::Unlimited,
        }
    }

    #[tokio::test]
    async fn a_second_call_waits_a_gap_and_a_new_pace_takes_effect() {
        let pacer = Pacer::default();
        let fast = meta(1_000);
        pacer.wait("n1", fast).await;
        let t = Instant::now();
        pacer.wait("n1", fast).await;
        pacer.wait("n1", fast).await;
        // Two more calls at 1 ms apart: at least ~2 ms, not instantly.
        assert!(
            t.elapsed() >= Duration::from_micros(1_500),
            "{:?}",
            t.elapsed()
        );
        pacer.wait("n2", fast).await;
        assert_eq!(pacer.numbers.lock().len(), 2, "one limiter per number");
        pacer.wait("n1", meta(1)).await;
        assert_eq!(pacer.numbers.lock().get("n1").map(|n| n.gap), Some(1_000));
    }

    #[test]
    fn a_pace_is_cached_until_its_ttl() {
        let pacer = Pacer::with_ttl(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(pacer.cached("n1", t0), None, "nothing read yet");
        pacer.remember("n1", meta(80), pacer.epoch(), t0);
        assert_eq!(pacer.cached("n1", t0), Some(meta(80)));
        assert_eq!(
            pacer.cached("n1", t0 + Duration::from_millis(4_999)),
            Some(meta(80))
        );
        assert_eq!(
            pacer.cached("n1", t0 + Duration::from_secs(5)),
            None,
            "stale"
        );
        assert_eq!(pacer.cached("n2", t0), None, "per number");
        // Read again: fresh for another TTL.
        let t1 = t0 + Duration::from_secs(6);
        pacer.remember("n1", meta(20), pacer.epoch(), t1);
        assert_eq!(pacer.cached("n1", t1), Some(meta(20)));
    }

    #[test]
    fn invalidate_drops_the_pace_and_a_read_that_started_before_it() {
        let pacer = Pacer::default();
        let t0 = Instant::now();
        pacer.remember("n1", meta(80), pacer.epoch(), t0);
        pacer.remember("n2", meta(80), pacer.epoch(), t0);
        // A read starts, the pace changes, the (possibly old) value comes back.
        let before = pacer.epoch();
        pacer.invalidate("n1");
        assert_eq!(pacer.cached("n1", t0), None);
        assert_eq!(pacer.cached("n2", t0), Some(meta(80)), "other numbers kept");
        pacer.remember("n1", meta(80), before, t0);
        assert_eq!(pacer.cached("n1", t0), None, "a read older than the change");
        pacer.remember("n1", meta(10), pacer.epoch(), t0);
        assert_eq!(pacer.cached("n1", t0), Some(meta(10)));
        // Invalidating a number never seen is harmless.
        pacer.invalidate("n9");
        assert_eq!(pacer.cached("n9", t0), None);
    }

    #[tokio::test]
    async fn remembering_the_same_pace_keeps_the_limiter() {
        let pacer = Pacer::default();
        let t0 = Instant::now();
        pacer.remember("n1", meta(80), pacer.epoch(), t0);
        pacer.wait("n1", meta(80)).await;
        let first = pacer.numbers.lock().get("n1").map(|n| n.limiter.clone());
        pacer.invalidate("n1");
        pacer.remember("n1", meta(80), pacer.epoch(), t0);
        pacer.wait("n1", meta(80)).await;
        let second = pacer.numbers.lock().get("n1").map(|n| n.limiter.clone());
        assert!(
            matches!((&first, &second), (Some(a), Some(b)) if Arc::ptr_eq(a, b)),
            "same gap, same limiter"
        );
        // A changed gap rebuilds the limiter but keeps the cached pace.
        pacer.remember("n1", meta(10), pacer.epoch(), t0);
        pacer.wait("n1", meta(10)).await;
        assert_eq!(pacer.numbers.lock().get("n1").map(|n| n.gap), Some(100));
        assert_eq!(pacer.cached("n1", t0), Some(meta(10)));
    }
}
