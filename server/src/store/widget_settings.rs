//! Guest widget settings per team: which pre-chat fields are asked, the greeting,
//! the away message and business hours. A team without a row gets [`defaults`].

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::db::schema::{team_members, widget_settings};
use crate::db::DbConn;
use crate::error::AppError;

/// Fields the pre-chat form may ask for, in display order.
pub const PRECHAT_FIELDS: [&str; 3] = ["name", "email", "phone"];

/// Greeting shown when nobody set one.
pub const DEFAULT_GREETING: &str = "Hi! Send us a message and we will reply here.";
/// Away message shown when nobody set one.
pub const DEFAULT_AWAY: &str =
    "We are away right now. Leave a message and we will get back to you as soon as we can.";

/// Opening hours: open on `days` (1 = Monday … 7 = Sunday) from `open` to `close`
/// (`"HH:MM"`, local time at `utc_offset_minutes` from UTC).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// Offset of the team's local time from UTC, in minutes (e.g. 60 for UTC+1).
    pub utc_offset_minutes: i32,
    /// Open days, ISO numbering (1 = Monday).
    pub days: Vec<u8>,
    /// Opening time, `HH:MM`.
    pub open: String,
    /// Closing time, `HH:MM` (before `open`: open past midnight).
    pub close: String,
}

fn minutes_of(hhmm: &str) -> Option<i64> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

impl BusinessHours {
    /// Checks ranges and formats.
    ///
    /// # Errors
    /// [`AppError::Validation`] naming the bad part.
    pub fn validate(&self) -> Result<(), AppError> {
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            return Err(AppError::Validation(
                "The time zone offset must be between -840 and 840 minutes.".into(),
            ));
        }
        if self.days.iter().any(|d| !(1..=7).contains(d)) {
            return Err(AppError::Validation(
                "Days are numbered 1 (Monday) to 7 (Sunday).".into(),
            ));
        }
        if minutes_of(&self.open).is_none() || minutes_of(&self.close).is_none() {
            return Err(AppError::Validation(
                "Opening and closing times are written as HH:MM, e.g. 09:00.".into(),
            ));
        }
        Ok(())
    }

    /// Whether the team is open at `now_ms` (UTC epoch milliseconds).
    pub fn is_open(&self, now_ms: i64) -> bool {
        let (Some(open), Some(close)) = (minutes_of(&self.open), minutes_of(&self.close)) else {
            return true;
        };
        let local_min = now_ms.div_euclid(60_000) + i64::from(self.utc_offset_minutes);
        let day_index = local_min.div_euclid(24 * 60); // days since 1970-01-01, a Thursday
        let minute = local_min.rem_euclid(24 * 60);
        let weekday = |d: i64| u8::try_from((d + 3).rem_euclid(7) + 1).unwrap_or(1); // 1 = Monday
        if open <= close {
            self.days.contains(&weekday(day_index)) && (open..close).contains(&minute)
        } else if minute >= open {
            self.days.contains(&weekday(day_index))
        } else {
            // Early morning of a shift that started the day before.
            minute < close && self.days.contains(&weekday(day_index - 1))
        }
    }
}

/// A team's widget settings as the API shows them.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WidgetSettings {
    /// Pre-chat form fields (subset of [`PRECHAT_FIELDS`]); empty: no form.
    pub prechat_fields: Vec<String>,
    /// Whether the form must be filled before chatting.
    pub prechat_required: bool,
    /// Shown at the top of the conversation.
    pub greeting: String,
    /// Shown outside business hours or when no agent is online.
    pub away_message: String,
    /// Opening hours; `None`: always open.
    pub business_hours: Option<BusinessHours>,
}

/// The settings a team without a row has.
pub fn defaults() -> WidgetSettings {
    WidgetSettings {
        prechat_fields: Vec::new(),
        prechat_required: false,
        greeting: DEFAULT_GREETING.into(),
        away_message: DEFAULT_AWAY.into(),
        business_hours: None,
    }
}

/// A full replacement of a team's settings (`PUT /api/teams/{id}/widget`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetUpdate {
    /// See [`WidgetSettings::prechat_fields`].
    #[serde(default)]
    pub prechat_fields: Vec<String>,
    /// See [`WidgetSettings::prechat_required`].
    #[serde(default)]
    pub prechat_required: bool,
    /// Blank: the default greeting.
    #[serde(default)]
    pub greeting: String,
    /// Blank: the default away message.
    #[serde(default)]
    pub away_message: String,
    /// See [`WidgetSettings::business_hours`].
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
}

