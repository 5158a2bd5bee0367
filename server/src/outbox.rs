//! The outbox worker: the durable outbound queue to WhatsApp providers.
//!
//! An agent's WhatsApp reply is stored together with its `outbox` row in one
//! transaction (the writer's), acknowledged to the agent, and only then sent by this
//! worker — so a reply is never lost, whatever happens to the hub after the ack.
//!
//! The outbox is one of the queues of the one durable scheduler
//! (`scheduler::Lane::Outbox`, `docs/scheduler.md`): the scheduler's runner wakes it
//! when nudged (a new row), at the next row's due time or every
//! `SWITCHBOARD_OUTBOX_POLL`, and calls [`pass`], which claims due rows with a lease
//! (`locked_until`, taken by a conditional UPDATE, so two nodes never send the same
//! row at the same time), sends them concurrently and records each outcome. Its rows
//! stay in their own table, written in the message writer's transaction, because
//! they are on the message path; the loop, the wake-ups and the shutdown are the
//! scheduler's.
//!
//! Each outcome:
//! - success: the message gets the provider's id and status `sent`;
//! - transient failure (network, timeout, 5xx, 429, retryable Meta codes): another
//!   attempt is scheduled in the database (`attempts`, `next_attempt_at`) after an
//!   exponential backoff with jitter, so the schedule survives a restart; after
//!   `SWITCHBOARD_OUTBOX_MAX_ATTEMPTS` the message is marked failed;
//! - permanent failure: the message is marked `failed` with the provider's reason.
//!
//! Status changes are pushed live to the conversation's agents (`status` frames).
//!
//! Delivery is at-least-once: if the process dies after the provider accepted a
//! message but before the outcome was committed, the lease runs out and the row is
//! sent again. The provider then holds two copies; nothing is ever silently dropped.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde_json::Value;
use tokio::sync::Notify;

use crate::actors::messages::PublishStatus;
use crate::channels::numbers::{Credentials, NumberId};
use crate::channels::{meta, templates, waha, Attachment, Provider, SendError, StatusError};
use crate::clock::now_ms;
use crate::config::WhatsAppConfig;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::outbox::{self as store, OutboxRow, SendContext, SendOutcome};
use crate::store::whatsapp::StatusChange;

/// Rows claimed per pass (sent concurrently).
const BATCH: i64 = 16;

/// The outbox's shared parts: the provider HTTP client, the pacer, the nudge.
pub struct Outbox {
    http: reqwest::Client,
    pacer: crate::broadcasts::pacer::Pacer,
    notify: Notify,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Builds the HTTP client used for provider calls (and media downloads):
    /// per-call timeout from the config, and no redirects, so a provider answer can
    /// never send the hub to a host it was not configured to talk to.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the TLS backend cannot be initialised.
    pub fn new(config: &WhatsAppConfig) -> Result<Arc<Self>, AppError> {
        let http = reqwest::Client::builder()
            .timeout(config.provider_timeout)
            .connect_timeout(config.provider_timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AppError::internal(format!("http client: {e}")))?;
        Ok(Arc::new(Self {
            http,
            pacer: crate::broadcasts::pacer::Pacer::default(),
            notify: Notify::new(),
        }))
    }

    /// The client for provider calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Tells this node's pacer that number `number_id`'s pace was just changed,
    /// so the next broadcast copy reads the new one (other nodes see it within
    /// [`PACE_TTL`](crate::broadcasts::pacer::PACE_TTL)).
    pub fn pace_changed(&self, number_id: &str) {
        self.pacer.invalidate(number_id);
    }

    /// Wakes the scheduler's outbox queue: a row was just queued.
    pub fn nudge(&self) {
        self.notify.notify_one();
    }

    /// Resolves at the next [`Outbox::nudge`] (or at once if one is pending).
    pub async fn nudged(&self) {
        self.notify.notified().await;
    }
}

/// When the earliest waiting row is due, epoch ms (system clock), if any.
///
/// # Errors
/// Database errors.
pub async fn next_due(state: &AppState) -> Result<Option<i64>, AppError> {
    state.db.run(store::next_due).await
}

