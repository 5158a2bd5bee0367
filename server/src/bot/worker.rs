//! The bot on live conversations: when routing starts ([`gate_routing`]), when a
//! customer's message has been committed and booked into its lead
//! ([`on_customer_message`]), one job per conversation that waits out a burst,
//! decides ([`super::engine`]), posts, records and hands over.
//!
//! Guarantees, and how:
//! - One reply per burst: messages that arrive while a job waits or while the model
//!   thinks join the same job; an answer decided before the latest message is
//!   thrown away and the whole burst is answered again (at most three times, so a
//!   customer who never stops typing still gets an answer). Across nodes the
//!   conditional update in [`status::claim`] lets one job answer a given message.
//! - Never over a human: the job checks the conversation has no assignee and the
//!   bot is active before deciding, and the conversation actor checks again, in
//!   order with assignments, before appending the reply (`PostAutoReply::bot_guard`).
//! - Never silent: a model that fails or takes longer than the budget gives the
//!   fallback message and a handover; a database error is logged and the
//!   conversation is routed to humans.

use std::collections::HashMap;

use diesel::prelude::*;
use parking_lot::Mutex;
use serde_json::json;

use super::engine::{self, Decision, Input};
use super::llm::{ChatMessage, ChatRequest, Role};
use super::settings::{BotSettings, Handoff};
use super::status::{self, NewReply, StatusRow};
use crate::actors::messages::PostAutoReply;
use crate::clock::now_ms;
use crate::db::schema::{campaign_codes, contacts, conversations, messages, teams};
use crate::error::AppError;
use crate::model::SenderKind;
use crate::routing::actor::RouteConversation;
use crate::state::AppState;
use crate::store::leads::{self as leads_store, Actor, CampaignCodeRow};

/// How many times a job throws away an answer overtaken by newer messages before it
/// answers anyway.
const MAX_SUPERSEDED: u32 = 3;

/// A customer message's job bookkeeping: the newest seq seen and whether a job runs.
#[derive(Debug, Default)]
pub struct Jobs {
    map: Mutex<HashMap<String, i64>>,
}

impl Jobs {
    /// Records `seq`; true when no job runs for the conversation yet (the caller
    /// starts one).
    fn offer(&self, conversation_id: &str, seq: i64) -> bool {
        let mut map = self.map.lock();
        match map.get_mut(conversation_id) {
            Some(latest) => {
                *latest = (*latest).max(seq);
                false
            }
            None => {
                map.insert(conversation_id.to_string(), seq);
                true
            }
        }
    }

    fn latest(&self, conversation_id: &str) -> i64 {
        self.map.lock().get(conversation_id).copied().unwrap_or(0)
    }

    /// Ends the job if nothing newer than `done` arrived; else false (go on).
    fn finish(&self, conversation_id: &str, done: i64) -> bool {
        let mut map = self.map.lock();
        match map.get(conversation_id) {
            Some(latest) if *latest > done => false,
            _ => {
                map.remove(conversation_id);
                true
            }
        }
    }

    /// Whether a job is pending or running for the conversation on this node.
    pub fn pending(&self, conversation_id: &str) -> bool {
        self.map.lock().contains_key(conversation_id)
    }
}

/// Called instead of routing directly when a customer's message arrives in a
/// conversation nobody has (or that it reopened): routes it now unless the team's
/// bot answers first and still owns the conversation.
pub fn gate_routing(state: &AppState, team_id: &str, channel: &str, msg: RouteConversation) {
    let Some((s, stale)) = state.bot.settings.peek(team_id) else {
        // A team this node has not seen since it started (created since, on any
        // node): it cannot have had a bot for long, so route as without one, and
        // learn its settings for the next message.
        refresh(state, team_id);
        state.hub.route(msg);
        return;
    };
    if stale {
        refresh(state, team_id);
    }
    if !(s.answers_on(channel) && s.handoff == Handoff::BotFirst) {
        // The common case, a team without a bot: routed in order, at once.
        state.hub.route(msg);
        return;
    }
    // The bot answers first: route only if this conversation is no longer its own.
    let state = state.clone();
    actix_rt::spawn(async move {
        let conv = msg.conversation_id.clone();
        // Unsure (database trouble): humans rather than nobody.
        let owned = matches!(
            state.db.run(move |c| status::get(c, &conv)).await,
            Ok(row) if row.status == status::ACTIVE
        );
        if !owned {
            state.hub.route(msg);
        }
    });
}

