//! How fast a number may send a broadcast: pure arithmetic over the number's
//! [`Pace`], so the runner, the outbox and the tests agree on one rule.
//!
//! Meta (Cloud API), from Meta's "Throughput" and "Messaging limits" pages
//! (developers.facebook.com/documentation/business-messaging/whatsapp/throughput
//! and …/messaging-limits):
//! - a business phone number sends up to 80 messages per second by default (20 for
//!   numbers shared with the WhatsApp Business app; up to 1,000 after Meta's
//!   automatic upgrade); beyond it Meta answers error 130429;
//! - one customer may get about one message every 6 seconds (pair rate, error
//!   131056);
//! - the messaging limit caps the unique customers reached outside a customer
//!   service window in a moving 24 hours: 250 for a new business portfolio, then
//!   2,000, 10,000, 100,000 or unlimited. Meta counts it per business portfolio;
//!   Switchboard counts it per number, so an admin with several numbers in one
//!   portfolio sets each number's share.
//!
//! WAHA drives a WhatsApp Web session, not an API WhatsApp sells for bulk
//! messages; numbers that send fast get banned (seed 003). A WAHA number therefore
//! sends one message every 3–8 seconds by default, at random within that range.

use serde::{Deserialize, Serialize};

/// Meta's default throughput per business phone number, messages per second.
pub const META_DEFAULT_PER_SECOND: u32 = 80;
/// Meta's limit for a number shared with the WhatsApp Business app.
pub const META_COEXISTENCE_PER_SECOND: u32 = 20;
/// The highest throughput Meta grants, messages per second.
pub const META_MAX_PER_SECOND: u32 = 1_000;
/// Default shortest gap between two WAHA sends, ms.
pub const WAHA_DEFAULT_MIN_GAP_MS: u32 = 3_000;
/// Default longest gap between two WAHA sends, ms.
pub const WAHA_DEFAULT_MAX_GAP_MS: u32 = 8_000;
/// A moving day, ms (Meta's messaging-limit window).
pub const DAY_MS: i64 = 24 * 60 * 60 * 1_000;

/// A number's messaging limit: unique customers reached outside a customer
/// service window in a moving 24 hours (Meta's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessagingLimit {
    /// A new business portfolio.
    Tier250,
    /// After a scaling path (business verification, …).
    Tier2k,
    /// Automatic scaling.
    Tier10k,
    /// Automatic scaling.
    Tier100k,
    /// Automatic scaling.
    Unlimited,
}

impl MessagingLimit {
    /// Customers per moving 24 hours; `None` when unlimited.
    pub fn per_day(self) -> Option<u32> {
        match self {
            Self::Tier250 => Some(250),
            Self::Tier2k => Some(2_000),
            Self::Tier10k => Some(10_000),
            Self::Tier100k => Some(100_000),
            Self::Unlimited => None,
        }
    }
}

/// How fast one number sends broadcast copies. Stored as JSON per number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum Pace {
    /// A Meta Cloud API number.
    Meta {
        /// Messages per second (1–1,000).
        per_second: u32,
        /// The number's messaging limit.
        limit: MessagingLimit,
    },
    /// A WAHA session: one message per random gap in `[min_gap_ms, max_gap_ms]`.
    Waha {
        /// Shortest gap, ms.
        min_gap_ms: u32,
        /// Longest gap, ms.
        max_gap_ms: u32,
    },
}

/// Why a pace was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaceError {
    /// Meta throughput outside what Meta grants.
    #[error("messages per second must be between 1 and {META_MAX_PER_SECOND}")]
    PerSecond,
    /// WAHA gaps reversed, or so short they defeat their purpose.
    #[error("the WAHA gap must be at least 1000 ms and its minimum not above its maximum")]
    WahaGap,
}

impl Pace {
    /// The default for a Meta number: 80/s, and the new-portfolio limit of 250 a
    /// day (an admin raises it to the number's real level).
    pub fn meta_default() -> Self {
        Self::Meta {
            per_second: META_DEFAULT_PER_SECOND,
            limit: MessagingLimit::Tier250,
        }
    }

    /// The default for a WAHA number: one message every 3–8 s.
    pub fn waha_default() -> Self {
        Self::Waha {
            min_gap_ms: WAHA_DEFAULT_MIN_GAP_MS,
            max_gap_ms: WAHA_DEFAULT_MAX_GAP_MS,
        }
    }

    /// Checks an admin's pace.
    ///
    /// # Errors
    /// [`PaceError`] with a text for the admin.
    pub fn validate(self) -> Result<Self, PaceError> {
        match self {
            Self::Meta { per_second, .. } if !(1..=META_MAX_PER_SECOND).contains(&per_second) => {
                Err(PaceError::PerSecond)
            }
            Self::Waha {
                min_gap_ms,
                max_gap_ms,
            } if min_gap_ms < 1_000 || min_gap_ms > max_gap_ms => Err(PaceError::WahaGap),
            ok => Ok(ok),
        }
    }

    /// The gap after one send before the next may go, ms. `jitter` is a uniform
    /// sample in `[0, 1)` (the caller's randomness, so this stays pure); only WAHA
    /// uses it.
    pub fn gap_ms(self, jitter: f64) -> i64 {
        match self {
            Self::Meta { per_second, .. } => {
                // Rounded up: never faster than the configured rate.
                (1_000 + i64::from(per_second.max(1)) - 1) / i64::from(per_second.max(1))
            }
            Self::Waha {
                min_gap_ms,
                max_gap_ms,
            } => {
                let span = f64::from(max_gap_ms.saturating_sub(min_gap_ms));
                let j = jitter.clamp(0.0, 1.0);
                i64::from(min_gap_ms) + (span * j).round() as i64
            }
        }
    }

