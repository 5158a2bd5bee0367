//! Rate limits for what strangers can do: per-client-address limits on login, widget
//! session creation and webhooks; per-guest and per-address limits on guest messages
//! (the `governor` crate's GCRA limiter); and the per-account login back-off
//! ([`LoginBackoff`]), which slows password guessing against one account from any
//! number of addresses.
//!
//! All state is in memory on each node: in a cluster the limits apply per node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use parking_lot::Mutex;

use crate::config::Config;
use crate::error::AppError;

/// The hub's keyed limiters.
pub struct RateLimits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    widget: DefaultKeyedRateLimiter<IpAddr>,
    webhook: DefaultKeyedRateLimiter<IpAddr>,
    guest_conversation: DefaultKeyedRateLimiter<String>,
    guest_address: DefaultKeyedRateLimiter<IpAddr>,
    login_backoff: LoginBackoff,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    // Config::validate rejects 0, so the fallback is never used.
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(nonzero(n))
}

/// A sustained rate of `per_min` per minute with room for `burst` at once.
fn with_burst(per_min: u32, burst: u32) -> Quota {
    per_minute(per_min).allow_burst(nonzero(burst))
}

/// [`AppError::RateLimited`] with the wait `governor` computed.
fn limited(not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> AppError {
    AppError::RateLimited(not_until.wait_time_from(DefaultClock::default().now()))
}

impl RateLimits {
    /// Limiters sized from the configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            login: RateLimiter::keyed(per_minute(config.rate_login_per_min)),
            widget: RateLimiter::keyed(per_minute(config.rate_widget_per_min)),
            webhook: RateLimiter::keyed(per_minute(config.whatsapp.rate_webhook_per_min)),
            guest_conversation: RateLimiter::keyed(with_burst(
                config.guest_messages.per_guest_per_min,
                config.guest_messages.per_guest_burst,
            )),
            guest_address: RateLimiter::keyed(with_burst(
                config.guest_messages.per_address_per_min,
                config.guest_messages.per_address_burst,
            )),
            login_backoff: LoginBackoff::new(config.login_backoff.clone()),
        }
    }

    /// Counts a login attempt from `ip`.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the limit.
    pub fn login(&self, ip: IpAddr) -> Result<(), AppError> {
        self.login.check_key(&ip).map_err(|e| limited(&e))
    }

    /// The per-account login back-off.
    pub fn login_backoff(&self) -> &LoginBackoff {
        &self.login_backoff
    }

    /// Counts a widget session creation from `ip`.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the limit.
    pub fn widget(&self, ip: IpAddr) -> Result<(), AppError> {
        self.widget.check_key(&ip).map_err(|e| limited(&e))
    }

    /// Counts a webhook POST from `ip` (providers deliver in bursts: the limit is generous).
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the limit.
    pub fn webhook(&self, ip: IpAddr) -> Result<(), AppError> {
        self.webhook.check_key(&ip).map_err(|e| limited(&e))
    }

    /// Counts one message from the guest of `conversation_id`, connected from `ip`.
    /// Both budgets must have room; the guest's own is checked first, so a guest over
    /// its own budget does not use up its address's.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past either limit (nothing is stored then).
    pub fn guest_message(&self, conversation_id: &str, ip: IpAddr) -> Result<(), AppError> {
        self.guest_conversation
            .check_key(&conversation_id.to_string())
            .map_err(|e| limited(&e))?;
        self.guest_address.check_key(&ip).map_err(|e| limited(&e))
    }

    /// Drops state for addresses that have been quiet long enough to be back at a
    /// full quota, so memory does not grow with every address ever seen.
    pub fn forget_idle(&self) {
        self.login.retain_recent();
        self.widget.retain_recent();
        self.webhook.retain_recent();
        self.guest_conversation.retain_recent();
        self.guest_address.retain_recent();
        self.login_backoff.forget_idle(crate::clock::now_ms());
    }
}

