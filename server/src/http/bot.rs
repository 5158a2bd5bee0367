//! Bot API (`docs/api.md`, "Bot"): team bot settings and rules, versioned prompts,
//! a conversation's bot state (pause/resume), reply suggestions for agents, and
//! seed 001's `POST /api/ai/process-message`.

use super::endpoints::{endpoint, Endpoint};
use crate::access::{Permission as P, Rule};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{require_team, team_for};
use crate::auth::AuthAgent;
use crate::bot::engine::{self, Input};
use crate::bot::prompt::{self, PromptForm};
use crate::bot::rules::{self, RuleForm, RuleView};
use crate::bot::settings::{self, BotSettings};
use crate::bot::{status, worker};
use crate::clock::now_ms;
use crate::error::AppError;
use crate::routing::actor::RouteConversation;
use crate::state::AppState;
use crate::store::accounts::AgentInfo;
use crate::store::audit::{self, AuditAction, AuditActor, AuditEntry};
use crate::store::conversations::ConversationMeta;

/// This area's `/api` routes and who may call them (`http::endpoints`).
pub(super) const ENDPOINTS: &[Endpoint] = &[
    endpoint!(GET "/teams/{id}/bot", Rule::Agent(P::SettingsTeam), get_settings),
    endpoint!(PUT "/teams/{id}/bot", Rule::Agent(P::SettingsTeam), put_settings),
    endpoint!(GET "/teams/{id}/bot/rules", Rule::Agent(P::SettingsTeam), list_rules),
    endpoint!(POST "/teams/{id}/bot/rules", Rule::Agent(P::SettingsTeam), create_rule),
    endpoint!(PUT "/bot/rules/{id}", Rule::Agent(P::SettingsTeam), update_rule),
    endpoint!(DELETE "/bot/rules/{id}", Rule::Agent(P::SettingsTeam), delete_rule),
    endpoint!(GET "/ai/prompts", Rule::Agent(P::SettingsTeam), get_prompts),
    endpoint!(PUT "/ai/prompts", Rule::Agent(P::SettingsTeam), put_prompt),
    endpoint!(POST "/ai/process-message", Rule::Agent(P::ConversationsReply), process_message),
    endpoint!(GET "/conversations/{id}/bot", Rule::Agent(P::ConversationsReadTeam), get_state),
    endpoint!(PUT "/conversations/{id}/bot", Rule::Agent(P::ConversationsReply), put_state),
    endpoint!(POST "/conversations/{id}/bot/suggest", Rule::Agent(P::ConversationsReply), suggest),
];

async fn get_settings(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let team = path.into_inner();
    require_team(&agent, &team)?;
    let s = state.db.run(move |c| settings::load(c, &team)).await?;
    Ok(HttpResponse::Ok().json(with_model(&state, &s)))
}

/// The settings plus whether a model endpoint is configured (read-only).
fn with_model(state: &AppState, s: &BotSettings) -> Value {
    let mut v = json!(s);
    v["model_configured"] = json!(state.bot.llm.is_some());
    v["model"] = json!(state.bot.llm.as_ref().map(|l| l.model().to_string()));
    v
}

/// `PUT /api/teams/{id}/bot`: the fields given replace the stored ones; the rest stay.
async fn put_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, AppError> {
    let team = path.into_inner();
    require_team(&agent, &team)?;
    let Value::Object(changes) = body.into_inner() else {
        return Err(AppError::Validation(
            "the body is a JSON object of settings".into(),
        ));
    };
    let (t2, by) = (team.clone(), agent.email.clone());
    let who = super::audit::actor(&agent, &req);
    let saved = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                let before = settings::load(c, &t2)?;
                let mut current = json!(before);
                for (k, v) in changes {
                    if k == "model_configured" || k == "model" {
                        continue;
                    }
                    current[k] = v;
                }
                let next: BotSettings = serde_json::from_value(current)
                    .map_err(|e| AppError::Validation(format!("bot settings: {e}")))?;
                settings::save(c, &t2, &next, &by)?;
                let entry = AuditEntry::new(&who, AuditAction::BotSettingsChanged)
                    .target("team", &t2)
                    .team(&t2)
                    .before(&before)
                    .after(&next);
                audit::record(c, &entry, now_ms())?;
                Ok(next)
            })
        })
        .await?;
    state
        .bot
        .settings
        .put(&team, std::sync::Arc::new(saved.clone()));
    Ok(HttpResponse::Ok().json(with_model(&state, &saved)))
}