    /// How many more business-initiated sends the number has in the moving day,
    /// given how many it made in the last 24 hours; `None` when unlimited (WAHA
    /// has no messaging limit: its gap is the limit).
    pub fn room_today(self, sent_last_day: u32) -> Option<u32> {
        self.daily_limit().map(|d| d.saturating_sub(sent_last_day))
    }

    /// Business-initiated sends allowed per moving 24 hours; `None` when unlimited
    /// (an unlimited Meta tier, or WAHA). Without one, the runner need not count
    /// the day's sends at all.
    pub fn daily_limit(self) -> Option<u32> {
        match self {
            Self::Meta { limit, .. } => limit.per_day(),
            Self::Waha { .. } => None,
        }
    }
}

/// Send slots for up to `n` copies from a number whose next free slot is
/// `next_free` (epoch ms; 0 when it never sent): the first at
/// `max(next_free, now)`, each next one a gap later, keeping only those within
/// `horizon_ms` of `now` (none when even the first is further away). Returns the
/// slots and the number's next free slot after them. `jitter(i)` is the i-th
/// uniform sample for WAHA gaps.
pub fn plan(
    pace: Pace,
    next_free: i64,
    now: i64,
    n: usize,
    horizon_ms: i64,
    mut jitter: impl FnMut(usize) -> f64,
) -> (Vec<i64>, i64) {
    let mut at = next_free.max(now);
    let mut out = Vec::new();
    while out.len() < n && at <= now + horizon_ms {
        out.push(at);
        at += pace.gap_ms(jitter(out.len()));
    }
    (out, at)
}

/// The wait before retrying a copy Meta refused for rate (130429 throughput,
/// 131056 pair rate), ms: 1 s, 2 s, 4 s … capped at 5 minutes; the pair rate
/// never retries sooner than its 6 s.
pub fn rate_limit_backoff_ms(code: i64, attempt: u32) -> i64 {
    let base = 1_000_i64.saturating_mul(1_i64 << attempt.min(9));
    let floor = if code == 131_056 { 6_000 } else { 0 };
    base.clamp(floor, 300_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_never_exceeds_its_rate() {
        let pace = Pace::meta_default();
        let (times, next) = plan(pace, 0, 0, 161, 10_000, |_| 0.5);
        // 161 sends at 80/s take at least two seconds: the 81st is at ≥ 1 s.
        assert!(times[80] >= 1_000, "{}", times[80]);
        assert!(times[160] >= 2_000);
        assert_eq!(next, times[160] + 13);
        // Only the copies due within the horizon are planned.
        let (soon, next) = plan(pace, 0, 0, 161, 1_000, |_| 0.5);
        assert_eq!(soon.len(), 77, "0, 13, …, 988 ms");
        assert_eq!(next, 1_001);
        let slow = Pace::Meta {
            per_second: 3,
            limit: MessagingLimit::Unlimited,
        };
        assert_eq!(slow.gap_ms(0.0), 334, "rounded up, never faster");
    }

    #[test]
    fn waha_gaps_stay_in_their_range() {
        let pace = Pace::waha_default();
        assert_eq!(pace.gap_ms(0.0), 3_000);
        assert_eq!(pace.gap_ms(0.999_999), 8_000);
        let (times, next) = plan(pace, 10_000, 0, 3, 60_000, |i| [0.0, 0.5, 1.0, 0.2][i]);
        assert_eq!(times, vec![10_000, 15_500, 23_500]);
        assert_eq!(next, 27_500);
        // A number whose next slot passed long ago starts now.
        assert_eq!(plan(pace, 1, 50_000, 1, 1_000, |_| 0.0).0, vec![50_000]);
        // Nothing is planned when the next slot is beyond the horizon.
        assert_eq!(plan(pace, 9_000, 0, 5, 1_000, |_| 0.0), (vec![], 9_000));
    }

    #[test]
    fn daily_room_follows_the_messaging_limit() {
        assert_eq!(Pace::meta_default().room_today(200), Some(50));
        assert_eq!(Pace::meta_default().room_today(300), Some(0));
        let big = Pace::Meta {
            per_second: 80,
            limit: MessagingLimit::Unlimited,
        };
        assert_eq!(big.room_today(1_000_000), None);
        assert_eq!(Pace::waha_default().room_today(5), None);
        assert_eq!(Pace::meta_default().daily_limit(), Some(250));
        assert_eq!(big.daily_limit(), None, "nothing to count");
    }

    #[test]
    fn admins_cannot_set_a_dangerous_pace() {
        assert!(Pace::meta_default().validate().is_ok());
        let fast = Pace::Meta {
            per_second: 5_000,
            limit: MessagingLimit::Tier250,
        };
        assert_eq!(fast.validate(), Err(PaceError::PerSecond));
        let reversed = Pace::Waha {
            min_gap_ms: 8_000,
            max_gap_ms: 3_000,
        };
        assert_eq!(reversed.validate(), Err(PaceError::WahaGap));
        let json = serde_json::to_value(Pace::waha_default()).unwrap();
        assert_eq!(json["provider"], "waha");
        assert_eq!(json["min_gap_ms"], 3_000);
    }

    #[test]
    fn rate_limit_backoff_grows_and_respects_the_pair_rate() {
        assert_eq!(rate_limit_backoff_ms(130_429, 0), 1_000);
        assert_eq!(rate_limit_backoff_ms(130_429, 3), 8_000);
        assert_eq!(rate_limit_backoff_ms(130_429, 30), 300_000);
        assert_eq!(rate_limit_backoff_ms(131_056, 0), 6_000);
    }
}
