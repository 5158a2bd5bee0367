//! The permission model (`docs/roles.md`): what each role may do, as data.
//!
//! A [`Role`] is a named set of [`Permission`]s ([`Role::permissions`]); every HTTP
//! route declares the [`Rule`] it needs (`http::endpoints`), every WebSocket frame
//! maps to a permission ([`frame_permission`]), and both are checked through
//! [`require`]. Which *team* a caller may act in is a second, separate question
//! ([`crate::store::accounts::AgentInfo::can_access_team`]): a permission says what
//! kind of action is allowed, membership says where.
//!
//! The matrix is pure data so the route × role test (`tests/tests/e2e/permissions.rs`)
//! and the docs table are generated from the same place the checks read.

use serde::Serialize;

use crate::error::AppError;
use crate::model::Role;
use crate::protocol::ClientFrame;
use crate::store::accounts::AgentInfo;

/// One kind of action. The wire name (`as_str`) is what `GET /api/auth/me` lists
/// and the inbox app checks before showing a screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Permission {
    /// Read the conversations (history, contact, bot state) of one's own teams.
    #[serde(rename = "conversations.read_team")]
    ConversationsReadTeam,
    /// Write in those conversations: send, typing, read receipts, claim offers,
    /// resolve or reopen, requeue one's own, ask the bot for a draft.
    #[serde(rename = "conversations.reply")]
    ConversationsReply,
    /// Assign, transfer or requeue conversations for other agents.
    #[serde(rename = "conversations.assign_others")]
    ConversationsAssignOthers,
    /// See the team live: presence, workload, every conversation's events,
    /// handover alerts, routing decisions.
    #[serde(rename = "team.supervise")]
    TeamSupervise,
    /// Act in every team, not only one's own.
    #[serde(rename = "teams.all")]
    TeamsAll,
    /// Read leads, their timelines and tasks.
    #[serde(rename = "leads.read")]
    LeadsRead,
    /// Change leads (stage, owner, fields), create and update tasks.
    #[serde(rename = "leads.edit")]
    LeadsEdit,
    /// Bring in new leads (`POST /api/leads`: landing pages, imports, campaigns).
    #[serde(rename = "leads.create")]
    LeadsCreate,
    /// Campaign codes and their packages.
    #[serde(rename = "campaigns.manage")]
    CampaignsManage,
    /// Send outbound campaigns (broadcasts, templates).
    #[serde(rename = "campaigns.send")]
    CampaignsSend,
    /// Create and retire one's own quick-chat links.
    #[serde(rename = "quick_links.manage")]
    QuickLinksManage,
    /// A team's routing, widget, bot, pipeline and knowledge settings.
    #[serde(rename = "settings.team")]
    SettingsTeam,
    /// The marketing dashboard and analytics.
    #[serde(rename = "analytics.read")]
    AnalyticsRead,
    /// List agents and teams (names for assignment pickers and the team page).
    #[serde(rename = "accounts.read")]
    AccountsRead,
    /// Create, change, deactivate agents; reset passwords; teams and membership;
    /// capacities.
    #[serde(rename = "accounts.manage")]
    AccountsManage,
    /// Read the audit log.
    #[serde(rename = "audit.read")]
    AuditRead,
}

impl Permission {
    /// Every permission, in the order `docs/roles.md` lists them.
    pub const ALL: [Permission; 16] = [
        Self::ConversationsReadTeam,
        Self::ConversationsReply,
        Self::ConversationsAssignOthers,
        Self::TeamSupervise,
        Self::TeamsAll,
        Self::LeadsRead,
        Self::LeadsEdit,
        Self::LeadsCreate,
        Self::CampaignsManage,
        Self::CampaignsSend,
        Self::QuickLinksManage,
        Self::SettingsTeam,
        Self::AnalyticsRead,
        Self::AccountsRead,
        Self::AccountsManage,
        Self::AuditRead,
    ];

    /// The wire name, e.g. `conversations.read_team`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConversationsReadTeam => "conversations.read_team",
            Self::ConversationsReply => "conversations.reply",
            Self::ConversationsAssignOthers => "conversations.assign_others",
            Self::TeamSupervise => "team.supervise",
            Self::TeamsAll => "teams.all",
            Self::LeadsRead => "leads.read",
            Self::LeadsEdit => "leads.edit",
            Self::LeadsCreate => "leads.create",
            Self::CampaignsManage => "campaigns.manage",
            Self::CampaignsSend => "campaigns.send",
            Self::QuickLinksManage => "quick_links.manage",
            Self::SettingsTeam => "settings.team",
            Self::AnalyticsRead => "analytics.read",
            Self::AccountsRead => "accounts.read",
            Self::AccountsManage => "accounts.manage",
            Self::AuditRead => "audit.read",
        }
    }
}

use Permission as P;

const ADMIN: &[Permission] = &Permission::ALL;

const MANAGER: &[Permission] = &[
    P::ConversationsReadTeam,
    P::ConversationsReply,
    P::ConversationsAssignOthers,
    P::TeamSupervise,
    P::LeadsRead,
    P::LeadsEdit,
    P::LeadsCreate,
    P::CampaignsManage,
    P::CampaignsSend,
    P::QuickLinksManage,
    P::SettingsTeam,
    P::AnalyticsRead,
    P::AccountsRead,
];

const AGENT: &[Permission] = &[
    P::ConversationsReadTeam,
    P::ConversationsReply,
    P::LeadsRead,
    P::LeadsEdit,
    P::LeadsCreate,
    P::QuickLinksManage,
    P::AccountsRead,
];

