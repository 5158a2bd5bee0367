//! Contacts and conversations: creation, summaries, listing, assignment, status and
//! read markers.

use diesel::prelude::*;

use crate::channels::SERVICE_WINDOW_MS;
use crate::clock::{now_ms, rfc3339};
use crate::db::schema::{contacts, conversations, lead_contacts, leads, messages};
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::{
    new_id, opt_time, ContactView, ConversationStatus, ConversationView, LastMessageView,
    SenderKind,
};
use crate::store::{contains_pattern, lower, lower_opt};
use crate::visitor;

/// A row of `contacts` (the columns clients see; `wa_id` stays in the WhatsApp store).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = contacts)]
pub struct ContactRow {
    /// Contact id.
    pub id: String,
    /// Name, if known.
    pub name: Option<String>,
    /// Email, if known.
    pub email: Option<String>,
    /// Phone in E.164, if known.
    pub phone: Option<String>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// IANA time zone the widget reported.
    pub time_zone: Option<String>,
    /// BCP 47 locale.
    pub locale: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<String>,
    /// Epoch ms of the latest widget session (created or renewed).
    pub last_seen_at: Option<i64>,
    /// Epoch ms the contact first came back (see the migration).
    pub returned_at: Option<i64>,
}

impl From<ContactRow> for ContactView {
    fn from(c: ContactRow) -> Self {
        let generated_name = c.name.is_none();
        Self {
            display_name: c
                .name
                .clone()
                .unwrap_or_else(|| visitor::generated_name(&c.id)),
            generated_name,
            id: c.id,
            name: c.name,
            email: c.email,
            phone: c.phone,
            country: c.country,
            time_zone: c.time_zone,
            locale: c.locale,
            returning: c.returned_at.is_some(),
        }
    }
}

/// The SQL form of [`ConversationView::visible_to_agents`] (keep the two in step):
/// the conversation has a message, or its contact left a name, email or phone.
pub type VisibleToAgents = diesel::dsl::Or<
    diesel::dsl::Or<
        diesel::dsl::Or<
            diesel::dsl::Gt<conversations::last_seq, i64>,
            diesel::dsl::IsNotNull<contacts::name>,
        >,
        diesel::dsl::IsNotNull<contacts::email>,
    >,
    diesel::dsl::IsNotNull<contacts::phone>,
>;

/// Filter for queries joining `conversations` with `contacts`: only conversations
/// agents may see (`docs/api.md`, "Which conversations agents see").
pub fn visible_to_agents() -> VisibleToAgents {
    conversations::last_seq
        .gt(0_i64)
        .or(contacts::name.is_not_null())
        .or(contacts::email.is_not_null())
        .or(contacts::phone.is_not_null())
}

/// A row of `conversations`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations)]
pub struct ConversationRow {
    /// Conversation id.
    pub id: String,
    /// Owning team.
    pub team_id: String,
    /// The contact.
    pub contact_id: String,
    /// `widget`, later `whatsapp`, `quick_chat`.
    pub channel: String,
    /// `open`, `pending`, `resolved`.
    pub status: String,
    /// Assigned agent.
    pub assignee_id: Option<String>,
    /// Attribution (page, campaign, link source).
    pub source: Option<String>,
    /// Page the widget was on.
    pub page_url: Option<String>,
    /// Highest committed seq.
    pub last_seq: i64,
    /// Epoch ms of the latest message.
    pub last_message_at: Option<i64>,
    /// First characters of the latest message.
    pub last_message_preview: Option<String>,
    /// Sender kind of the latest message.
    pub last_message_sender: Option<String>,
    /// Epoch ms of the latest message from the contact (WhatsApp's 24-hour window).
    pub last_inbound_at: Option<i64>,
    /// Highest seq read by the contact.
    pub guest_read_seq: i64,
    /// Highest seq read by an agent.
    pub agent_read_seq: i64,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms of the last activity (message, status or assignment change).
    pub updated_at: i64,
    /// Epoch ms since which the conversation waits in its team's queue (NULL: not
    /// queued). The queue is served oldest first.
    pub queued_at: Option<i64>,
    /// Agent routing tries first (a quick-chat link's owner, or the previous
    /// assignee of a reopened conversation), if online and under capacity.
    pub preferred_agent_id: Option<String>,
    /// Epoch ms of the latest assignment.
    pub assigned_at: Option<i64>,
}

/// What the conversation actor keeps in memory to authorise and route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationMeta {
    /// Conversation id.
    pub id: String,
    /// Owning team.
    pub team_id: String,
    /// The contact (a guest may only touch its own contact's conversation).
    pub contact_id: String,
    /// The contact's name, shown as the sender of its messages.
    pub contact_name: Option<String>,
    /// Channel name.
    pub channel: String,
    /// Current status.
    pub status: ConversationStatus,
    /// Current assignee.
    pub assignee_id: Option<String>,
    /// Epoch ms of the contact's latest message (WhatsApp's 24-hour window).
    pub last_inbound_at: Option<i64>,
}

