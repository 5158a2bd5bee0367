//! Time as the hub stores and shows it: UTC milliseconds since the Unix epoch in the
//! database, RFC 3339 with milliseconds (`2026-11-21T08:15:02.123Z`) on the wire.

use chrono::{DateTime, SecondsFormat, Utc};

/// Current time in UTC milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Formats epoch milliseconds as RFC 3339 UTC with millisecond precision.
/// Out-of-range values (beyond year 262 143) format as the epoch rather than panic.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        assert_eq!(rfc3339(1_763_712_902_123), "2025-11-21T08:15:02.123Z");
        assert_eq!(rfc3339(i64::MAX), "1970-01-01T00:00:00.000Z");
    }
}
