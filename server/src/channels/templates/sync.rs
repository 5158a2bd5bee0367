//! Template sync: for each distinct WhatsApp Business Account of the active Meta
//! numbers, `GET {graph}/{waba-id}/message_templates` page by page (following
//! `paging.cursors.after` while Meta gives a `paging.next`), stored by
//! `store/templates.rs`. Runs once at start-up, on demand
//! (`POST /api/templates/sync`) and after a `message_template_status_update`
//! webhook for that WABA.
//!
//! The next page is requested from the configured Graph URL with the cursor, never
//! from the `paging.next` address itself: an answer cannot send the hub (and its
//! access token) to another host.

use serde::Serialize;
use serde_json::Value;

use super::parse_page;
use crate::channels::numbers::MetaCredentials;
use crate::config::Secret;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{numbers, templates as store};

/// Fields asked of Meta for each template.
const FIELDS: &str = "name,language,category,status,components,id";
/// Templates per page asked of Meta.
const PAGE_SIZE: u32 = 100;
/// Pages read at most per sync (a WABA holds at most a few thousand templates).
const MAX_PAGES: usize = 100;

/// One WABA to sync and how to reach it.
#[derive(Clone, Debug)]
pub struct Waba {
    /// WhatsApp Business Account id.
    pub waba_id: String,
    /// Graph API base URL.
    pub graph_url: String,
    /// Access token of one of its numbers.
    pub token: Secret,
    /// Labels of the hub numbers on it (`whatsapp_numbers.id`).
    pub numbers: Vec<String>,
}

/// The WABA of a Meta number: its own, or `WHATSAPP_WABA_ID` for the env number.
pub fn waba_of(m: &MetaCredentials, env_waba: Option<&str>) -> Option<String> {
    m.waba_id
        .clone()
        .or_else(|| m.number_id.is_env().then(|| env_waba.map(str::to_string))?)
}

/// Distinct WABAs of the active Meta numbers that have an access token.
///
/// # Errors
/// Database errors.
pub async fn wabas(state: &AppState) -> Result<Vec<Waba>, AppError> {
    let st = state.clone();
    let metas = state
        .db
        .run(move |c| numbers::meta_numbers(c, &st.secrets, &st.config.whatsapp))
        .await?;
    let env_waba = state.config.whatsapp.waba_id.as_deref();
    let mut out: Vec<Waba> = Vec::new();
    for m in metas {
        let (Some(waba_id), Some(token)) = (waba_of(&m, env_waba), m.access_token.clone()) else {
            continue;
        };
        match out.iter_mut().find(|w| w.waba_id == waba_id) {
            Some(w) => w.numbers.push(m.number_id.0.clone()),
            None => out.push(Waba {
                waba_id,
                graph_url: m.graph_url.clone(),
                token,
                numbers: vec![m.number_id.0.clone()],
            }),
        }
    }
    Ok(out)
}

/// The outcome of syncing one WABA.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// WABA.
    pub waba_id: String,
    /// Templates Meta listed (on success).
    pub count: Option<usize>,
    /// Why it failed.
    pub error: Option<String>,
}

async fn fetch_all(state: &AppState, w: &Waba) -> Result<Vec<super::MetaTemplate>, String> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![
            ("fields", FIELDS.to_string()),
            ("limit", PAGE_SIZE.to_string()),
        ];
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let resp = state
            .outbox
            .http()
            .get(format!("{}/{}/message_templates", w.graph_url, w.waba_id))
            .bearer_auth(w.token.expose())
            .query(&query)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timeout".to_string()
                } else {
                    "cannot reach the Graph API".to_string()
                }
            })?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let why = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            return Err(format!("Graph API answered {status}: {why}"));
        }
        let (page, next) = parse_page(&body);
        all.extend(page);
        match next {
            Some(n) if Some(&n) != after.as_ref() => after = Some(n),
            _ => return Ok(all),
        }
    }
    Err(format!("more than {MAX_PAGES} pages of templates"))
}

/// Syncs one WABA and records the outcome (a failure keeps the stored templates).
pub async fn sync_waba(state: &AppState, w: &Waba) -> Outcome {
    let fetched = fetch_all(state, w).await;
    let id = w.waba_id.clone();
    let stored = match fetched {
        Ok(list) => {
            state
                .db
                .run(move |c| store::store_sync(c, &id, &list))
                .await
        }
        Err(why) => {
            let reason = why.clone();
            if let Err(e) = state
                .db
                .run(move |c| store::sync_failed(c, &id, &reason))
                .await
            {
                tracing::warn!(error = %e, "could not record a failed template sync");
            }
            Err(AppError::Unavailable(why))
        }
    };
    match stored {
        Ok(n) => {
            tracing::info!(waba = %w.waba_id, templates = n, "templates synced");
            Outcome {
                waba_id: w.waba_id.clone(),
                count: Some(n),
                error: None,
            }
        }
        Err(e) => {
            tracing::warn!(waba = %w.waba_id, error = %e, "template sync failed");
            Outcome {
                waba_id: w.waba_id.clone(),
                count: None,
                error: Some(e.to_string()),
            }
        }
    }
}

/// Syncs every WABA (one after the other: there are few).
///
/// # Errors
/// Database errors while listing the numbers.
pub async fn sync_all(state: &AppState) -> Result<Vec<Outcome>, AppError> {
    let mut out = Vec::new();
    for w in wabas(state).await? {
        out.push(sync_waba(state, &w).await);
    }
    Ok(out)
}

/// Syncs one WABA by id, if a number of the hub is on it.
///
/// # Errors
/// Database errors while listing the numbers.
pub async fn sync_one(state: &AppState, waba_id: &str) -> Result<Option<Outcome>, AppError> {
    let Some(w) = wabas(state)
        .await?
        .into_iter()
        .find(|w| w.waba_id == waba_id)
    else {
        return Ok(None);
    };
    Ok(Some(sync_waba(state, &w).await))
}

/// How often every WABA's templates are synced again by the scheduler's
/// recurring job ([`crate::scheduler::JobKind::TemplateSync`]); Meta's
/// `message_template_status_update` webhook brings changes in between.
pub const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The scheduler's handler for [`crate::scheduler::JobKind::TemplateSync`]: syncs
/// every WABA. A database error (the pool busy at start) is retried with the
/// scheduler's backoff rather than lost; a WABA Meta refuses is recorded as a
/// failed sync and waits for the next run or an agent's "Sync now".
pub async fn run_job(state: &AppState) -> crate::scheduler::Outcome {
    match sync_all(state).await {
        Ok(_) => crate::scheduler::Outcome::Done,
        Err(e) => crate::scheduler::Outcome::Retry {
            error: e.to_string(),
        },
    }
}