/// One pass: claims due rows, loads what they send, sends them concurrently and
/// records every outcome in one transaction (`store::outbox`); returns how many
/// rows it claimed.
///
/// # Errors
/// Database errors while claiming or loading; the rows then wait for their lease
/// to run out and are tried again.
pub async fn pass(state: &AppState) -> Result<usize, AppError> {
    let lease = i64::try_from(state.config.whatsapp.outbox_lease.as_millis()).unwrap_or(i64::MAX);
    let rows = state
        .db
        .run(move |c| store::claim_due(c, lease, BATCH))
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let n = rows.len();
    let contexts = {
        let rows = rows.clone();
        state
            .db
            .run(move |c| store::send_contexts(c, &rows))
            .await?
    };
    let outcomes: Vec<(OutboxRow, SendOutcome)> =
        futures_util::future::join_all(rows.into_iter().zip(contexts).map(
            |(row, context)| async move {
                let outcome = outcome(state, &row, context).await;
                (row, outcome)
            },
        ))
        .await;
    match state.db.run(move |c| Ok(store::record(c, &outcomes))).await {
        Ok(recorded) => {
            // The lease runs out and the row is tried again: at-least-once.
            for (id, e) in &recorded.failed {
                tracing::warn!(error = %e, outbox = %id, "could not record the send outcome");
            }
            // `store::record` keeps per-row errors to itself, so `Db::run` cannot see
            // an outage among them: have the pool test its connections, as it would.
            if recorded
                .failed
                .iter()
                .any(|(_, e)| matches!(e, AppError::Unavailable(_)))
            {
                crate::db::suspect_connections();
            }
            // Each change goes to its own conversation's actor: no order among them.
            futures_util::future::join_all(
                recorded
                    .changes
                    .into_iter()
                    .map(|change| publish(state, change)),
            )
            .await;
        }
        Err(e) => tracing::warn!(error = %e, rows = n, "could not record the send outcomes"),
    }
    Ok(n)
}

/// Sends one row (when its context loaded) and says what to record.
async fn outcome(
    state: &AppState,
    row: &OutboxRow,
    context: Result<SendContext, AppError>,
) -> SendOutcome {
    let sent = match context {
        Ok(ctx) => send(state, row, &ctx).await,
        // Only a missing conversation or message, or a conversation that is not a
        // WhatsApp one, fails a single row: nothing will ever send it.
        Err(e) => Err(SendError::Permanent(StatusError {
            code: 0,
            title: match e {
                AppError::NotFound(m) => m,
                other => other.to_string(),
            },
        })),
    };
    let cfg = &state.config.whatsapp;
    match sent {
        Ok(provider_id) => {
            tracing::debug!(outbox = %row.id, kind = %row.kind, "sent");
            SendOutcome::Sent { provider_id }
        }
        Err(SendError::Transient(reason))
            if (row.attempts as u32) + 1 < cfg.outbox_max_attempts =>
        {
            let delay = backoff(cfg, row.attempts as u32 + 1);
            let at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
            tracing::info!(outbox = %row.id, attempt = row.attempts + 1, ?delay, %reason, "send failed; will retry");
            SendOutcome::Retry { at, error: reason }
        }
        Err(e) => {
            let error = match e {
                SendError::Permanent(e) => e,
                SendError::Transient(reason) => StatusError {
                    code: 0,
                    title: format!("gave up after {} attempts: {reason}", row.attempts + 1),
                },
            };
            tracing::warn!(outbox = %row.id, code = error.code, title = %error.title, "send failed permanently");
            SendOutcome::Failed { error }
        }
    }
}

/// Pushes a committed status change through the conversation's actor.
pub async fn publish(state: &AppState, change: StatusChange) {
    let id = change.conversation_id.clone();
    if let Err(e) = state.hub.ask(state, &id, PublishStatus { change }).await {
        tracing::warn!(conversation = %id, error = %e, "could not publish a status change");
    }
}

