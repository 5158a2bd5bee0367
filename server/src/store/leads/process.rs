//! The bookkeeping after every committed message ([`process_message`]): what it
//! reads of the message and its conversation, what it changed (for the caller to
//! publish), and the first agent reply. Each pass is one write transaction, retried
//! once when a concurrent pass created the lead first.

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::db::schema::{campaign_codes, contacts, conversations, messages, quick_links, tasks};
use crate::db::{write_transaction, DbConn};
use crate::error::AppError;
use crate::leads::campaign;
use crate::leads::config::{priority_rank, LeadConfig};
use crate::leads::intent::Matcher;
use crate::model::SenderKind;
use crate::store::conversations::ContactRow;

use super::engage::engage_in_tx;
use super::tasks::has_open_task;
use super::{
    changes_nothing, config_cached, create_task, ensure, event, lead_of_contact, move_stage,
    package_text, save, view, Actor, CampaignCodeRow, LeadOrigin, LeadView, NewTask, TimelineEntry,
    ENGAGEMENT_INVITE,
};

/// What the post-message bookkeeping changed, for the caller to publish.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The lead after the change (`None`: nothing worth announcing changed).
    pub lead: Option<LeadView>,
    /// New timeline entries.
    pub timeline: Vec<TimelineEntry>,
    /// An automatic reply to post (body, optional image URL).
    pub reply: Option<(String, Option<String>)>,
    /// A handover was requested: announce to the team leads.
    pub handover: Option<Value>,
    /// Conversation team and assignee (for the audience of frames).
    pub team_id: String,
    /// Assignee.
    pub assignee_id: Option<String>,
}

/// The message that was just committed, as the bookkeeping needs it.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Conversation.
    pub conversation_id: String,
    /// Who wrote it.
    pub sender_kind: SenderKind,
    /// Sender id.
    pub sender_id: Option<String>,
    /// Body.
    pub body: String,
    /// Seq.
    pub seq: i64,
}

fn source_of(channel: &str) -> &'static str {
    match channel {
        "whatsapp" | "waha" => "whatsapp",
        "quick_chat" => "quick_chat",
        _ => "widget",
    }
}

/// What the lead bookkeeping reads of a conversation; the pipeline reads it once
/// per pass with its lease ([`crate::store::pipeline::claim`]). Selected with
/// `ConversationFacts::as_select()`, so both readers name the same columns.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = conversations)]
pub struct ConversationFacts {
    /// The conversation's team.
    pub team_id: String,
    /// The conversation's contact.
    pub contact_id: String,
    /// Channel (`web`, `whatsapp`, `quick_chat`, …).
    pub channel: String,
    /// Where the conversation came from (a quick link's source, a page).
    pub source: Option<String>,
    /// The agent a quick link belongs to.
    pub preferred_agent_id: Option<String>,
    /// Current assignee.
    pub assignee_id: Option<String>,
}

impl ConversationFacts {
    /// The conversation's facts, `None` when there is no such conversation.
    ///
    /// # Errors
    /// Database errors.
    pub fn find(c: &mut DbConn, conversation_id: &str) -> QueryResult<Option<Self>> {
        conversations::table
            .find(conversation_id)
            .select(Self::as_select())
            .first(c)
            .optional()
    }

    pub(super) fn load(c: &mut DbConn, conversation_id: &str) -> Result<Self, AppError> {
        Self::find(c, conversation_id)?
            .ok_or_else(|| AppError::NotFound(format!("no conversation {conversation_id}")))
    }

    /// The quick link a quick-chat conversation came through (its owner and source).
    pub(super) fn quick_link_id(&self, c: &mut DbConn) -> Result<Option<String>, AppError> {
        match (&self.preferred_agent_id, self.channel.as_str()) {
            (Some(agent), "quick_chat") => Ok(quick_links::table
                .filter(quick_links::agent_id.eq(agent))
                .filter(quick_links::source.eq(self.source.clone().unwrap_or_default()))
                .select(quick_links::id)
                .first(c)
                .optional()?),
            _ => Ok(None),
        }
    }