/// How the per-account login back-off grows (`docs/configuration.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Consecutive failures that cost nothing (`SWITCHBOARD_LOGIN_FREE_FAILURES`, default 5).
    pub free_failures: u32,
    /// Wait after the first failure past the free ones; it doubles with each further
    /// failure (`SWITCHBOARD_LOGIN_BACKOFF_BASE`, seconds, default 1).
    pub base: Duration,
    /// Longest wait (`SWITCHBOARD_LOGIN_BACKOFF_MAX`, seconds, default 900 = 15 min).
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl BackoffPolicy {
    /// The wait imposed after `failures` consecutive failures: `free_failures`
    /// attempts in a row are free, then each failure makes the account wait
    /// `base`, `2 × base`, `4 × base` … capped at `max`. With the defaults: after the
    /// 5th consecutive failure the account waits 1 s, after the 6th 2 s, the 7th 4 s,
    /// and from the 15th on 15 min.
    pub fn wait_after(&self, failures: u32) -> Duration {
        if failures < self.free_failures.max(1) {
            return Duration::ZERO;
        }
        let doublings = failures - self.free_failures.max(1);
        // 2^20 × base is far past any sensible max; stop doubling there.
        let factor = 1u32 << doublings.min(20);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Consecutive failures of one account and when the last one happened.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last_ms: i64,
}

/// Per-account login back-off, keyed by normalised email (trimmed, lower-case), so
/// `Admin@X` and `admin@x` share one count. Unknown emails are counted too: treating
/// them differently would reveal which accounts exist. Times are epoch milliseconds
/// passed in by the caller ([`crate::clock::now_ms`] in the server), so the rules are
/// pure and tested without waiting.
#[derive(Debug)]
pub struct LoginBackoff {
    policy: BackoffPolicy,
    accounts: Mutex<HashMap<String, Failures>>,
}

/// The key an email is counted under.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl LoginBackoff {
    /// An empty back-off table with `policy`.
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Failures>> {
        self.accounts.lock()
    }

    /// Whether `email` may try a password at `now_ms`.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] with the remaining wait while the account's back-off runs.
    pub fn check(&self, email: &str, now_ms: i64) -> Result<(), AppError> {
        let Some(f) = self.table().get(&normalise_email(email)).copied() else {
            return Ok(());
        };
        let wait = i64::try_from(self.policy.wait_after(f.count).as_millis()).unwrap_or(i64::MAX);
        let until = f.last_ms.saturating_add(wait);
        if now_ms < until {
            let left = u64::try_from(until - now_ms).unwrap_or(0);
            return Err(AppError::RateLimited(Duration::from_millis(left)));
        }
        Ok(())
    }

    /// Records a wrong password for `email` at `now_ms`; returns the consecutive count.
    pub fn failed(&self, email: &str, now_ms: i64) -> u32 {
        let mut table = self.table();
        let f = table.entry(normalise_email(email)).or_insert(Failures {
            count: 0,
            last_ms: now_ms,
        });
        f.count = f.count.saturating_add(1);
        f.last_ms = now_ms;
        f.count
    }

    /// A correct login: the account starts again with its free failures.
    pub fn succeeded(&self, email: &str) {
        self.table().remove(&normalise_email(email));
    }

    /// Forgets accounts whose last failure is older than the longest wait: they
    /// could log in anyway, and the table must not grow with every email tried.
    /// (Their count restarts; a guesser that slow gains at most the free failures
    /// once per `max`.)
    pub fn forget_idle(&self, now_ms: i64) {
        let max = i64::try_from(self.policy.max.as_millis()).unwrap_or(i64::MAX);
        self.table()
            .retain(|_, f| now_ms.saturating_sub(f.last_ms) <= max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy::default()
    }

    #[test]
    fn wait_grows_exponentially_after_the_free_failures_and_is_capped() {
        let p = policy();
        let secs: Vec<u64> = (0..=16).map(|n| p.wait_after(n).as_secs()).collect();
        assert_eq!(
            secs,
            [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
        );
        assert_eq!(p.wait_after(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn an_account_is_refused_while_its_backoff_runs_and_reset_by_success() {
        let b = LoginBackoff::new(policy());
        let t = 1_000_000;
        for i in 0..4 {
            assert_eq!(b.failed("Ann@Example.com", t), i + 1);
            assert!(b.check("ann@example.com", t).is_ok(), "failure {i} is free");
        }
        assert_eq!(b.failed(" ann@example.com ", t), 5);
        let Err(AppError::RateLimited(wait)) = b.check("ANN@example.com", t + 100) else {
            panic!("the fifth failure must lock the account");
        };
        assert_eq!(wait, Duration::from_millis(900));
        assert!(b.check("ann@example.com", t + 1000).is_ok(), "1 s later");
        assert!(
            b.check("bob@example.com", t).is_ok(),
            "other accounts are free"
        );
        assert_eq!(b.failed("ann@example.com", t + 1000), 6);
        assert!(b.check("ann@example.com", t + 2999).is_err());
        assert!(b.check("ann@example.com", t + 3000).is_ok());

        b.succeeded("ann@example.com");
        assert_eq!(b.failed("ann@example.com", t + 3000), 1, "success resets");
        assert!(b.check("ann@example.com", t + 3000).is_ok());
    }

    #[test]
    fn idle_accounts_are_forgotten() {
        let b = LoginBackoff::new(policy());
        b.failed("a@x", 0);
        b.failed("b@x", 900_000);
        b.forget_idle(900_001);
        assert_eq!(b.failed("a@x", 900_001), 1, "forgotten");
        assert_eq!(b.failed("b@x", 900_001), 2, "kept");
    }

    #[test]
    fn guest_messages_have_a_burst_then_are_limited_per_guest_and_per_address() {
        let mut config = Config::default();
        config.guest_messages.per_guest_burst = 3;
        config.guest_messages.per_guest_per_min = 1;
        config.guest_messages.per_address_burst = 5;
        config.guest_messages.per_address_per_min = 1;
        let limits = RateLimits::new(&config);
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.guest_message("c1", ip).is_ok());
        }
        assert!(matches!(
            limits.guest_message("c1", ip),
            Err(AppError::RateLimited(_))
        ));
        // A second guest from the same address has its own budget, until the
        // address's runs out (3 + 2 = 5).
        assert!(limits.guest_message("c2", ip).is_ok());
        assert!(limits.guest_message("c2", ip).is_ok());
        assert!(limits.guest_message("c2", ip).is_err());
        let other: IpAddr = "203.0.113.2".parse().unwrap();
        assert!(limits.guest_message("c3", other).is_ok());
    }
}