/// Sales works its own conversations and leads like an agent and follows the
/// funnel it feeds (seed 004's "Sales" role).
const SALES: &[Permission] = &[
    P::ConversationsReadTeam,
    P::ConversationsReply,
    P::LeadsRead,
    P::LeadsEdit,
    P::LeadsCreate,
    P::QuickLinksManage,
    P::AnalyticsRead,
    P::AccountsRead,
];

/// Marketing runs campaigns and reads their results but does not read customers'
/// conversations (seed 004's "Marketing" role; seed 001's dashboard).
const MARKETING: &[Permission] = &[
    P::LeadsRead,
    P::LeadsCreate,
    P::CampaignsManage,
    P::CampaignsSend,
    P::QuickLinksManage,
    P::AnalyticsRead,
    P::AccountsRead,
];

impl Role {
    /// The role's permissions, sorted as [`Permission::ALL`].
    pub fn permissions(self) -> &'static [Permission] {
        match self {
            Role::Admin => ADMIN,
            Role::Manager => MANAGER,
            Role::Agent => AGENT,
            Role::Sales => SALES,
            Role::Marketing => MARKETING,
        }
    }

    /// Whether the role holds `permission`.
    pub fn can(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

/// What an HTTP route asks of its caller, declared once per route in
/// `http::endpoints` and enforced before the handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "permission", rename_all = "snake_case")]
pub enum Rule {
    /// Anyone: login, widget sessions and configuration, the guest contact form.
    /// Such a route authenticates by other means if at all (a password, a
    /// webhook signature) or serves only what a website visitor may see.
    Open,
    /// A guest token (the handler confines it to its own conversation) or an agent
    /// holding the permission.
    GuestOr(Permission),
    /// Only an agent holding the permission; a guest token gets 403.
    Agent(Permission),
    /// Only a guest token (the pre-chat contact form); agents get 403.
    Guest,
    /// Any signed-in agent, whatever the role: reading oneself, changing one's own
    /// password.
    AnyAgent,
}

impl Rule {
    /// The status a caller of `role` (`None`: a guest token) gets from this rule
    /// alone: `None` when it lets the request through to the handler.
    pub fn refusal(self, role: Option<Role>) -> Option<u16> {
        match (self, role) {
            (Rule::Open, _)
            | (Rule::GuestOr(_) | Rule::Guest, None)
            | (Rule::AnyAgent, Some(_)) => None,
            (Rule::Agent(_) | Rule::AnyAgent, None) | (Rule::Guest, Some(_)) => Some(403),
            (Rule::GuestOr(p) | Rule::Agent(p), Some(role)) => (!role.can(p)).then_some(403),
        }
    }
}

/// The one permission check: does `agent`'s role hold `permission`?
///
/// # Errors
/// [`AppError::Forbidden`] naming the missing permission (roles and permissions are
/// documented, so naming it tells the caller nothing secret).
pub fn require(agent: &AgentInfo, permission: Permission) -> Result<(), AppError> {
    if agent.role.can(permission) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "Your role ({}) does not allow this ({}).",
            agent.role.as_str(),
            permission.as_str()
        )))
    }
}

/// The permission an agent needs to send `frame` on `/ws/agent`; `None` for frames
/// every signed-in agent may send (auth, resume, presence, ping). Guests are
/// confined to their conversation by the session instead.
pub fn frame_permission(frame: &ClientFrame) -> Option<Permission> {
    match frame {
        ClientFrame::Send { .. }
        | ClientFrame::Typing { .. }
        | ClientFrame::Read { .. }
        | ClientFrame::Claim { .. } => Some(P::ConversationsReply),
        // An empty resume only subscribes to one's own frames (offers, alerts).
        ClientFrame::Resume { cursors } if !cursors.is_empty() => Some(P::ConversationsReadTeam),
        ClientFrame::Auth { .. }
        | ClientFrame::Resume { .. }
        | ClientFrame::Presence { .. }
        | ClientFrame::Ping => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 5] = [
        Role::Admin,
        Role::Manager,
        Role::Agent,
        Role::Sales,
        Role::Marketing,
    ];

    #[test]
    fn role_sets_are_sorted_and_without_repeats() {
        for role in ROLES {
            let set = role.permissions();
            assert!(set.windows(2).all(|w| w[0] < w[1]), "{role:?}");
        }
    }

    #[test]
    fn only_admins_manage_accounts_read_the_audit_log_or_act_in_every_team() {
        for p in [P::AccountsManage, P::AuditRead, P::TeamsAll] {
            let holders: Vec<Role> = ROLES.into_iter().filter(|r| r.can(p)).collect();
            assert_eq!(holders, [Role::Admin], "{p:?}");
        }
    }

    #[test]
    fn marketing_reads_no_conversation_and_every_role_lists_colleagues() {
        assert!(!Role::Marketing.can(P::ConversationsReadTeam));
        assert!(!Role::Marketing.can(P::ConversationsReply));
        assert!(ROLES.into_iter().all(|r| r.can(P::AccountsRead)));
    }

    #[test]
    fn rules_refuse_by_role() {
        let rule = Rule::Agent(P::SettingsTeam);
        assert_eq!(rule.refusal(Some(Role::Manager)), None);
        assert_eq!(rule.refusal(Some(Role::Agent)), Some(403));
        assert_eq!(rule.refusal(None), Some(403));
        let guest_or = Rule::GuestOr(P::ConversationsReply);
        assert_eq!(guest_or.refusal(None), None);
        assert_eq!(guest_or.refusal(Some(Role::Marketing)), Some(403));
        assert_eq!(Rule::AnyAgent.refusal(Some(Role::Marketing)), None);
        assert_eq!(Rule::Open.refusal(None), None);
    }

    #[test]
    fn wire_names_match_serde() {
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }
}