    /// The origin of a lead that starts in this conversation.
    pub(super) fn origin(
        &self,
        quick_link_id: Option<String>,
        conversation_id: &str,
    ) -> LeadOrigin {
        LeadOrigin {
            team_id: self.team_id.clone(),
            contact_id: self.contact_id.clone(),
            source: source_of(&self.channel).into(),
            source_detail: self.source.clone(),
            owner_id: if self.channel == "quick_chat" {
                self.preferred_agent_id.clone()
            } else {
                None
            },
            quick_link_id,
            conversation_id: Some(conversation_id.to_string()),
        }
    }
}

/// The bookkeeping after one committed message (see `docs/leads.md`):
/// - a contact's message: the lead is found or created (merging with the same
///   person's lead); the first message of a conversation with a campaign code tags
///   the lead and asks for the package reply (an unknown code: the welcome);
///   intent rules move the stage forward, raise the priority and score, create tasks
///   and flag a handover; on quick-chat pages the contact is invited once to leave
///   an email or phone after showing interest;
/// - an agent's message: the first reply records the response time, makes the agent
///   the owner if there is none, moves the first stage to the second and completes
///   the initial-contact task.
///
/// # Errors
/// Database errors.
pub fn process_message(
    c: &mut DbConn,
    m: &Committed,
    facts: &ConversationFacts,
) -> Result<Outcome, AppError> {
    let out = Outcome {
        team_id: facts.team_id.clone(),
        assignee_id: facts.assignee_id.clone(),
        ..Outcome::default()
    };
    if !matches!(m.sender_kind, SenderKind::Guest | SenderKind::Agent) {
        return Ok(out);
    }
    let quick_link_id = facts.quick_link_id(c)?;
    // A quick link counts a conversation once agents can see it (docs/leads.md): at
    // its first message, unless a pre-chat form made it visible (and counted) before.
    if m.seq == 1 {
        if let Some(link) = &quick_link_id {
            let prechat: Option<String> = contacts::table
                .find(&facts.contact_id)
                .filter(
                    contacts::name
                        .is_not_null()
                        .or(contacts::email.is_not_null())
                        .or(contacts::phone.is_not_null()),
                )
                .select(contacts::id)
                .first(c)
                .optional()?;
            if prechat.is_none() {
                diesel::update(quick_links::table.find(link))
                    .set(quick_links::conversations.eq(quick_links::conversations + 1))
                    .execute(c)?;
            }
        }
    }
    // Cheap read first: after the first reply, an agent's message changes nothing,
    // so it must not pay for the team's rules (a read, a parse, regex compilation).
    if m.sender_kind == SenderKind::Agent
        && lead_of_contact(c, &facts.contact_id)?.is_some_and(|l| l.first_response_at.is_some())
    {
        return Ok(out);
    }
    let cfg = config_cached(c, &facts.team_id)?;
    // Fast path: a known lead and nothing to do writes nothing.
    if m.sender_kind == SenderKind::Guest
        && changes_nothing(&cfg, &m.body, &facts.channel)
        && lead_of_contact(c, &facts.contact_id)?.is_some()
    {
        return Ok(out);
    }
    let matcher = Matcher::cached(&cfg.rules);
    let matched: Vec<_> = matcher.matches(&m.body).into_iter().cloned().collect();
    let codes = campaign::candidates(&m.body);
    let origin = facts.origin(quick_link_id, &m.conversation_id);
    let ConversationFacts {
        team_id,
        contact_id,
        channel,
        ..
    } = facts;
    if m.sender_kind == SenderKind::Agent {
        for attempt in 0..2 {
            let mut fresh = Outcome {
                team_id: out.team_id.clone(),
                assignee_id: out.assignee_id.clone(),
                ..Outcome::default()
            };
            match write_transaction(c, |c| first_reply(c, &cfg, &origin, m, &mut fresh)) {
                Ok(()) => return Ok(fresh),
                Err(AppError::Conflict(_)) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        return Ok(out);
    }
    let run = |c: &mut DbConn, out: &mut Outcome| -> Result<(), AppError> {
        let now = now_ms();
        let (mut lead, created) = ensure(c, &cfg, &origin, now, &mut out.timeline)?;
        let mut changed = created || !out.timeline.is_empty();
        let conv = Some(m.conversation_id.as_str());
        let guest = Actor {
            kind: "guest",
            id: Some(contact_id),
        };
        // Progressive engagement, answered in the chat: once invited, an email or an
        // international phone number in the contact's message is stored like one
        // given through `POST /api/widget/contact`.
        if channel == "quick_chat" && lead.engagement_invited == 1 {
            let (email, phone) = crate::leads::intent::contact_details(&m.body);
            if email.is_some() || phone.is_some() {
                if let Some(l) = engage_in_tx(
                    c,
                    contact_id,
                    email.as_deref(),
                    phone.as_deref(),
                    now,
                    &mut out.timeline,
                )? {
                    lead = l;
                    changed = true;
                }
            }
        }
        // Campaign codes count only in the contact's first message of the conversation.
        // The contact's earliest message, read along the (conversation, seq) index:
        // a count of the contact's messages let PostgreSQL walk the sender index
        // instead (3 ms a message in the bench, growing with the conversation).
        let first_inbound = {
            let earliest: Option<i64> = messages::table
                .filter(messages::conversation_id.eq(&m.conversation_id))
                .filter(messages::seq.le(m.seq))
                .filter(messages::sender_kind.eq(SenderKind::Guest.as_str()))
                .order(messages::seq.asc())
                .select(messages::seq)
                .first(c)
                .optional()?;
            earliest == Some(m.seq)
        };
        if first_inbound && !codes.is_empty() && lead.campaign_code.is_none() {
            let found: Vec<CampaignCodeRow> = campaign_codes::table
                .filter(campaign_codes::code.eq_any(&codes))
                .filter(campaign_codes::team_id.eq(&team_id))
                .filter(campaign_codes::active.eq(1))
                .select(CampaignCodeRow::as_select())
                .load(c)?;
            let first_valid = codes
                .iter()
                .find_map(|code| found.iter().find(|f| &f.code == code));
            match first_valid {
                Some(code) => {
                    lead.campaign_code = Some(code.code.clone());
                    lead.interested_package = Some(code.package_name.clone());
                    // A lead new with this conversation (created here, or just
                    // before by `ensure_for_conversation` for an agent who opened it)
                    // takes the campaign as its source; an older lead keeps its own.
                    if created || lead.contact_id == *contact_id {
                        lead.source = "campaign".into();
                        lead.source_detail = Some(code.code.clone());
                    }
                    lead.updated_at = now;
                    save(c, &lead)?;
                    out.timeline.push(event(
                        c,
                        &lead.id,
                        conv,
                        "campaign_tagged",
                        guest,
                        json!({"campaign_code": code.code, "package": code.package_name,
                               "ignored_codes": codes.iter().filter(|x| **x != code.code).collect::<Vec<_>>()}),
                        now,
                    )?);
                    out.reply = Some((package_text(code), code.image_url.clone()));
                }
                None => {
                    out.timeline.push(event(
                        c,
                        &lead.id,
                        conv,
                        "campaign_unknown",
                        guest,
                        json!({"codes": codes}),
                        now,
                    )?);
                    out.reply = Some((cfg.welcome.clone(), None));
                }
            }
            changed = true;
        }
        let mut tasks_made: Vec<String> = Vec::new();
        for rule in &matched {
            changed = true;
            out.timeline.push(event(
                c,
                &lead.id,
                conv,
                "intent_detected",
                guest,
                json!({"intent": rule.intent, "language": rule.language}),
                now,
            )?);
            if let Some(to) = &rule.stage {
                move_stage(
                    c,
                    &cfg,
                    &mut lead,
                    to,
                    Actor::SYSTEM,
                    false,
                    conv,
                    now,
                    &mut out.timeline,
                )?;
            }
            if let Some(p) = &rule.priority {
                if priority_rank(p) > priority_rank(&lead.priority) {
                    let from = std::mem::replace(&mut lead.priority, p.clone());
                    out.timeline.push(event(
                        c,
                        &lead.id,
                        conv,
                        "priority_changed",
                        Actor::SYSTEM,
                        json!({"from": from, "to": p, "intent": rule.intent}),
                        now,
                    )?);
                }
            }
            lead.score += rule.score;
            if let Some(kind) = &rule.task {
                if !tasks_made.contains(kind) && !has_open_task(c, &lead.id, kind)? {
                    tasks_made.push(kind.clone());
                    create_task(
                        c,
                        &lead,
                        conv,
                        NewTask {
                            kind: kind.clone(),
                            title: format!(
                                "{} request: {}",
                                rule.intent,
                                crate::model::preview(&m.body)
                            ),
                            assignee_id: lead.owner_id.clone().or(out.assignee_id.clone()),
                            due_at: now + rule.task_due_minutes.unwrap_or(60) * 60_000,
                            created_by: None,
                        },
                        now,
                        &mut out.timeline,
                    )?;
                }
            }
            if rule.handover && lead.handover_pending == 0 {
                lead.handover_pending = 1;
                lead.handover_reason = Some(format!(
                    "{} intent: {}",
                    rule.intent,
                    crate::model::preview(&m.body)
                ));
                if out.assignee_id.is_none() {
                    lead.escalated = 1;
                }
                out.timeline.push(event(
                    c,
                    &lead.id,
                    conv,
                    "handover_requested",
                    guest,
                    json!({"intent": rule.intent, "reason": lead.handover_reason}),
                    now,
                )?);
                out.handover = Some(json!({
                    "lead_id": lead.id,
                    "conversation_id": m.conversation_id,
                    "team_id": team_id,
                    "intent": rule.intent,
                    "reason": lead.handover_reason,
                    "last_message": crate::model::preview(&m.body),
                }));
            }
        }
        // Progressive engagement (seed 003): on a quick-chat page, once the contact
        // shows interest (an intent, or a second message), invite them once to leave
        // an email or phone so the conversation can continue elsewhere.
        if channel == "quick_chat" && lead.engagement_invited == 0 && out.reply.is_none() {
            let contact: ContactRow = contacts::table
                .find(&contact_id)
                .select(ContactRow::as_select())
                .first(c)?;
            if contact.email.is_none()
                && contact.phone.is_none()
                && (!matched.is_empty() || !first_inbound)
            {
                lead.engagement_invited = 1;
                changed = true;
                out.reply = Some((ENGAGEMENT_INVITE.into(), None));
                out.timeline.push(event(
                    c,
                    &lead.id,
                    conv,
                    "engagement_invited",
                    Actor::SYSTEM,
                    json!({}),
                    now,
                )?);
            }
        }
        if changed {
            lead.updated_at = now;
            save(c, &lead)?;
            out.lead = Some(view(c, lead)?);
        }
        Ok(())
    };
    for attempt in 0..2 {
        let mut fresh = Outcome {
            team_id: out.team_id.clone(),
            assignee_id: out.assignee_id.clone(),
            ..Outcome::default()
        };
        match write_transaction(c, |c| run(c, &mut fresh)) {
            Ok(()) => return Ok(fresh),
            Err(AppError::Conflict(_)) if attempt == 0 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The first agent reply of a lead (see [`process_message`]). Creates the lead when
/// the contact's own bookkeeping has not yet (both run concurrently).
fn first_reply(
    c: &mut DbConn,
    cfg: &LeadConfig,
    origin: &LeadOrigin,
    m: &Committed,
    out: &mut Outcome,
) -> Result<(), AppError> {
    let now = now_ms();
    let (mut lead, created) = ensure(c, cfg, origin, now, &mut out.timeline)?;
    if lead.first_response_at.is_some() {
        if created {
            out.lead = Some(view(c, lead)?);
        }
        return Ok(());
    }
    let agent = m.sender_id.as_deref();
    let actor = Actor {
        kind: "agent",
        id: agent,
    };
    lead.first_response_at = Some(now);
    if lead.owner_id.is_none() {
        lead.owner_id = m.sender_id.clone();
    }
    lead.updated_at = now;
    save(c, &lead)?;
    out.timeline.push(event(
        c,
        &lead.id,
        Some(&m.conversation_id),
        "first_reply",
        actor,
        json!({"response_ms": now - lead.created_at}),
        now,
    )?);
    if lead.stage == cfg.first() {
        if let Some(next) = cfg.second() {
            move_stage(
                c,
                cfg,
                &mut lead,
                next,
                actor,
                false,
                Some(&m.conversation_id),
                now,
                &mut out.timeline,
            )?;
        }
    }
    diesel::update(
        tasks::table
            .filter(tasks::lead_id.eq(&lead.id))
            .filter(tasks::kind.eq("initial_contact"))
            .filter(tasks::status.eq("open")),
    )
    .set((tasks::status.eq("done"), tasks::completed_at.eq(now)))
    .execute(c)?;
    out.lead = Some(view(c, lead)?);
    Ok(())
}
