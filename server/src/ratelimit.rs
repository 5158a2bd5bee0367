//! Per-client-address rate limits for the endpoints strangers can hit (login, widget
//! session creation), using the `governor` crate's GCRA limiter.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Config;
use crate::error::AppError;

/// The hub's keyed limiters.
pub struct RateLimits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    widget: DefaultKeyedRateLimiter<IpAddr>,
    webhook: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

fn per_minute(n: u32) -> Quota {
    // Config::validate rejects 0, so the fallback is never used.
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    /// Limiters sized from the configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            login: RateLimiter::keyed(per_minute(config.rate_login_per_min)),
            widget: RateLimiter::keyed(per_minute(config.rate_widget_per_min)),
            webhook: RateLimiter::keyed(per_minute(config.whatsapp.rate_webhook_per_min)),
        }
    }

    /// Counts a login attempt from `ip`.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the limit.
    pub fn login(&self, ip: IpAddr) -> Result<(), AppError> {
        self.login.check_key(&ip).map_err(|_| AppError::RateLimited)
    }

    /// Counts a widget session creation from `ip`.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the limit.
    pub fn widget(&self, ip: IpAddr) -> Result<(), AppError> {
        self.widget
            .check_key(&ip)
            .map_err(|_| AppError::RateLimited)
    }

    /// Counts a webhook POST from `ip` (providers deliver in bursts: the limit is generous).
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the limit.
    pub fn webhook(&self, ip: IpAddr) -> Result<(), AppError> {
        self.webhook
            .check_key(&ip)
            .map_err(|_| AppError::RateLimited)
    }

    /// Drops state for addresses that have been quiet long enough to be back at a
    /// full quota, so memory does not grow with every address ever seen.
    pub fn forget_idle(&self) {
        self.login.retain_recent();
        self.widget.retain_recent();
        self.webhook.retain_recent();
    }
}
