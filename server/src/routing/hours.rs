//! Working hours as a pure policy (`docs/routing.md`, "Working hours"): an agent's
//! weekly schedule in an IANA time zone, parsed and validated from the wire shape
//! `{"mon": ["09:00-17:00"], "fri": ["18:00-02:00"], …}`, and the question routing asks:
//! is this agent working at this instant?
//!
//! Times are wall-clock times in the agent's zone, so a shift that starts at 09:00
//! starts at 09:00 on both sides of a daylight-saving change (the zone rules come from
//! `chrono-tz`). An interval whose end is before its start is overnight: Friday
//! 18:00–02:00 runs into Saturday, and Sunday's overnight interval runs into Monday.
//! The instant is a parameter, never read from the wall clock here.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

/// Wire keys of the weekdays, Monday first (the index is `num_days_from_monday`).
pub const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Weekday names used in validation sentences, Monday first.
const DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;

/// At most this many intervals on one day (a split shift needs two or three).
pub const MAX_INTERVALS_PER_DAY: usize = 8;

/// One working interval of a day, in minutes since local midnight.
///
/// `start` is 0..=1439; `end` is 0..=1440 (1440 is `24:00`, the end of the day). When
/// `end < start` the interval is overnight and ends on the next day. `start == end`
/// never passes [`WeeklyHours::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Minutes since local midnight when work starts.
    pub start: u32,
    /// Minutes since local midnight when work ends (on the next day when overnight).
    pub end: u32,
}

impl Interval {
    /// Whether the interval ends on the next day.
    pub fn overnight(&self) -> bool {
        self.end < self.start
    }
}

impl fmt::Display for Interval {
    /// `HH:MM-HH:MM`, the wire form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", hhmm(self.start), hhmm(self.end))
    }
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A weekly schedule: per weekday (Monday first) its working intervals. A day with no
/// interval is a day off (unless the previous day's overnight interval runs into it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeeklyHours {
    days: [Vec<Interval>; 7],
}

/// The raw wire shape: weekday key → `HH:MM-HH:MM` strings.
pub type RawHours = BTreeMap<String, Vec<String>>;

impl WeeklyHours {
    /// Parses and validates the wire shape. Missing days are days off.
    ///
    /// # Errors
    /// One sentence naming the day and the interval: an unknown weekday key, a range
    /// that is not `HH:MM-HH:MM`, an empty range (start equals end), too many ranges on
    /// a day, or two ranges that overlap (overnight ranges included), e.g. "Monday
    /// 18:00–09:00 overlaps Tuesday 08:00–12:00."
    pub fn parse(raw: &RawHours) -> Result<Self, String> {
        let mut days: [Vec<Interval>; 7] = Default::default();
        for (key, ranges) in raw {
            let Some(day) = DAY_KEYS.iter().position(|k| k == key) else {
                return Err(format!(
                    "\"{key}\" is not a weekday: use mon, tue, wed, thu, fri, sat or sun."
                ));
            };
            let name = DAY_NAMES[day];
            if ranges.len() > MAX_INTERVALS_PER_DAY {
                return Err(format!(
                    "{name} has {} ranges; at most {MAX_INTERVALS_PER_DAY} are allowed.",
                    ranges.len()
                ));
            }
            for text in ranges {
                let interval = parse_interval(text).ok_or_else(|| {
                    format!("{name}: \"{text}\" is not a time range; write it like 09:00-17:00.")
                })?;
                if interval.start == interval.end {
                    return Err(format!(
                        "{name} {} is empty: the start and the end are the same time.",
                        label(interval)
                    ));
                }
                days[day].push(interval);
            }
            days[day].sort_by_key(|i| i.start);
        }
        let hours = Self { days };
        hours.check_overlaps()?;
        Ok(hours)
    }

    /// The wire shape, every weekday present (an empty list is a day off).
    pub fn to_raw(&self) -> RawHours {
        DAY_KEYS
            .iter()
            .zip(&self.days)
            .map(|(key, list)| {
                (
                    key.to_string(),
                    list.iter().map(|i| i.to_string()).collect(),
                )
            })
            .collect()
    }