/// Re-reads a team's settings in the background.
fn refresh(state: &AppState, team_id: &str) {
    let state = state.clone();
    let team = team_id.to_string();
    actix_rt::spawn(async move {
        if let Err(e) = state.bot.settings.get(&state.db, &team).await {
            tracing::debug!(team = %team, error = %e, "bot settings refresh failed");
        }
    });
}

/// Called after a customer's message is committed and its lead bookkeeping done.
pub fn on_customer_message(state: &AppState, conversation_id: &str, team_id: &str, seq: i64) {
    if let Some((s, stale)) = state.bot.settings.peek(team_id) {
        if stale {
            refresh(state, team_id);
        }
        if !s.enabled {
            return;
        }
    }
    if !state.bot.jobs.offer(conversation_id, seq) {
        return;
    }
    let state = state.clone();
    let conv = conversation_id.to_string();
    let team = team_id.to_string();
    actix_rt::spawn(async move { run_job(state, conv, team).await });
}

/// What [`answer`] did.
enum Outcome {
    /// Answered, handed over, or decided not to answer.
    Done,
    /// Newer messages arrived while deciding; the decision was thrown away.
    Superseded,
}

async fn run_job(state: AppState, conv: String, team: String) {
    let mut superseded = 0;
    loop {
        let settings = match state.bot.settings.get(&state.db, &team).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(conversation = %conv, error = %e, "bot settings unavailable");
                state.bot.jobs.finish(&conv, i64::MAX);
                return;
            }
        };
        if !settings.enabled {
            state.bot.jobs.finish(&conv, i64::MAX);
            return;
        }
        wait_for_quiet(&state, &conv, settings.burst_window_ms).await;
        let target = state.bot.jobs.latest(&conv);
        let force = superseded >= MAX_SUPERSEDED;
        match answer(&state, &conv, &settings, target, force).await {
            Ok(Outcome::Superseded) => {
                superseded += 1;
                continue;
            }
            Ok(Outcome::Done) => {}
            Err(e) => {
                tracing::warn!(conversation = %conv, error = %e, "bot could not answer; routing to humans");
                state.hub.route(RouteConversation {
                    conversation_id: conv.clone(),
                    reopened: false,
                });
            }
        }
        if state.bot.jobs.finish(&conv, target) {
            return;
        }
    }
}