async fn list_rules(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let team = path.into_inner();
    require_team(&agent, &team)?;
    let rows = state.db.run(move |c| rules::list(c, &team)).await?;
    let views: Vec<RuleView> = rows.into_iter().map(RuleView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn create_rule(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<RuleForm>,
) -> Result<HttpResponse, AppError> {
    let team = path.into_inner();
    require_team(&agent, &team)?;
    let form = body.into_inner();
    let who = super::audit::actor(&agent, &req);
    let row = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                let row = rules::create(c, &team, &form)?;
                record_rule(c, &who, AuditAction::BotRuleCreated, None, Some(&row))?;
                Ok(row)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(RuleView::from(row)))
}

/// Writes a bot-rule entry (`before`/`after` as the API shows the rule) in the
/// caller's transaction.
fn record_rule(
    c: &mut crate::db::DbConn,
    who: &AuditActor,
    action: AuditAction,
    before: Option<&rules::RuleRow>,
    after: Option<&rules::RuleRow>,
) -> Result<(), AppError> {
    let Some(rule) = after.or(before) else {
        return Ok(());
    };
    let mut entry = AuditEntry::new(who, action)
        .target("bot_rule", &rule.id)
        .team(&rule.team_id);
    if let Some(b) = before {
        entry = entry.before(RuleView::from(b.clone()));
    }
    if let Some(a) = after {
        entry = entry.after(RuleView::from(a.clone()));
    }
    audit::record(c, &entry, now_ms()).map(|_| ())
}

/// Loads a rule and checks the caller supervises its team.
async fn rule_for(
    state: &AppState,
    agent: &AgentInfo,
    id: String,
) -> Result<rules::RuleRow, AppError> {
    let row = state.db.run(move |c| rules::get(c, &id)).await?;
    require_team(agent, &row.team_id)?;
    Ok(row)
}

async fn update_rule(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<RuleForm>,
) -> Result<HttpResponse, AppError> {
    let row = rule_for(&state, &agent, path.into_inner()).await?;
    let form = body.into_inner();
    let who = super::audit::actor(&agent, &req);
    let row = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                let before = rules::get(c, &row.id)?;
                let after = rules::update(c, &row.id, &form)?;
                let action = AuditAction::BotRuleUpdated;
                record_rule(c, &who, action, Some(&before), Some(&after))?;
                Ok(after)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(RuleView::from(row)))
}

async fn delete_rule(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let row = rule_for(&state, &agent, path.into_inner()).await?;
    let who = super::audit::actor(&agent, &req);
    state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                rules::delete(c, &row.id)?;
                record_rule(c, &who, AuditAction::BotRuleDeleted, Some(&row), None)
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct TeamQuery {
    #[serde(default)]
    team_id: Option<String>,
}

/// `GET /api/ai/prompts?team_id=`: the parts in use, their combined version, and
/// every revision newest first.
async fn get_prompts(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    q: web::Query<TeamQuery>,
) -> Result<HttpResponse, AppError> {
    let team = team_for(&state, &agent, q.into_inner().team_id).await?;
    require_team(&agent, &team)?;
    let t2 = team.clone();
    let (set, history) = state
        .db
        .run(move |c| Ok((prompt::current(c, &t2)?, prompt::history(c, &t2)?)))
        .await?;
    let current: serde_json::Map<String, Value> = set
        .parts
        .iter()
        .map(|(t, r)| (t.to_string(), json!(r)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "team_id": team,
        "version": set.version(),
        "current": current,
        "default_base": prompt::DEFAULT_BASE,
        "history": history,
    })))
}

