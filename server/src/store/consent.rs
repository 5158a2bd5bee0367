//! Marketing consent (`docs/contacts.md`, "Opt-out"): each contact's current state
//! (`contact_consent`, no row = unknown), its append-only history
//! (`consent_events`) and each team's opt-out keywords (`consent_settings`).
//!
//! [`change`] writes the state and its event together and reports whether anything
//! changed, which is what makes the keyword confirmation go out once: a second STOP
//! finds the contact already opted out and changes nothing.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use crate::clock::rfc3339;
use crate::contacts::optout::KeywordSettings;
use crate::contacts::{ConsentSource, ConsentState};
use crate::db::schema::{consent_events, consent_settings, contact_consent};
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::new_id;

/// A contact's consent as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    /// Current state.
    pub state: ConsentState,
    /// What set it; `None` while unknown.
    pub source: Option<ConsentSource>,
    /// The agent who set it, for source `agent`.
    pub changed_by: Option<String>,
    /// When (RFC 3339); `None` while unknown.
    pub changed_at: Option<String>,
}

impl ConsentView {
    /// Never asked.
    pub fn unknown() -> Self {
        Self {
            state: ConsentState::Unknown,
            source: None,
            changed_by: None,
            changed_at: None,
        }
    }
}

/// One change in a contact's consent history.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentEvent {
    /// Event id.
    pub id: String,
    /// State after the change.
    pub state: ConsentState,
    /// What changed it.
    pub source: ConsentSource,
    /// The agent, for source `agent`.
    pub actor_id: Option<String>,
    /// The customer's message, for source `keyword`.
    pub conversation_id: Option<String>,
    /// Its seq.
    pub seq: Option<i64>,
    /// The keyword, an agent's note, the import's name.
    pub detail: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// A consent change to apply.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The contact.
    pub contact_id: &'a str,
    /// New state (opted in or out).
    pub state: ConsentState,
    /// What changes it.
    pub source: ConsentSource,
    /// The agent, for source `agent`.
    pub actor_id: Option<&'a str>,
    /// The customer's message (conversation, seq), for source `keyword`.
    pub message: Option<(&'a str, i64)>,
    /// The keyword, a note.
    pub detail: Option<&'a str>,
}

type Row = (String, String, String, Option<String>, i64);

fn view_of(row: Row) -> ConsentView {
    let (_, state, source, changed_by, at) = row;
    ConsentView {
        state: ConsentState::parse_lossy(&state),
        source: Some(ConsentSource::parse_lossy(&source)),
        changed_by,
        changed_at: Some(rfc3339(at)),
    }
}

fn select() -> (
    contact_consent::contact_id,
    contact_consent::state,
    contact_consent::source,
    contact_consent::changed_by,
    contact_consent::changed_at,
) {
    (
        contact_consent::contact_id,
        contact_consent::state,
        contact_consent::source,
        contact_consent::changed_by,
        contact_consent::changed_at,
    )
}

/// The consent of `contact_id`.
///
/// # Errors
/// Database errors.
pub fn get(c: &mut DbConn, contact_id: &str) -> Result<ConsentView, AppError> {
    Ok(contact_consent::table
        .find(contact_id)
        .select(select())
        .first::<Row>(c)
        .optional()?
        .map_or_else(ConsentView::unknown, view_of))
}

/// The consent of each of `contact_ids` that has one (the rest are unknown).
///
/// # Errors
/// Database errors.
pub fn of_contacts(
    c: &mut DbConn,
    contact_ids: &[String],
) -> Result<HashMap<String, ConsentView>, AppError> {
    let mut out = HashMap::new();
    for chunk in contact_ids.chunks(500) {
        let rows: Vec<Row> = contact_consent::table
            .filter(contact_consent::contact_id.eq_any(chunk))
            .select(select())
            .load(c)?;
        for row in rows {
            out.insert(row.0.clone(), view_of(row));
        }
    }
    Ok(out)
}

/// Whether `contact_id` has opted out of marketing: broadcasts skip such contacts.
///
/// # Errors
/// Database errors.
pub fn opted_out(c: &mut DbConn, contact_id: &str) -> Result<bool, AppError> {
    Ok(get(c, contact_id)?.state == ConsentState::OptedOut)
}