/// Waits until no new message arrived for `window_ms` (at most four windows in all),
/// so a burst of rapid messages is answered once.
async fn wait_for_quiet(state: &AppState, conv: &str, window_ms: u64) {
    if window_ms == 0 {
        return;
    }
    let window = std::time::Duration::from_millis(window_ms);
    let mut seen = state.bot.jobs.latest(conv);
    for _ in 0..4 {
        tokio::time::sleep(window).await;
        let now = state.bot.jobs.latest(conv);
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// The seq of the conversation's newest customer message (0 without one).
fn newest_customer_seq(c: &mut crate::db::DbConn, conv: &str) -> Result<i64, AppError> {
    let seq: Option<i64> = messages::table
        .filter(messages::conversation_id.eq(conv))
        .filter(messages::sender_kind.eq(SenderKind::Guest.as_str()))
        .select(diesel::dsl::max(messages::seq))
        .first(c)?;
    Ok(seq.unwrap_or(0))
}

/// Everything [`answer`] reads from the database in one go.
struct Loaded {
    channel: String,
    assignee_id: Option<String>,
    status: StatusRow,
    input: Input,
    /// The last customer message of the turn.
    turn_end: i64,
    /// Something (the lead's package reply, an agent) already answered the turn.
    answered: bool,
    lead_id: Option<String>,
}

fn load(
    c: &mut crate::db::DbConn,
    conv: &str,
    target: i64,
    history_len: usize,
) -> Result<Loaded, AppError> {
    let (team_id, channel, assignee_id, contact_id): (String, String, Option<String>, String) =
        conversations::table
            .find(conv)
            .select((
                conversations::team_id,
                conversations::channel,
                conversations::assignee_id,
                conversations::contact_id,
            ))
            .first(c)?;
    let contact_name: Option<String> = contacts::table
        .find(&contact_id)
        .select(contacts::name)
        .first(c)
        .optional()?
        .flatten();
    let team_name: Option<String> = teams::table
        .find(&team_id)
        .select(teams::name)
        .first(c)
        .optional()?;
    let status = status::get(c, conv)?;
    let rows: Vec<(i64, String, String)> = messages::table
        .filter(messages::conversation_id.eq(conv))
        .filter(messages::seq.le(target))
        .order(messages::seq.desc())
        .limit(i64::try_from(history_len.max(1) + 20).unwrap_or(64))
        .select((messages::seq, messages::sender_kind, messages::body))
        .load(c)?;
    let rows: Vec<(i64, SenderKind, String)> = rows
        .into_iter()
        .rev()
        .map(|(seq, kind, body)| (seq, SenderKind::parse_lossy(&kind), body))
        .collect();
    let turn: Vec<&(i64, SenderKind, String)> = rows
        .iter()
        .filter(|(seq, kind, _)| *seq > status.handled_seq && *kind == SenderKind::Guest)
        .collect();
    let turn_end = turn.last().map_or(0, |(s, _, _)| *s);
    // A business message after the turn's last customer message already answered it.
    let answered = rows
        .iter()
        .any(|(seq, kind, _)| *seq > turn_end && *kind != SenderKind::Guest);
    let history: Vec<(bool, String)> = rows
        .iter()
        .filter(|(_, kind, body)| *kind != SenderKind::System && !body.is_empty())
        .map(|(_, kind, body)| (*kind == SenderKind::Guest, body.clone()))
        .collect();
    let history = history[history.len().saturating_sub(history_len.max(1))..].to_vec();
    let lead = leads_store::lead_of_conversation(c, conv).ok();
    let config = leads_store::config(c, &team_id)?;
    let package: Option<CampaignCodeRow> = match lead.as_ref().and_then(|l| l.campaign_code.clone())
    {
        Some(code) => campaign_codes::table
            .find(code)
            .select(CampaignCodeRow::as_select())
            .first(c)
            .optional()?,
        None => None,
    };
    Ok(Loaded {
        input: Input {
            team_id,
            channel: channel.clone(),
            contact_name,
            lead_stage: lead.as_ref().map(|l| l.stage.clone()),
            package,
            team_name,
            history,
            turn: turn.iter().map(|(_, _, b)| b.clone()).collect(),
            not_understood: status.not_understood,
            now_ms: now_ms(),
            ..Input::default()
        }
        .with_lead_config(&config),
        channel,
        assignee_id,
        status,
        turn_end,
        answered,
        lead_id: lead.map(|l| l.id),
    })
}

/// The engine's input for a conversation as it stands (its latest messages as the
/// history; the turn is the customer's messages the bot has not dealt with).
///
/// # Errors
/// [`AppError::NotFound`] for an unknown conversation; database errors.
pub async fn context(state: &AppState, conv: &str, history_len: usize) -> Result<Input, AppError> {
    let c2 = conv.to_string();
    let loaded = state
        .db
        .run(move |c| load(c, &c2, i64::MAX, history_len))
        .await?;
    Ok(loaded.input)
}

async fn answer(
    state: &AppState,
    conv: &str,
    settings: &BotSettings,
    target: i64,
    force: bool,
) -> Result<Outcome, AppError> {
    let c2 = conv.to_string();
    let history_len = settings.history_messages;
    let loaded = state
        .db
        .run(move |c| load(c, &c2, target, history_len))
        .await?;
    let skip = !settings.answers_on(&loaded.channel)
        || loaded.status.status != status::ACTIVE
        || loaded.assignee_id.is_some()
        || loaded.input.turn.is_empty()
        || loaded.answered;
    if skip {
        let c2 = conv.to_string();
        state
            .db
            .run(move |c| status::mark_seen(c, &c2, target))
            .await?;
        return Ok(Outcome::Done);
    }
    let decision = engine::decide(&state.bot, &state.db, settings, &loaded.input).await?;
    if !force {
        // Newer customer messages, whether already handed to this job or only
        // committed (their lead bookkeeping still running), make this answer stale:
        // the burst is answered once, as a whole.
        let c2 = conv.to_string();
        let newest = state.db.run(move |c| newest_customer_seq(c, &c2)).await?;
        state.bot.jobs.offer(conv, newest);
        if state.bot.jobs.latest(conv) > target.max(loaded.turn_end) {
            return Ok(Outcome::Superseded);
        }
    }
    let c2 = conv.to_string();
    let turn_end = loaded.turn_end;
    if !state
        .db
        .run(move |c| status::claim(c, &c2, turn_end))
        .await?
    {
        return Ok(Outcome::Done);
    }
    let message_id = post(state, conv, &decision).await;
    if message_id.is_none() && decision.reply.is_some() {
        // A human took the conversation while the bot was deciding: stand back.
        return Ok(Outcome::Done);
    }
    record(
        state,
        conv,
        &loaded,
        &decision,
        message_id.clone(),
        turn_end,
    )
    .await;
    if let Some(reason) = &decision.handover {
        hand_over(
            state,
            conv,
            &loaded.input,
            loaded.lead_id.clone(),
            reason,
            decision.source,
        )
        .await;
    }
    Ok(Outcome::Done)
}

/// Posts the decision's reply through the conversation actor, which refuses it if a
/// human has the conversation by then. Returns the message id when posted.
async fn post(state: &AppState, conv: &str, d: &Decision) -> Option<String> {
    let body = d.reply.clone()?;
    let msg = PostAutoReply {
        body,
        image_url: d.media.first().map(|m| m.url.clone()),
        bot_guard: true,
    };
    match state.hub.ask(state, conv, msg).await {
        Ok(Ok(posted)) => Some(posted.message.id),
        Ok(Err(e)) | Err(e) => {
            tracing::info!(conversation = %conv, error = %e, "bot reply not posted");
            None
        }
    }
}

/// Writes the audit row, the not-understood count and the lead's timeline entry.
async fn record(
    state: &AppState,
    conv: &str,
    loaded: &Loaded,
    d: &Decision,
    message_id: Option<String>,
    seq: i64,
) {
    let row = NewReply {
        conversation_id: conv.to_string(),
        team_id: loaded.input.team_id.clone(),
        message_id,
        trigger_seq: seq,
        source: d.source.into(),
        rule_id: d.rule_id.clone(),
        prompt_version: d.prompt_version.clone(),
        model: d.model.clone(),
        sources: d.sources_json(),
        confidence: d.confidence,
        escalated: d.handover.is_some(),
        reason: d.handover.clone(),
        latency_ms: d.latency_ms,
    };
    let understood = d.understood;
    let lead_id = loaded.lead_id.clone();
    let detail = json!({
        "source": d.source,
        "message_id": row.message_id,
        "prompt_version": d.prompt_version,
        "sources": d.sources,
        "confidence": d.confidence,
        "rule_id": d.rule_id,
        "handover": d.handover,
    });
    let c2 = conv.to_string();
    let (team, phase) = (loaded.input.team_id.clone(), d.new_phase.clone());
    let done = state
        .db
        .run(move |c| {
            status::record(c, &row)?;
            if let Some(again) = understood {
                status::not_understood(c, &c2, !again)?;
            }
            // Read back in the same checkout: the inbox is told once it is readable.
            let now_state = status::get(c, &c2)?;
            let Some(l) = lead_id else {
                return Ok((now_state, None));
            };
            let bot = Actor {
                kind: "bot",
                id: None,
            };
            let mut entries = vec![leads_store::event(
                c,
                &l,
                Some(&c2),
                "bot_reply",
                bot,
                detail,
                now_ms(),
            )?];
            // The stage the model says the conversation reached: forward only, like
            // the intent rules' automatic moves.
            let mut view = None;
            if let Some(to) = phase {
                let cfg = leads_store::config(c, &team)?;
                view = crate::db::write_transaction(c, |c| {
                    let mut lead = leads_store::row(c, &l)?;
                    let now = now_ms();
                    if leads_store::move_stage(
                        c,
                        &cfg,
                        &mut lead,
                        &to,
                        bot,
                        false,
                        Some(&c2),
                        now,
                        &mut entries,
                    )? {
                        lead.updated_at = now;
                        leads_store::save(c, &lead)?;
                        return Ok::<_, AppError>(Some(leads_store::view(c, lead)?));
                    }
                    Ok(None)
                })?;
            }
            Ok((now_state, Some((view, entries))))
        })
        .await;
    match done {
        Ok((now_state, lead_changes)) => {
            if let Some((view, entries)) = lead_changes {
                crate::leads::publish_changes(
                    state,
                    conv,
                    &loaded.input.team_id,
                    None,
                    view.as_ref(),
                    &entries,
                );
            }
            publish_state(state, conv, &loaded.input.team_id, &now_state);
        }
        Err(e) => tracing::warn!(conversation = %conv, error = %e, "bot decision not recorded"),
    }
}

/// Hands a conversation to humans: marks it, routes it, writes the agent's summary
/// into the lead (pending handover, timeline) and alerts the team leads.
pub async fn hand_over(
    state: &AppState,
    conv: &str,
    input: &Input,
    lead_id: Option<String>,
    reason: &str,
    source: &str,
) {
    let (c2, r2) = (conv.to_string(), reason.to_string());
    match state.db.run(move |c| status::hand_over(c, &c2, &r2)).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => tracing::warn!(conversation = %conv, error = %e, "bot handover not stored"),
    }
    state.hub.route(RouteConversation {
        conversation_id: conv.to_string(),
        reopened: false,
    });
    let summary = summarize(state, input, reason).await;
    let (c2, s2, r2) = (conv.to_string(), summary.clone(), reason.to_string());
    let detail = json!({"reason": reason, "summary": summary, "source": source});
    let done = state
        .db
        .run(move |c| {
            status::set_summary(c, &c2, &s2)?;
            let Some(l) = lead_id else { return Ok(None) };
            crate::db::write_transaction(c, |c| {
                let mut lead = leads_store::row(c, &l)?;
                let now = now_ms();
                if lead.handover_pending == 0 {
                    lead.handover_pending = 1;
                    lead.handover_reason = Some(r2.clone());
                }
                lead.escalated = 1;
                lead.updated_at = now;
                leads_store::save(c, &lead)?;
                let e = leads_store::event(
                    c,
                    &l,
                    Some(&c2),
                    "bot_handover",
                    Actor {
                        kind: "bot",
                        id: None,
                    },
                    detail.clone(),
                    now,
                )?;
                Ok(Some((leads_store::view(c, lead)?, e)))
            })
        })
        .await;
    match done {
        Ok(Some((view, entry))) => {
            crate::leads::publish_changes(state, conv, &input.team_id, None, Some(&view), &[entry]);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(conversation = %conv, error = %e, "bot handover not written to the lead")
        }
    }
    let c2 = conv.to_string();
    if let Ok(row) = state.db.run(move |c| status::get(c, &c2)).await {
        publish_state(state, conv, &input.team_id, &row);
    }
    crate::leads::publish_handover(
        state,
        &input.team_id,
        json!({
            "conversation_id": conv,
            "team_id": input.team_id,
            "reason": reason,
            "summary": summary,
            "by": "bot",
            "last_message": input.turn.last().map(|t| crate::model::preview(t)),
        }),
    );
}

/// A few lines for the agent who takes over: the model's summary when it answers
/// within the budget, else the customer's latest messages.
pub async fn summarize(state: &AppState, input: &Input, reason: &str) -> String {
    let transcript: String = input
        .history
        .iter()
        .map(|(customer, text)| {
            format!(
                "{}: {}\n",
                if *customer { "Customer" } else { "Business" },
                text
            )
        })
        .collect();
    if let Some(llm) = &state.bot.llm {
        let request = ChatRequest {
            messages: vec![
                ChatMessage {
                    role: Role::System,
                    content: "Summarize this customer conversation for the agent taking it over, in at most three short lines: who the customer is, what they want, what they were already told. Plain text.".into(),
                },
                ChatMessage {
                    role: Role::User,
                    content: format!("Handed over because: {reason}\n\n{transcript}"),
                },
            ],
            temperature: 0.2,
            max_tokens: 200,
            json: false,
        };
        match llm.chat(&request).await {
            Ok(a) => return a.content.trim().to_string(),
            Err(e) => {
                tracing::info!(error = %e, "summary from the model unavailable; using the transcript")
            }
        }
    }
    let asked: Vec<String> = input
        .history
        .iter()
        .filter(|(customer, _)| *customer)
        .rev()
        .take(3)
        .map(|(_, t)| crate::model::preview(t))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut s = format!(
        "{} ({}){}. Handed over: {reason}.",
        input.contact_name.as_deref().unwrap_or("Customer"),
        input.channel,
        input
            .lead_stage
            .as_deref()
            .map(|st| format!(", lead stage {st}"))
            .unwrap_or_default()
    );
    if !asked.is_empty() {
        s.push_str(" Latest messages: ");
        s.push_str(&asked.join(" / "));
    }
    s
}

/// Pushes a `bot` frame with the conversation's bot state to its agents.
pub fn publish_state(state: &AppState, conv: &str, team_id: &str, row: &StatusRow) {
    let frame = crate::protocol::ServerFrame::Bot(json!({
        "conversation_id": conv,
        "status": row.status,
        "reason": row.reason,
        "summary": row.summary,
    }));
    state.hub.publish(crate::bus::BusEvent::Conversation {
        conversation_id: conv.into(),
        team_id: team_id.to_string(),
        assignee_id: None,
        seq: None,
        frame: frame.encode(),
        audience: crate::bus::Audience::Agents,
        exclude_session: None,
    });
}
