//! A broadcast's send time as a marketer gives it — a wall-clock time in a time
//! zone ("2026-12-24 09:00, Asia/Jakarta") — turned into the UTC instant the
//! scheduler uses, with the daylight-saving edge cases decided here once.

use chrono::{LocalResult, NaiveDateTime, TimeZone};

/// Why a send time was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not `YYYY-MM-DDTHH:MM` (seconds optional).
    #[error("the send time must look like 2026-12-24T09:00")]
    Format,
    /// Not an IANA time zone name.
    #[error("unknown time zone {0:?} (use an IANA name such as Asia/Jakarta)")]
    Zone(String),
    /// The clock skips that time in that zone (spring forward).
    #[error("{0} does not exist in that time zone (the clocks skip it)")]
    Skipped(String),
    /// In the past (more than a minute ago).
    #[error("the send time is in the past")]
    Past,
}

/// The UTC instant (epoch ms) of wall-clock `local` in `zone`. A time the
/// clocks pass twice (fall back) means the first of the two. A time up to a minute
/// in the past is accepted as "now" (the form took a moment to submit).
///
/// # Errors
/// [`ScheduleError`] with a text for the marketer.
pub fn send_at(local: &str, zone: &str, now_ms: i64) -> Result<i64, ScheduleError> {
    let tz: chrono_tz::Tz = zone
        .trim()
        .parse()
        .map_err(|_| ScheduleError::Zone(zone.to_string()))?;
    let text = local.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| ScheduleError::Format)?;
    let at = match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        LocalResult::None => return Err(ScheduleError::Skipped(text.to_string())),
    };
    if at < now_ms - 60_000 {
        return Err(ScheduleError::Past);
    }
    Ok(at.max(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_become_utc() {
        // 09:00 in Jakarta (UTC+7) is 02:00 UTC.
        let at = send_at("2026-12-24T09:00", "Asia/Jakarta", 0).unwrap();
        assert_eq!(crate::clock::rfc3339(at), "2026-12-24T02:00:00.000Z");
    }

    #[test]
    fn daylight_saving_edges_are_decided() {
        // Europe/Berlin skips 02:00–03:00 on 2027-03-28 and repeats 02:00–03:00 on 2027-10-31.
        assert!(matches!(
            send_at("2027-03-28T02:30", "Europe/Berlin", 0),
            Err(ScheduleError::Skipped(_))
        ));
        let twice = send_at("2027-10-31T02:30", "Europe/Berlin", 0).unwrap();
        assert_eq!(
            crate::clock::rfc3339(twice),
            "2027-10-31T00:30:00.000Z",
            "the first one"
        );
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(
            send_at("24/12/2026", "Asia/Jakarta", 0),
            Err(ScheduleError::Format)
        );
        assert!(matches!(
            send_at("2026-12-24T09:00", "Mars/Base", 0),
            Err(ScheduleError::Zone(_))
        ));
        let now = send_at("2026-12-24T09:00", "UTC", 0).unwrap();
        assert_eq!(
            send_at("2026-12-24T08:00", "UTC", now),
            Err(ScheduleError::Past)
        );
        assert_eq!(
            send_at("2026-12-24T08:59:30", "UTC", now),
            Ok(now),
            "a moment ago is now"
        );
    }
}
