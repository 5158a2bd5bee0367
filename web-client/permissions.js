/*
 * What the signed-in agent may do, in one place: can(me, 'accounts.manage') reads
 * the permission names the hub puts on the agent (`GET /api/auth/me` and the login
 * answer, `agent.permissions`), and the words the settings screens use for roles
 * and permissions. Screens ask can() instead of comparing role names, so a new
 * role or a changed permission set on the hub needs no change here.
 */

/** Whether `me` (an agent view) holds `permission`. */
export function can(me, permission) {
  return Boolean(me && Array.isArray(me.permissions) && me.permissions.includes(permission));
}

/**
 * The teams `me` may act in, from a list of teams: its own, or every one with
 * teams.all — the same rule the hub's team checks apply.
 */
export function workableTeams(me, teams) {
  const mine = new Set((me && me.team_ids) || []);
  return (teams || []).filter((t) => can(me, 'teams.all') || mine.has(t.id));
}

/** The roles in the order the hub lists them, with a one-line description each. */
export const ROLE_INFO = {
  admin: { label: 'Admin', description: 'Everything: accounts, teams, hub settings and the audit log.' },
  manager: { label: 'Manager', description: 'Leads teams: sees all their conversations, assigns, transfers and supervises.' },
  sales: { label: 'Sales', description: 'Answers conversations and works the leads.' },
  agent: { label: 'Agent', description: 'Answers the conversations of their teams.' },
  marketing: { label: 'Marketing', description: 'Runs campaigns and reads the analytics.' },
};

/** A role as a word. */
export function roleLabel(role) {
  return (ROLE_INFO[role] && ROLE_INFO[role].label) || String(role || '');
}

/** A role's one-line description. */
export function roleDescription(role) {
  return (ROLE_INFO[role] && ROLE_INFO[role].description) || '';
}

const PERMISSION_TEXT = {
  'conversations.read_team': 'See every conversation of their teams',
  'conversations.reply': 'Answer conversations',
  'conversations.assign_others': 'Assign and transfer conversations to others',
  'team.supervise': 'Supervise a team: presence, workload and queue',
  'teams.all': 'Work with every team, not only their own',
  'leads.read': 'See leads',
  'leads.edit': 'Edit leads and tasks',
  'leads.create': 'Bring in new leads',
  'campaigns.manage': 'Create and edit campaigns',
  'campaigns.send': 'Send campaigns',
  'quick_links.manage': 'Manage quick-chat links',
  'settings.team': 'Change team settings (routing, widget, bot, pipeline, knowledge)',
  'analytics.read': 'Read the analytics',
  'accounts.read': 'See agents and teams',
  'accounts.manage': 'Manage agents, roles and teams',
  'audit.read': 'Read the audit log',
};

/** A permission in words (an unknown one as its name). */
export function permissionText(permission) {
  return PERMISSION_TEXT[permission] || permission;
}

/** The roles an admin can give, `[{role, permissions}]`, from `GET /api/roles`. */
export async function loadRoles(request) {
  const { roles } = await request('GET', '/api/roles');
  return roles;
}
