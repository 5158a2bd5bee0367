//! Leads: one per person (a lead owns one or more contacts), their stage, priority,
//! tasks and timeline, and the bookkeeping run after every committed message
//! ([`process_message`]). Synchronous, like every store module: callers run these
//! through the blocking pool.
//!
//! Races: "one lead per contact" is the primary key of `lead_contacts`; read-then-
//! write steps run in [`write_transaction`](crate::db::write_transaction) (SQLite's
//! write lock up front).
//!
//! This file holds the rows and views every part shares (a lead, its view, a
//! timeline entry, an actor) and re-exports the parts' items, so callers name
//! everything `store::leads::X` whichever part it lives in:
//! - `config`: the team's lead configuration and its per-node cache;
//! - `repo`: lead rows read, viewed, listed and saved;
//! - `identity`: one lead per person (finding, joining, creating, merging);
//! - `process`: the bookkeeping after every committed message;
//! - `engage`: progressive engagement (an email or phone left in a quick chat);
//! - `stages`: moving a lead through the pipeline;
//! - `tasks`: a lead's tasks and the overdue sweep;
//! - `timeline`: lead events and the merged timeline;
//! - `codes`: campaign codes and their package reply;
//! - `analytics`: the marketing analytics and dashboard.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::db::schema::leads;
use crate::model::ContactView;

mod analytics;
mod codes;
mod config;
mod engage;
mod identity;
mod process;
mod repo;
mod stages;
mod tasks;
mod timeline;

pub use analytics::{analytics, dashboard, Counts};
pub use codes::{create_code, package_text, CampaignCodeRow};
pub use config::{
    changes_nothing, config, config_cached, config_changed, config_peek, save_config,
};
pub use engage::{engage, ENGAGEMENT_INVITE};
pub use identity::{ensure, ensure_for_conversation, merge, owner_for_contact, LeadOrigin};
pub use process::{process_message, Committed, ConversationFacts, Outcome};
pub use repo::{
    conversation_ids, lead_of_contact, lead_of_conversation, list, row, save, view, LeadFilter,
};
pub use stages::move_stage;
pub use tasks::{create_task, list_tasks, take_overdue, task, update_task, NewTask, TaskRow};
pub use timeline::{event, timeline};

/// A row of `leads`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = leads)]
pub struct LeadRow {
    /// Lead id.
    pub id: String,
    /// Team.
    pub team_id: String,
    /// Primary contact (the first one).
    pub contact_id: String,
    /// `whatsapp`, `widget`, `quick_chat`, `campaign` or `api`.
    pub source: String,
    /// Finer attribution: the quick-link source (`linkedin`), campaign code, ad id.
    pub source_detail: Option<String>,
    /// Owning agent.
    pub owner_id: Option<String>,
    /// Stage key.
    pub stage: String,
    /// Furthest open-stage position reached (won: one past the last open stage).
    pub furthest_position: i32,
    /// `low`, `normal`, `high`.
    pub priority: String,
    /// Score (sum of matched rules' points and manual changes).
    pub score: i32,
    /// Campaign code the lead came with.
    pub campaign_code: Option<String>,
    /// Package name (from the campaign code) or as set by hand.
    pub interested_package: Option<String>,
    /// Free notes.
    pub notes: Option<String>,
    /// 1 while a handover to a human is pending.
    pub handover_pending: i32,
    /// Why (intent, keywords).
    pub handover_reason: Option<String>,
    /// 1 when escalated (handover pending while nobody was assigned).
    pub escalated: i32,
    /// Quick link it came through.
    pub quick_link_id: Option<String>,
    /// 1 once the contact was invited to leave an email or phone.
    pub engagement_invited: i32,
    /// First agent reply, epoch ms.
    pub first_response_at: Option<i64>,
    /// Won or lost, epoch ms.
    pub closed_at: Option<i64>,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// A lead as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct LeadView {
    /// Lead id.
    pub id: String,
    /// Team.
    pub team_id: String,
    /// Every contact of the person (the first is the primary one).
    pub contacts: Vec<ContactView>,
    /// Their conversations, oldest first.
    pub conversation_ids: Vec<String>,
    /// Attribution.
    pub source: String,
    /// Finer attribution.
    pub source_detail: Option<String>,
    /// Owner.
    pub owner_id: Option<String>,
    /// Stage key.
    pub stage: String,
    /// Priority.
    pub priority: String,
    /// Score.
    pub score: i32,
    /// Campaign code.
    pub campaign_code: Option<String>,
    /// Interested package.
    pub interested_package: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Waiting for a human.
    pub handover_pending: bool,
    /// Why.
    pub handover_reason: Option<String>,
    /// Escalated.
    pub escalated: bool,
    /// Open tasks.
    pub open_tasks: i64,
    /// RFC 3339.
    pub first_response_at: Option<String>,
    /// RFC 3339.
    pub closed_at: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// One timeline entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineEntry {
    /// Entry id (event, message or routing-event id).
    pub id: String,
    /// Lead.
    pub lead_id: String,
    /// Conversation, when the entry belongs to one.
    pub conversation_id: Option<String>,
    /// `message_in`, `message_out`, `stage_changed`, `routing_<kind>`, `task_created`, …
    pub kind: String,
    /// `system`, `agent`, `guest` or `bot`.
    pub actor_kind: String,
    /// Agent or contact id.
    pub actor_id: Option<String>,
    /// Kind-specific facts.
    pub detail: Value,
    /// RFC 3339.
    pub at: String,
    /// Epoch ms (for sorting).
    pub at_ms: i64,
    /// Whether recording this event started automation runs (whose first step is
    /// due at once): only then is the scheduler woken. Not part of the JSON.
    #[serde(skip)]
    pub started_runs: bool,
}

/// Who did something.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `system`, `agent`, `guest`, `bot`.
    pub kind: &'a str,
    /// Id.
    pub id: Option<&'a str>,
}

impl Actor<'static> {
    /// The hub itself (rules, automatic moves).
    pub const SYSTEM: Actor<'static> = Actor {
        kind: "system",
        id: None,
    };
}