/// The team's settings (defaults when none are stored).
///
/// # Errors
/// Database errors.
pub fn load(conn: &mut DbConn, team_id: &str) -> Result<WidgetSettings, AppError> {
    let row: Option<(String, bool, String, String, Option<String>)> = widget_settings::table
        .filter(widget_settings::team_id.eq(team_id))
        .select((
            widget_settings::prechat_fields,
            widget_settings::prechat_required,
            widget_settings::greeting,
            widget_settings::away_message,
            widget_settings::business_hours,
        ))
        .first(conn)
        .optional()?;
    let Some((fields, required, greeting, away, hours)) = row else {
        return Ok(defaults());
    };
    let d = defaults();
    Ok(WidgetSettings {
        prechat_fields: fields
            .split(',')
            .filter(|f| PRECHAT_FIELDS.contains(f))
            .map(str::to_string)
            .collect(),
        prechat_required: required,
        greeting: if greeting.is_empty() {
            d.greeting
        } else {
            greeting
        },
        away_message: if away.is_empty() {
            d.away_message
        } else {
            away
        },
        // A value this code wrote; unreadable means "always open" rather than an error page.
        business_hours: hours.and_then(|h| serde_json::from_str(&h).ok()),
    })
}

/// Validates and stores a team's settings; returns them as [`load`] would.
///
/// # Errors
/// [`AppError::Validation`] for unknown fields, over-long texts or bad hours;
/// database errors.
pub fn update(
    conn: &mut DbConn,
    team_id: &str,
    update: &WidgetUpdate,
) -> Result<WidgetSettings, AppError> {
    if let Some(bad) = update
        .prechat_fields
        .iter()
        .find(|f| !PRECHAT_FIELDS.contains(&f.as_str()))
    {
        return Err(AppError::Validation(format!(
            "The pre-chat form can ask for name, email and phone, not {bad:?}."
        )));
    }
    for (name, text) in [
        ("greeting", &update.greeting),
        ("away_message", &update.away_message),
    ] {
        if text.chars().count() > 500 {
            return Err(AppError::Validation(format!(
                "The {} can be at most 500 characters.",
                name.replace('_', " ")
            )));
        }
    }
    if let Some(h) = &update.business_hours {
        h.validate()?;
    }
    // Stored in display order, without repeats.
    let fields: Vec<&str> = PRECHAT_FIELDS
        .into_iter()
        .filter(|f| update.prechat_fields.iter().any(|u| u == f))
        .collect();
    let fields = fields.join(",");
    let hours = update
        .business_hours
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| AppError::Internal(format!("encode business hours: {e}")))?;
    let now = now_ms();
    let changed =
        diesel::update(widget_settings::table.filter(widget_settings::team_id.eq(team_id)))
            .set((
                widget_settings::prechat_fields.eq(&fields),
                widget_settings::prechat_required.eq(update.prechat_required),
                widget_settings::greeting.eq(update.greeting.trim()),
                widget_settings::away_message.eq(update.away_message.trim()),
                widget_settings::business_hours.eq(&hours),
                widget_settings::updated_at.eq(now),
            ))
            .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(widget_settings::table)
            .values((
                widget_settings::team_id.eq(team_id),
                widget_settings::prechat_fields.eq(&fields),
                widget_settings::prechat_required.eq(update.prechat_required),
                widget_settings::greeting.eq(update.greeting.trim()),
                widget_settings::away_message.eq(update.away_message.trim()),
                widget_settings::business_hours.eq(&hours),
                widget_settings::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    load(conn, team_id)
}

/// Ids of the team's members.
///
/// # Errors
/// Database errors.
pub fn member_ids(conn: &mut DbConn, team_id: &str) -> Result<Vec<String>, AppError> {
    Ok(team_members::table
        .filter(team_members::team_id.eq(team_id))
        .select(team_members::agent_id)
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(open: &str, close: &str) -> BusinessHours {
        BusinessHours {
            utc_offset_minutes: 0,
            days: vec![1, 2, 3, 4, 5],
            open: open.into(),
            close: close.into(),
        }
    }

    // 2024-01-01 was a Monday.
    const MONDAY_MIDNIGHT_UTC: i64 = 1_704_067_200_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn weekday_hours() {
        let h = hours("09:00", "17:00");
        assert!(!h.is_open(MONDAY_MIDNIGHT_UTC + 8 * HOUR));
        assert!(h.is_open(MONDAY_MIDNIGHT_UTC + 9 * HOUR));
        assert!(!h.is_open(MONDAY_MIDNIGHT_UTC + 17 * HOUR));
        // Saturday 10:00.
        assert!(!h.is_open(MONDAY_MIDNIGHT_UTC + 5 * 24 * HOUR + 10 * HOUR));
    }

    #[test]
    fn overnight_and_offset() {
        let h = hours("22:00", "06:00");
        assert!(h.is_open(MONDAY_MIDNIGHT_UTC + 23 * HOUR));
        assert!(h.is_open(MONDAY_MIDNIGHT_UTC + 24 * HOUR + 5 * HOUR)); // Tue 05:00, Monday's shift
        assert!(!h.is_open(MONDAY_MIDNIGHT_UTC + 5 * HOUR)); // Mon 05:00 belongs to Sunday
        let mut h = hours("09:00", "17:00");
        h.utc_offset_minutes = 120;
        assert!(h.is_open(MONDAY_MIDNIGHT_UTC + 7 * HOUR)); // 09:00 local
    }
}