    /// The intervals of a weekday (0 = Monday … 6 = Sunday); empty for other indexes.
    pub fn day(&self, index: usize) -> &[Interval] {
        self.days.get(index).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every interval as half-open minute-of-week segments `[start, end)` with its
    /// weekday; overnight intervals past Sunday midnight wrap into Monday (two
    /// segments).
    fn segments(&self) -> Vec<(u32, u32, usize, Interval)> {
        let mut out = Vec::new();
        for (day, list) in self.days.iter().enumerate() {
            // `day` is below 7, so the cast cannot truncate.
            let base = day as u32 * MINUTES_PER_DAY;
            for &i in list {
                let start = base + i.start;
                let end = base + i.end + if i.overnight() { MINUTES_PER_DAY } else { 0 };
                if end > MINUTES_PER_WEEK {
                    out.push((start, MINUTES_PER_WEEK, day, i));
                    out.push((0, end - MINUTES_PER_WEEK, day, i));
                } else {
                    out.push((start, end, day, i));
                }
            }
        }
        out.sort_by_key(|s| (s.0, s.1));
        out
    }

    fn check_overlaps(&self) -> Result<(), String> {
        let segments = self.segments();
        for pair in segments.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.1 > b.0 {
                return Err(format!(
                    "{} {} overlaps {} {}.",
                    DAY_NAMES[a.2],
                    label(a.3),
                    DAY_NAMES[b.2],
                    label(b.3)
                ));
            }
        }
        Ok(())
    }

    /// Whether the local minute of the week (0 = Monday 00:00) is inside an interval.
    fn covers(&self, minute_of_week: u32) -> bool {
        self.segments()
            .iter()
            .any(|s| s.0 <= minute_of_week && minute_of_week < s.1)
    }
}

impl Serialize for WeeklyHours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(s)
    }
}

/// `HH:MM–HH:MM` with an en dash, for sentences.
fn label(i: Interval) -> String {
    format!("{}–{}", hhmm(i.start), hhmm(i.end))
}

/// `H:MM` or `HH:MM`, 00:00 to 24:00.
fn parse_time(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// `HH:MM-HH:MM` (a hyphen or an en dash between); a range cannot start at 24:00.
fn parse_interval(text: &str) -> Option<Interval> {
    let (a, b) = text.split_once('-').or_else(|| text.split_once('–'))?;
    let (start, end) = (parse_time(a)?, parse_time(b)?);
    (start < MINUTES_PER_DAY).then_some(Interval { start, end })
}

/// Parses an IANA time zone name (`Asia/Jakarta`, `Europe/Berlin`, `UTC`).
///
/// # Errors
/// A sentence when the name is not a known zone.
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!(
            "\"{name}\" is not a known time zone; choose one like Asia/Jakarta or Europe/Berlin."
        )
    })
}

/// Whether `hours` in zone `tz` include the instant `at_ms` (UTC epoch milliseconds).
/// An instant outside chrono's range (beyond year 262 143) counts as not working.
pub fn is_working(hours: &WeeklyHours, tz: Tz, at_ms: i64) -> bool {
    let Some(utc) = DateTime::<Utc>::from_timestamp_millis(at_ms) else {
        return false;
    };
    let local = utc.with_timezone(&tz);
    let minute = local.weekday().num_days_from_monday() * MINUTES_PER_DAY
        + local.hour() * 60
        + local.minute();
    hours.covers(minute)
}

/// An agent's working hours: the schedule and the zone it is read in.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// The zone the schedule's wall-clock times are in.
    pub time_zone: Tz,
    /// The weekly schedule.
    pub hours: WeeklyHours,
}