/// Delay before attempt `attempt + 1`: exponential from `outbox_backoff_base`,
/// doubling, capped at `outbox_backoff_max`, with random jitter (backon's
/// exponential builder) so retries of many rows do not arrive together.
pub fn backoff(cfg: &WhatsAppConfig, attempt: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(cfg.outbox_backoff_base)
        .with_max_delay(cfg.outbox_backoff_max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(cfg.outbox_backoff_max)
        .min(cfg.outbox_backoff_max)
}

fn missing(what: &str) -> SendError {
    SendError::Permanent(StatusError {
        code: 0,
        title: format!("WhatsApp is not configured on this hub ({what} is unset)"),
    })
}

/// The credentials of the number the row's conversation came in on (replies go
/// out from it; read with the row's [`SendContext`]), from this node's cache of
/// numbers, no secret opened. A deactivated or deleted number fails the message; a
/// database error is retried.
async fn credentials(state: &AppState, number_id: &NumberId) -> Result<Credentials, SendError> {
    let classify = |e: AppError| match e {
        AppError::NotFound(m) | AppError::Conflict(m) => {
            SendError::Permanent(StatusError { code: 0, title: m })
        }
        other => SendError::Transient(format!("credentials: {other}")),
    };
    let snapshot = state.numbers.snapshot(state).await.map_err(classify)?;
    let number = snapshot.get(&number_id.0).ok_or_else(|| {
        classify(AppError::NotFound(format!(
            "no WhatsApp number {}",
            number_id.0
        )))
    })?;
    if !number.row.active {
        return Err(classify(AppError::Conflict(format!(
            "the WhatsApp number {:?} is deactivated",
            number.row.label
        ))));
    }
    Ok(number.credentials.clone())
}

/// Waits on the number's pace before a broadcast copy's call. The pace comes
/// from the pacer's cache (read from the database at most every
/// [`PACE_TTL`](crate::broadcasts::pacer::PACE_TTL), or after a change on this
/// node), not from a database read per copy.
async fn pace(state: &AppState, creds: &Credentials, provider: Provider) -> Result<(), SendError> {
    let pacer = &state.outbox.pacer;
    let number = creds.number_id().0.clone();
    let pace = match pacer.cached(&number, std::time::Instant::now()) {
        Some(pace) => pace,
        None => {
            let epoch = pacer.epoch();
            let key = number.clone();
            let pace = state
                .db
                .run(move |c| crate::store::broadcasts::pace_of(c, &key, provider))
                .await
                .map_err(|e| SendError::Transient(format!("pace: {e}")))?;
            pacer.remember(&number, pace, epoch, std::time::Instant::now());
            pace
        }
    };
    pacer.wait(&number, pace).await;
    Ok(())
}

/// Sends one row to its provider.
async fn send(
    state: &AppState,
    row: &OutboxRow,
    ctx: &SendContext,
) -> Result<Option<String>, SendError> {
    let provider = Provider::parse(&row.provider).ok_or_else(|| {
        SendError::Permanent(StatusError {
            code: 0,
            title: format!("unknown provider {}", row.provider),
        })
    })?;
    let wa_id = ctx.wa_id.as_deref().ok_or_else(|| {
        SendError::Permanent(StatusError {
            code: 0,
            title: "the contact has no WhatsApp id".into(),
        })
    })?;
    let attachment: Option<Attachment> = ctx
        .attachment
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok());
    let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
    let read_ids: Vec<String> = payload
        .get("message_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let creds = credentials(state, &ctx.number).await?;
    if ctx.paced {
        pace(state, &creds, provider).await?;
    }
    match (provider, creds) {
        (Provider::Meta, Credentials::Meta(cfg)) => {
            let token = cfg
                .access_token
                .as_ref()
                .ok_or_else(|| missing("the number's access token (WHATSAPP_ACCESS_TOKEN)"))?;
            let number = cfg.phone_number_id.as_deref().ok_or_else(|| {
                missing("the number's phone number id (WHATSAPP_PHONE_NUMBER_ID)")
            })?;
            let body = match (row.kind.as_str(), &attachment) {
                ("media", Some(a)) => meta::media_request(wa_id, a),
                ("read", _) => match read_ids.first() {
                    Some(id) => meta::read_request(id, false),
                    None => return Ok(None),
                },
                ("template", _) => templates::send::request(wa_id, &template_order(payload)?),
                _ => meta::text_request(wa_id, ctx.body.as_deref().unwrap_or_default()),
            };
            let url = format!("{}/{number}/messages", cfg.graph_url);
            let resp = state
                .outbox
                .http
                .post(url)
                .bearer_auth(token.expose())
                .json(&body)
                .send()
                .await
                .map_err(|e| SendError::Transient(format!("network: {}", without_url(&e))))?;
            let status = resp.status().as_u16();
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            meta::read_response(status, &answer)
        }
        (Provider::Waha, Credentials::Waha(cfg)) => {
            let base = cfg
                .base_url
                .as_deref()
                .ok_or_else(|| missing("the number's WAHA address (WAHA_URL)"))?;
            let chat = waha::chat_id(wa_id);
            let session = &cfg.session;
            let (path, body) = match (row.kind.as_str(), &attachment) {
                ("media", Some(a)) => waha::media_request(session, &chat, a),
                ("read", _) => (
                    "/api/sendSeen",
                    waha::seen_request(session, &chat, &read_ids),
                ),
                _ => (
                    "/api/sendText",
                    waha::text_request(session, &chat, ctx.body.as_deref().unwrap_or_default()),
                ),
            };
            let mut req = state.outbox.http.post(format!("{base}{path}")).json(&body);
            if let Some(key) = &cfg.api_key {
                req = req.header("X-Api-Key", key.expose());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| SendError::Transient(format!("network: {}", without_url(&e))))?;
            let status = resp.status().as_u16();
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            waha::read_response(status, &answer)
        }
        (provider, _) => Err(SendError::Permanent(StatusError {
            code: 0,
            title: format!(
                "the conversation's number is not a {} number",
                provider.as_str()
            ),
        })),
    }
}

/// The template a `template` row sends (its payload, checked when it was queued).
fn template_order(payload: Value) -> Result<templates::send::Order, SendError> {
    serde_json::from_value(payload).map_err(|e| {
        SendError::Permanent(StatusError {
            code: 0,
            title: format!("unreadable template order: {e}"),
        })
    })
}

/// A reqwest error without its URL (URLs are not secret here, but error strings end
/// up in `last_error` and in front of agents; keep them short).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let cfg = WhatsAppConfig {
            outbox_backoff_base: Duration::from_millis(100),
            outbox_backoff_max: Duration::from_secs(10),
            ..WhatsAppConfig::default()
        };
        let first = backoff(&cfg, 1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        assert!(backoff(&cfg, 4) >= Duration::from_millis(800));
        assert!(backoff(&cfg, 40) <= Duration::from_secs(10));
        let samples: std::collections::HashSet<_> = (0..20).map(|_| backoff(&cfg, 3)).collect();
        assert!(samples.len() > 1, "jitter makes delays differ");
    }
}