impl ConversationRow {
    fn meta(&self, contact_name: Option<String>) -> Result<ConversationMeta, AppError> {
        Ok(ConversationMeta {
            id: self.id.clone(),
            team_id: self.team_id.clone(),
            contact_id: self.contact_id.clone(),
            contact_name,
            channel: self.channel.clone(),
            status: ConversationStatus::parse(&self.status)?,
            assignee_id: self.assignee_id.clone(),
            last_inbound_at: self.last_inbound_at,
        })
    }

    fn view(self, contact: ContactRow) -> Result<ConversationView, AppError> {
        let last_message = match (self.last_message_at, self.last_message_preview) {
            (Some(at), Some(body)) if self.last_seq > 0 => Some(LastMessageView {
                seq: self.last_seq,
                body,
                sender_kind: SenderKind::parse_lossy(
                    self.last_message_sender.as_deref().unwrap_or(""),
                ),
                created_at: rfc3339(at),
            }),
            _ => None,
        };
        let window = crate::channels::Provider::of_channel(&self.channel)
            .is_some_and(crate::channels::Provider::has_service_window);
        Ok(ConversationView {
            status: ConversationStatus::parse(&self.status)?,
            id: self.id,
            team_id: self.team_id,
            channel: self.channel,
            assignee_id: self.assignee_id,
            source: self.source,
            page_url: self.page_url,
            contact: contact.into(),
            last_seq: self.last_seq,
            last_message,
            last_message_at: opt_time(self.last_message_at),
            created_at: rfc3339(self.created_at),
            guest_read_seq: self.guest_read_seq,
            agent_read_seq: self.agent_read_seq,
            queued_at: opt_time(self.queued_at),
            window_expires_at: window
                .then(|| opt_time(self.last_inbound_at.map(|t| t + SERVICE_WINDOW_MS)))
                .flatten(),
            template_required: window.then(|| {
                self.last_inbound_at
                    .is_none_or(|t| now_ms() >= t + SERVICE_WINDOW_MS)
            }),
            lead_stage: None,
            lead_priority: None,
        })
    }
}

/// Form for [`create_with_contact`].
#[derive(Debug, Clone, Default)]
pub struct NewGuestConversation {
    /// Team to route to.
    pub team_id: String,
    /// Channel name (`widget`).
    pub channel: String,
    /// Contact name from the pre-chat form.
    pub name: Option<String>,
    /// Contact email.
    pub email: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Attribution.
    pub source: Option<String>,
    /// Page URL.
    pub page_url: Option<String>,
    /// Agent routing should try first (e.g. a quick-chat link's owner).
    pub preferred_agent_id: Option<String>,
    /// What the widget told of the visitor (time zone, locale, country).
    pub profile: VisitorProfile,
}

/// What a widget session tells of its visitor besides the pre-chat form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorProfile {
    /// IANA time zone, checked by [`visitor::is_time_zone`].
    pub time_zone: Option<String>,
    /// BCP 47 locale (the widget's, else the best `Accept-Language` tag).
    pub locale: Option<String>,
    /// ISO 3166-1 alpha-2 country ([`visitor::country`]).
    pub country: Option<String>,
}

/// A pause after which a renewed widget session counts as a new visit (the usual
/// web-analytics session timeout): the contact is then `returning`.
pub const RETURN_AFTER_MS: i64 = 30 * 60 * 1000;