/// Applies `change` at `now` unless the contact is already in that state; returns
/// the state before when it changed, `None` when nothing changed (no event written).
/// Run it inside a write transaction.
///
/// # Errors
/// [`AppError::Validation`] for `Unknown` as a target; database errors.
pub fn change(
    c: &mut DbConn,
    change: &Change<'_>,
    now: i64,
) -> Result<Option<ConsentView>, AppError> {
    if change.state == ConsentState::Unknown {
        return Err(AppError::Validation(
            "Consent can be set to opted_in or opted_out.".into(),
        ));
    }
    let before = get(c, change.contact_id)?;
    if before.state == change.state {
        return Ok(None);
    }
    let values = (
        contact_consent::state.eq(change.state.as_str()),
        contact_consent::source.eq(change.source.as_str()),
        contact_consent::changed_by.eq(change.actor_id),
        contact_consent::changed_at.eq(now),
    );
    if before.state == ConsentState::Unknown {
        diesel::insert_into(contact_consent::table)
            .values((contact_consent::contact_id.eq(change.contact_id), values))
            .execute(c)?;
    } else {
        diesel::update(contact_consent::table.find(change.contact_id))
            .set(values)
            .execute(c)?;
    }
    diesel::insert_into(consent_events::table)
        .values((
            consent_events::id.eq(new_id()),
            consent_events::contact_id.eq(change.contact_id),
            consent_events::state.eq(change.state.as_str()),
            consent_events::source.eq(change.source.as_str()),
            consent_events::actor_id.eq(change.actor_id),
            consent_events::conversation_id.eq(change.message.map(|m| m.0)),
            consent_events::seq.eq(change.message.map(|m| m.1)),
            consent_events::detail.eq(change.detail),
            consent_events::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(Some(before))
}

/// The consent history of `contact_id`, newest first.
///
/// # Errors
/// Database errors.
pub fn history(c: &mut DbConn, contact_id: &str) -> Result<Vec<ConsentEvent>, AppError> {
    type EventRow = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        i64,
    );
    let rows: Vec<EventRow> = consent_events::table
        .filter(consent_events::contact_id.eq(contact_id))
        .order((consent_events::created_at.desc(), consent_events::id.desc()))
        .select((
            consent_events::id,
            consent_events::state,
            consent_events::source,
            consent_events::actor_id,
            consent_events::conversation_id,
            consent_events::seq,
            consent_events::detail,
            consent_events::created_at,
        ))
        .limit(200)
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, state, source, actor_id, conversation_id, seq, detail, at)| ConsentEvent {
                id,
                state: ConsentState::parse_lossy(&state),
                source: ConsentSource::parse_lossy(&source),
                actor_id,
                conversation_id,
                seq,
                detail,
                at: rfc3339(at),
            },
        )
        .collect())
}

/// A team's keyword settings (the defaults when never set), from this node's cache
/// when read within its TTL ([`crate::store::team_cache`]): what the opt-out stage
/// reads for every customer message.
///
/// # Errors
/// Database errors; a stored value that no longer parses reads as the defaults.
pub fn settings_cached(
    c: &mut DbConn,
    team_id: &str,
) -> Result<std::sync::Arc<KeywordSettings>, AppError> {
    KEYWORDS.get(team_id, || settings(c, team_id))
}

/// A team's keyword settings if [`settings_cached`] holds them fresh; `None` means
/// ask [`settings_cached`] (on a blocking thread).
pub fn settings_peek(team_id: &str) -> Option<std::sync::Arc<KeywordSettings>> {
    KEYWORDS.peek(team_id)
}

/// A team's keyword settings changed (after the commit): the next
/// [`settings_cached`] on this node reads them again.
pub fn settings_changed(team_id: &str) {
    KEYWORDS.invalidate(team_id);
}

static KEYWORDS: std::sync::LazyLock<crate::store::team_cache::TeamCache<KeywordSettings>> =
    std::sync::LazyLock::new(Default::default);

/// A team's keyword settings as stored (the defaults when it has none).
///
/// # Errors
/// Database errors.
pub fn settings(c: &mut DbConn, team_id: &str) -> Result<KeywordSettings, AppError> {
    let stored: Option<String> = consent_settings::table
        .find(team_id)
        .select(consent_settings::settings)
        .first(c)
        .optional()?;
    Ok(stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

/// Stores a team's keyword settings (already validated); returns the ones before.
///
/// # Errors
/// Database errors.
pub fn save_settings(
    c: &mut DbConn,
    team_id: &str,
    s: &KeywordSettings,
    actor_id: &str,
    now: i64,
) -> Result<KeywordSettings, AppError> {
    let before = settings(c, team_id)?;
    let json = serde_json::to_string(s).map_err(AppError::internal)?;
    let updated = diesel::update(consent_settings::table.find(team_id))
        .set((
            consent_settings::settings.eq(&json),
            consent_settings::updated_at.eq(now),
            consent_settings::updated_by.eq(actor_id),
        ))
        .execute(c)?;
    if updated == 0 {
        diesel::insert_into(consent_settings::table)
            .values((
                consent_settings::team_id.eq(team_id),
                consent_settings::settings.eq(&json),
                consent_settings::updated_at.eq(now),
                consent_settings::updated_by.eq(actor_id),
            ))
            .execute(c)?;
    }
    Ok(before)
}