impl Schedule {
    /// Whether the agent is working at `at_ms` (UTC epoch milliseconds).
    pub fn is_working(&self, at_ms: i64) -> bool {
        is_working(&self.hours, self.time_zone, at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn raw(pairs: &[(&str, &[&str])]) -> RawHours {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn hours(pairs: &[(&str, &[&str])]) -> WeeklyHours {
        WeeklyHours::parse(&raw(pairs)).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp_millis()
    }

    const UTC: Tz = chrono_tz::UTC;

    #[test]
    fn parses_and_round_trips() {
        let h = hours(&[("mon", &["13:00-17:00", "9:00–12:00"]), ("sun", &[])]);
        assert_eq!(h.day(0).len(), 2);
        assert_eq!(h.to_raw()["mon"], ["09:00-12:00", "13:00-17:00"]);
        assert!(h.to_raw()["tue"].is_empty());
        assert_eq!(WeeklyHours::parse(&h.to_raw()).unwrap(), h);
    }

    #[test]
    fn daytime_interval_is_half_open() {
        // 2026-12-07 is a Monday.
        let h = hours(&[("mon", &["09:00-17:00"])]);
        assert!(!is_working(&h, UTC, utc(2026, 12, 7, 8, 59)));
        assert!(is_working(&h, UTC, utc(2026, 12, 7, 9, 0)));
        assert!(is_working(&h, UTC, utc(2026, 12, 7, 16, 59)));
        assert!(!is_working(&h, UTC, utc(2026, 12, 7, 17, 0)));
        // The same time on Tuesday is a day off.
        assert!(!is_working(&h, UTC, utc(2026, 12, 8, 10, 0)));
    }

    #[test]
    fn overnight_runs_into_the_next_day() {
        let h = hours(&[("fri", &["18:00-02:00"])]);
        // Friday 2026-12-11.
        assert!(!is_working(&h, UTC, utc(2026, 12, 11, 17, 0)));
        assert!(is_working(&h, UTC, utc(2026, 12, 11, 23, 30)));
        assert!(is_working(&h, UTC, utc(2026, 12, 12, 1, 59)));
        assert!(!is_working(&h, UTC, utc(2026, 12, 12, 2, 0)));
        // Friday early morning is not covered (nothing on Thursday).
        assert!(!is_working(&h, UTC, utc(2026, 12, 11, 1, 0)));
    }

    #[test]
    fn sunday_overnight_wraps_into_monday() {
        let h = hours(&[("sun", &["22:00-06:00"])]);
        // Monday 2026-12-07 05:00 is still Sunday's shift.
        assert!(is_working(&h, UTC, utc(2026, 12, 7, 5, 0)));
        assert!(!is_working(&h, UTC, utc(2026, 12, 7, 6, 0)));
        assert!(is_working(&h, UTC, utc(2026, 12, 6, 23, 0)));
    }

    #[test]
    fn end_of_day_and_empty_schedule() {
        let h = hours(&[("tue", &["00:00-24:00"])]);
        assert!(is_working(&h, UTC, utc(2026, 12, 8, 0, 0)));
        assert!(is_working(&h, UTC, utc(2026, 12, 8, 23, 59)));
        assert!(!is_working(&h, UTC, utc(2026, 12, 9, 0, 0)));
        // No interval at all: never working (clearing the hours is a different thing).
        let none = hours(&[]);
        assert!(!is_working(&none, UTC, utc(2026, 12, 8, 12, 0)));
    }

    #[test]
    fn time_zone_shifts_the_day() {
        // 09:00-17:00 in Jakarta (UTC+7) is 02:00-10:00 UTC.
        let jakarta = parse_time_zone("Asia/Jakarta").unwrap();
        let h = hours(&[("mon", &["09:00-17:00"])]);
        assert!(is_working(&h, jakarta, utc(2026, 12, 7, 2, 0)));
        assert!(!is_working(&h, jakarta, utc(2026, 12, 7, 10, 0)));
        // Sunday 20:00 UTC is Monday 03:00 in Jakarta: before the shift.
        assert!(!is_working(&h, jakarta, utc(2026, 12, 6, 20, 0)));
    }

    #[test]
    fn follows_daylight_saving_in_berlin() {
        let berlin = parse_time_zone("Europe/Berlin").unwrap();
        let h = hours(&[("mon", &["09:00-17:00"]), ("sun", &["03:00-04:00"])]);
        // Before the change (CET, UTC+1): Monday 2026-03-23 09:00 local = 08:00 UTC.
        assert!(!is_working(&h, berlin, utc(2026, 3, 23, 7, 30)));
        assert!(is_working(&h, berlin, utc(2026, 3, 23, 8, 0)));
        // After the change (CEST, UTC+2): Monday 2026-03-30 09:00 local = 07:00 UTC.
        assert!(is_working(&h, berlin, utc(2026, 3, 30, 7, 0)));
        assert!(!is_working(&h, berlin, utc(2026, 3, 30, 15, 0)));
        // On the night itself (Sunday 2026-03-29) 02:00 CET jumps to 03:00 CEST at
        // 01:00 UTC: 00:59 UTC is 01:59 local, 01:00 UTC is already 03:00 local.
        assert!(!is_working(&h, berlin, utc(2026, 3, 29, 0, 59)));
        assert!(is_working(&h, berlin, utc(2026, 3, 29, 1, 0)));
        assert!(!is_working(&h, berlin, utc(2026, 3, 29, 2, 0)));
    }

    #[test]
    fn rejects_bad_input_with_a_sentence() {
        let err = |pairs: &[(&str, &[&str])]| WeeklyHours::parse(&raw(pairs)).unwrap_err();
        assert_eq!(
            err(&[("mun", &["09:00-17:00"])]),
            "\"mun\" is not a weekday: use mon, tue, wed, thu, fri, sat or sun."
        );
        assert_eq!(
            err(&[("mon", &["9-17"])]),
            "Monday: \"9-17\" is not a time range; write it like 09:00-17:00."
        );
        for bad in [
            "25:00-26:00",
            "09:60-10:00",
            "24:00-02:00",
            "09:00",
            "a:bc-d:ef",
        ] {
            assert!(err(&[("tue", &[bad])]).starts_with("Tuesday: "), "{bad}");
        }
        assert_eq!(
            err(&[("wed", &["10:00-10:00"])]),
            "Wednesday 10:00–10:00 is empty: the start and the end are the same time."
        );
        assert_eq!(
            err(&[("mon", &["18:00-09:00"]), ("tue", &["08:00-12:00"])]),
            "Monday 18:00–09:00 overlaps Tuesday 08:00–12:00."
        );
        assert_eq!(
            err(&[("thu", &["09:00-13:00", "12:00-17:00"])]),
            "Thursday 09:00–13:00 overlaps Thursday 12:00–17:00."
        );
        // Sunday's overnight shift runs into Monday's morning.
        assert!(err(&[("sun", &["22:00-07:00"]), ("mon", &["06:00-09:00"])]).contains("overlaps"));
        let many = ["00:00-01:00"; 9];
        assert!(err(&[("fri", &many)]).starts_with("Friday has 9 ranges"));
    }

    #[test]
    fn touching_intervals_are_fine() {
        let h = hours(&[
            ("mon", &["09:00-12:00", "12:00-17:00"]),
            ("sun", &["20:00-00:00"]),
        ]);
        assert!(is_working(&h, UTC, utc(2026, 12, 7, 12, 0)));
        // Sunday 20:00-00:00 is overnight by form and ends at Monday midnight.
        assert!(is_working(&h, UTC, utc(2026, 12, 6, 23, 59)));
        assert!(!is_working(&h, UTC, utc(2026, 12, 7, 0, 0)));
    }

    #[test]
    fn time_zones_are_checked() {
        assert!(parse_time_zone("Asia/Jakarta").is_ok());
        assert!(parse_time_zone("UTC").is_ok());
        assert_eq!(
            parse_time_zone("Mars/Olympus").unwrap_err(),
            "\"Mars/Olympus\" is not a known time zone; choose one like Asia/Jakarta or Europe/Berlin."
        );
    }
}