/// Records a renewed widget session of `contact_id` at `now`: the latest time seen,
/// any profile facts now known, and — after a pause of [`RETURN_AFTER_MS`] — that
/// the contact came back.
///
/// # Errors
/// Database errors.
pub fn renew_contact(
    conn: &mut DbConn,
    contact_id: &str,
    profile: &VisitorProfile,
    now: i64,
) -> Result<(), AppError> {
    let last_seen: Option<Option<i64>> = contacts::table
        .find(contact_id)
        .select(contacts::last_seen_at)
        .first(conn)
        .optional()?;
    let Some(last_seen) = last_seen else {
        return Ok(());
    };
    let came_back = last_seen.is_some_and(|t| now - t >= RETURN_AFTER_MS);
    let target = contacts::table.find(contact_id);
    conn.transaction::<_, AppError, _>(|conn| {
        diesel::update(target)
            .set(contacts::last_seen_at.eq(now))
            .execute(conn)?;
        if came_back {
            diesel::update(target.filter(contacts::returned_at.is_null()))
                .set(contacts::returned_at.eq(now))
                .execute(conn)?;
        }
        if profile.time_zone.is_some() {
            diesel::update(target)
                .set((
                    contacts::time_zone.eq(&profile.time_zone),
                    contacts::country.eq(&profile.country),
                ))
                .execute(conn)?;
        }
        if profile.locale.is_some() {
            diesel::update(target)
                .set(contacts::locale.eq(&profile.locale))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Marks a contact as returning (its lead held an earlier conversation of the same
/// person), keeping the first time it was seen returning.
///
/// # Errors
/// Database errors.
pub fn mark_returning(conn: &mut DbConn, contact_id: &str, now: i64) -> Result<(), AppError> {
    diesel::update(
        contacts::table
            .find(contact_id)
            .filter(contacts::returned_at.is_null()),
    )
    .set(contacts::returned_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// Creates a contact and an open, unassigned conversation for it. Agents do not
/// see the conversation until it has a message or the contact left a name, email
/// or phone ([`visible_to_agents`]).
///
/// # Errors
/// Database errors.
pub fn create_with_contact(
    conn: &mut DbConn,
    form: NewGuestConversation,
) -> Result<ConversationView, AppError> {
    let now = now_ms();
    let contact = ContactRow {
        id: new_id(),
        name: form.name,
        email: form.email,
        phone: form.phone,
        created_at: now,
        updated_at: now,
        time_zone: form.profile.time_zone,
        locale: form.profile.locale,
        country: form.profile.country,
        last_seen_at: Some(now),
        returned_at: None,
    };
    let conversation = ConversationRow {
        id: new_id(),
        team_id: form.team_id,
        contact_id: contact.id.clone(),
        channel: form.channel,
        status: ConversationStatus::Open.as_str().into(),
        assignee_id: None,
        source: form.source,
        page_url: form.page_url,
        last_seq: 0,
        last_message_at: None,
        last_message_preview: None,
        last_message_sender: None,
        last_inbound_at: None,
        guest_read_seq: 0,
        agent_read_seq: 0,
        created_at: now,
        updated_at: now,
        queued_at: None,
        preferred_agent_id: form.preferred_agent_id,
        assigned_at: None,
    };
    conn.transaction::<_, AppError, _>(|conn| {
        diesel::insert_into(contacts::table)
            .values(&contact)
            .execute(conn)?;
        diesel::insert_into(conversations::table)
            .values(&conversation)
            .execute(conn)?;
        Ok(())
    })?;
    conversation.view(contact)
}

/// The routing facts of one conversation.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn meta(conn: &mut DbConn, id: &str) -> Result<ConversationMeta, AppError> {
    let (row, name) = conversations::table
        .inner_join(contacts::table)
        .filter(conversations::id.eq(id))
        .select((ConversationRow::as_select(), contacts::name))
        .first::<(ConversationRow, Option<String>)>(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))?;
    row.meta(name)
}

/// The highest committed seq of a conversation.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn last_seq(conn: &mut DbConn, id: &str) -> Result<i64, AppError> {
    conversations::table
        .find(id)
        .select(conversations::last_seq)
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))
}

/// The summary of one conversation.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn summary(conn: &mut DbConn, id: &str) -> Result<ConversationView, AppError> {
    let (c, contact) = conversations::table
        .inner_join(contacts::table)
        .filter(conversations::id.eq(id))
        .select((ConversationRow::as_select(), ContactRow::as_select()))
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))?;
    c.view(contact)
}

/// Whom a list is filtered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// Any.
    Any,
    /// Unassigned only.
    Nobody,
    /// Assigned to this agent.
    Agent(String),
}