/// `PUT /api/ai/prompts` (seed 001): stores a new version of one prompt part.
async fn put_prompt(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthAgent(agent): AuthAgent,
    body: web::Json<PromptForm>,
) -> Result<HttpResponse, AppError> {
    let form = body.into_inner();
    let team = team_for(&state, &agent, form.team_id.clone()).await?;
    require_team(&agent, &team)?;
    let by = agent.email.clone();
    let who = super::audit::actor(&agent, &req);
    // The texts are kept as versions (`GET /api/ai/prompts`); the entry names them.
    let summary = |r: &prompt::PromptRow| json!({"prompt_type": r.prompt_type, "revision": r.revision, "version": r.version});
    let row = state
        .db
        .run(move |c| {
            crate::db::write_transaction(c, |c| {
                let set = prompt::current(c, &team)?;
                let before = set
                    .parts
                    .iter()
                    .find(|(t, _)| *t == form.prompt_type)
                    .and_then(|(_, r)| r.as_ref())
                    .map(summary);
                let row = prompt::put(c, &team, &form, &by)?;
                let mut entry = AuditEntry::new(&who, AuditAction::PromptChanged)
                    .target("prompt", &row.id)
                    .team(&team)
                    .after(summary(&row));
                entry.before = before;
                audit::record(c, &entry, now_ms())?;
                Ok(row)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(row))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessBody {
    /// The customer's message.
    message: String,
    /// A conversation whose history, contact and lead give the context.
    #[serde(default)]
    conversation_id: Option<String>,
    /// Without a conversation: the team (default: the caller's).
    #[serde(default)]
    team_id: Option<String>,
    /// Seed 001 sends the customer's phone; accepted for that shape, not used (the
    /// conversation, when given, identifies the contact).
    #[serde(default)]
    #[allow(dead_code)]
    phone: Option<String>,
    /// The lead's phase as the caller knows it (used without a conversation).
    #[serde(default)]
    current_phase: Option<String>,
    /// Without a conversation: the channel (default `whatsapp`).
    #[serde(default)]
    channel: Option<String>,
}

async fn meta_for(
    state: &AppState,
    agent: &AgentInfo,
    id: String,
) -> Result<ConversationMeta, AppError> {
    let meta = state
        .db
        .run(move |c| crate::store::conversations::meta(c, &id))
        .await?;
    if !agent.can_access_team(&meta.team_id) {
        return Err(AppError::Forbidden("this conversation is not yours".into()));
    }
    Ok(meta)
}

/// Builds the engine's input for a message: from a conversation's history and lead
/// when one is named, else from the body alone.
async fn input_for(
    state: &AppState,
    agent: &AgentInfo,
    b: &ProcessBody,
) -> Result<(Input, std::sync::Arc<BotSettings>), AppError> {
    let message = crate::model::validate_body(&b.message)?;
    let input = match &b.conversation_id {
        Some(conv) => {
            let meta = meta_for(state, agent, conv.clone()).await?;
            let history_len = state
                .bot
                .settings
                .get(&state.db, &meta.team_id)
                .await?
                .history_messages;
            let mut input = worker::context(state, &meta.id, history_len).await?;
            input.history.push((true, message.clone()));
            input.turn = vec![message];
            input
        }
        None => {
            let team = team_for(state, agent, b.team_id.clone()).await?;
            let t2 = team.clone();
            let config = state
                .db
                .run(move |c| crate::store::leads::config(c, &t2))
                .await?;
            Input {
                team_id: team,
                channel: b.channel.clone().unwrap_or_else(|| "whatsapp".into()),
                lead_stage: b.current_phase.clone(),
                history: vec![(true, message.clone())],
                turn: vec![message],
                now_ms: now_ms(),
                ..Input::default()
            }
            .with_lead_config(&config)
        }
    };
    let s = state.bot.settings.get(&state.db, &input.team_id).await?;
    Ok((input, s))
}

/// `POST /api/ai/process-message` (seed 001): what the bot would answer to a message —
/// `{response_text, media_to_send, new_phase, confidence, should_escalate,
/// escalation_reason, sources, prompt_version, source}`. Nothing is sent or stored:
/// the caller decides (the live bot answers by itself).
async fn process_message(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    body: web::Json<ProcessBody>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let (input, s) = input_for(&state, &agent, &b).await?;
    let d = engine::decide(&state.bot, &state.db, &s, &input).await?;
    Ok(HttpResponse::Ok().json(json!({
        "response_text": d.reply,
        "media_to_send": d.media,
        "new_phase": d.new_phase.or(input.lead_stage),
        "confidence": d.confidence,
        "should_escalate": d.handover.is_some(),
        "escalation_reason": d.handover,
        "sources": d.sources,
        "prompt_version": d.prompt_version,
        "source": d.source,
    })))
}

/// `GET /api/conversations/{id}/bot`: the bot's state and its latest decisions.
async fn get_state(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let meta = meta_for(&state, &agent, path.into_inner()).await?;
    let conv = meta.id.clone();
    let (row, replies) = state
        .db
        .run(move |c| Ok((status::get(c, &conv)?, status::recent(c, &conv, 20)?)))
        .await?;
    let s = state.bot.settings.get(&state.db, &meta.team_id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "conversation_id": meta.id,
        "enabled": s.answers_on(&meta.channel),
        "status": row.status,
        "reason": row.reason,
        "summary": row.summary,
        "handled_seq": row.handled_seq,
        "not_understood": row.not_understood,
        "pending": state.bot.jobs.pending(&meta.id),
        "replies": replies,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    /// `paused` or `active`.
    status: String,
}

/// `PUT /api/conversations/{id}/bot {status}`: an agent of the team pauses the bot
/// (the conversation then goes to humans: routed if nobody has it) or resumes it.
async fn put_state(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
    body: web::Json<StateBody>,
) -> Result<HttpResponse, AppError> {
    let meta = meta_for(&state, &agent, path.into_inner()).await?;
    let (conv, st, by) = (meta.id.clone(), body.into_inner().status, agent.id.clone());
    let row = state
        .db
        .run(move |c| status::set_by_agent(c, &conv, &st, &by))
        .await?;
    if row.status == status::PAUSED && meta.assignee_id.is_none() {
        state.hub.route(RouteConversation {
            conversation_id: meta.id.clone(),
            reopened: false,
        });
    }
    worker::publish_state(&state, &meta.id, &meta.team_id, &row);
    Ok(HttpResponse::Ok().json(json!({
        "conversation_id": meta.id,
        "status": row.status,
        "reason": row.reason,
        "summary": row.summary,
    })))
}

/// `POST /api/conversations/{id}/bot/suggest`: a draft reply for the agent, from the
/// model grounded in the knowledge base (or the best knowledge hit without a
/// model). Nothing is sent. `{text, sources, confidence, source, prompt_version}`;
/// `text` is null when there is nothing to suggest.
async fn suggest(
    state: web::Data<AppState>,
    AuthAgent(agent): AuthAgent,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let meta = meta_for(&state, &agent, path.into_inner()).await?;
    let s = state.bot.settings.get(&state.db, &meta.team_id).await?;
    let mut input = worker::context(&state, &meta.id, s.history_messages).await?;
    // The draft answers the customer's latest messages, whoever spoke last.
    let latest: Vec<String> = input
        .history
        .iter()
        .rev()
        .take_while(|(customer, _)| *customer)
        .map(|(_, t)| t.clone())
        .collect();
    input.turn = if latest.is_empty() {
        input
            .history
            .iter()
            .rev()
            .find(|(c, _)| *c)
            .map(|(_, t)| vec![t.clone()])
            .unwrap_or_default()
    } else {
        latest.into_iter().rev().collect()
    };
    let d = engine::suggest(&state.bot, &state.db, &s, &input).await?;
    let conv = meta.id.clone();
    let row = status::NewReply {
        conversation_id: conv,
        team_id: meta.team_id.clone(),
        source: "suggestion".into(),
        prompt_version: d.prompt_version.clone(),
        model: d.model.clone(),
        sources: d.sources_json(),
        confidence: d.confidence,
        latency_ms: d.latency_ms,
        ..Default::default()
    };
    if let Err(e) = state.db.run(move |c| status::record(c, &row)).await {
        tracing::warn!(error = %e, "suggestion not recorded");
    }
    Ok(HttpResponse::Ok().json(json!({
        "text": d.reply,
        "sources": d.sources,
        "confidence": d.confidence,
        "source": d.source,
        "prompt_version": d.prompt_version,
    })))
}