/// Filter for [`list`].
#[derive(Debug, Clone)]
pub struct ListFilter {
    /// Teams the caller may see; `None` for admins (every team).
    pub visible_teams: Option<Vec<String>>,
    /// Restrict to one team.
    pub team_id: Option<String>,
    /// Restrict to one channel (`widget`, `whatsapp`, `waha`, `quick_chat`).
    pub channel: Option<String>,
    /// Restrict to one status.
    pub status: Option<ConversationStatus>,
    /// Restrict by assignee.
    pub assignee: AssigneeFilter,
    /// Case-insensitive text to find in the contact's name, email, phone or any message.
    pub q: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// Conversations agents may see ([`visible_to_agents`]) matching `filter`, most
/// recent activity first.
///
/// # Errors
/// Database errors.
pub fn list(conn: &mut DbConn, filter: &ListFilter) -> Result<Vec<ConversationView>, AppError> {
    let mut q = conversations::table
        .inner_join(contacts::table)
        .select((ConversationRow::as_select(), ContactRow::as_select()))
        .order((conversations::updated_at.desc(), conversations::id.desc()))
        .limit(filter.limit)
        .into_boxed();
    q = q.filter(visible_to_agents());
    if let Some(teams) = &filter.visible_teams {
        q = q.filter(conversations::team_id.eq_any(teams.clone()));
    }
    if let Some(team) = &filter.team_id {
        q = q.filter(conversations::team_id.eq(team.clone()));
    }
    if let Some(channel) = &filter.channel {
        q = q.filter(conversations::channel.eq(channel.clone()));
    }
    if let Some(status) = filter.status {
        q = q.filter(conversations::status.eq(status.as_str()));
    }
    match &filter.assignee {
        AssigneeFilter::Any => {}
        AssigneeFilter::Nobody => q = q.filter(conversations::assignee_id.is_null()),
        AssigneeFilter::Agent(id) => q = q.filter(conversations::assignee_id.eq(id.clone())),
    }
    if let Some(text) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = contains_pattern(text);
        let in_messages = diesel::dsl::exists(
            messages::table
                .filter(messages::conversation_id.eq(conversations::id))
                .filter(lower(messages::body).like(pattern.clone()).escape('\\')),
        );
        q = q.filter(
            lower_opt(contacts::name)
                .like(pattern.clone())
                .escape('\\')
                .or(lower_opt(contacts::email)
                    .like(pattern.clone())
                    .escape('\\'))
                .or(lower_opt(contacts::phone)
                    .like(pattern.clone())
                    .escape('\\'))
                .assume_not_null()
                .or(in_messages),
        );
    }
    let rows = q.load::<(ConversationRow, ContactRow)>(conn)?;
    // The leads of these contacts, in one query: the list shows stage and priority.
    let contact_ids: Vec<String> = rows.iter().map(|(_, contact)| contact.id.clone()).collect();
    let lead_of: std::collections::HashMap<String, (String, String)> = lead_contacts::table
        .inner_join(leads::table.on(leads::id.eq(lead_contacts::lead_id)))
        .filter(lead_contacts::contact_id.eq_any(contact_ids))
        .select((lead_contacts::contact_id, leads::stage, leads::priority))
        .load::<(String, String, String)>(conn)?
        .into_iter()
        .map(|(contact, stage, priority)| (contact, (stage, priority)))
        .collect();
    rows.into_iter()
        .map(|(c, contact)| {
            let lead = lead_of.get(&contact.id).cloned();
            let mut view = c.view(contact)?;
            if let Some((stage, priority)) = lead {
                view.lead_stage = Some(stage);
                view.lead_priority = Some(priority);
            }
            Ok(view)
        })
        .collect()
}

/// Sets the assignee when the current one is `expected` (compare-and-set, so two
/// concurrent assignments cannot both win). Returns whether the row changed.
///
/// # Errors
/// Database errors.
pub fn set_assignee(
    conn: &mut DbConn,
    id: &str,
    expected: Option<&str>,
    assignee: Option<&str>,
) -> Result<bool, AppError> {
    let target = conversations::table.filter(conversations::id.eq(id));
    let changes = (
        conversations::assignee_id.eq(assignee),
        conversations::updated_at.eq(now_ms()),
    );
    let n = match expected {
        Some(current) => diesel::update(target.filter(conversations::assignee_id.eq(current)))
            .set(changes)
            .execute(conn)?,
        None => diesel::update(target.filter(conversations::assignee_id.is_null()))
            .set(changes)
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Sets the status.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn set_status(conn: &mut DbConn, id: &str, status: ConversationStatus) -> Result<(), AppError> {
    let n = diesel::update(conversations::table.find(id))
        .set((
            conversations::status.eq(status.as_str()),
            conversations::updated_at.eq(now_ms()),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(AppError::NotFound(format!("no conversation {id}")));
    }
    Ok(())
}

/// Who is marking a conversation read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSide {
    /// The contact.
    Guest,
    /// Any agent.
    Agent,
}

/// Moves a read marker forward to `seq` (never backwards, never past `last_seq`).
/// Returns the marker now stored.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn mark_read(conn: &mut DbConn, id: &str, side: ReadSide, seq: i64) -> Result<i64, AppError> {
    let base = conversations::table
        .filter(conversations::id.eq(id))
        .filter(conversations::last_seq.ge(seq));
    match side {
        ReadSide::Guest => {
            diesel::update(base.filter(conversations::guest_read_seq.lt(seq)))
                .set(conversations::guest_read_seq.eq(seq))
                .execute(conn)?;
        }
        ReadSide::Agent => {
            diesel::update(base.filter(conversations::agent_read_seq.lt(seq)))
                .set(conversations::agent_read_seq.eq(seq))
                .execute(conn)?;
        }
    }
    let (guest, agent): (i64, i64) = conversations::table
        .find(id)
        .select((conversations::guest_read_seq, conversations::agent_read_seq))
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))?;
    Ok(match side {
        ReadSide::Guest => guest,
        ReadSide::Agent => agent,
    })
}
