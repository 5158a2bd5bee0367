/*
 * What the signed-in agent may do, in one place: can(me, 'accounts.manage') reads
 * the permission names the hub puts on the agent (`GET /api/auth/me` and the login
 * answer, `agent.permissions`), and the words the settings screens use for roles
 * and permissions. Screens ask can() instead of comparing role names, so a new
 * role or a changed permission set on the hub needs no change here.
 */

// A hub from before named permissions sends only `role`; this keeps the inbox
// usable against it. The hub decides either way: a screen shown by mistake only
// meets a 403.
const LEGACY = {
  admin: null, // everything
  lead: [
    'conversations.read_team',
    'conversations.reply',
    'conversations.assign_others',
    'team.supervise',
    'leads.read',
    'leads.edit',
    'settings.team',
    'analytics.read',
    'accounts.read',
  ],
  agent: ['conversations.reply', 'leads.read'],
};
LEGACY.manager = LEGACY.lead;

/** Whether `me` (an agent view) holds `permission`. */
export function can(me, permission) {
  if (!me) return false;
  if (Array.isArray(me.permissions)) return me.permissions.includes(permission);
  const legacy = LEGACY[me.role];
  return legacy === null || (Array.isArray(legacy) && legacy.includes(permission));
}

/** The roles in the order the hub lists them, with a one-line description each. */
export const ROLE_INFO = {
  admin: { label: 'Admin', description: 'Everything: accounts, teams, hub settings and the audit log.' },
  manager: { label: 'Manager', description: 'Leads teams: sees all their conversations, assigns, transfers and supervises.' },
  sales: { label: 'Sales', description: 'Answers conversations and works the leads.' },
  agent: { label: 'Agent', description: 'Answers the conversations of their teams.' },
  marketing: { label: 'Marketing', description: 'Runs campaigns and reads the analytics.' },
};

/** A role as a word ("lead", the old name of manager, reads as Manager). */
export function roleLabel(role) {
  const key = role === 'lead' ? 'manager' : role;
  return (ROLE_INFO[key] && ROLE_INFO[key].label) || String(role || '');
}

/** A role's one-line description. */
export function roleDescription(role) {
  const key = role === 'lead' ? 'manager' : role;
  return (ROLE_INFO[key] && ROLE_INFO[key].description) || '';
}

const PERMISSION_TEXT = {
  'conversations.read_team': 'See every conversation of their teams',
  'conversations.reply': 'Answer conversations',
  'conversations.assign_others': 'Assign and transfer conversations to others',
  'team.supervise': 'Supervise a team: presence, workload and queue',
  'teams.all': 'Work with every team, not only their own',
  'leads.read': 'See leads',
  'leads.edit': 'Edit leads',
  'campaigns.manage': 'Create and edit campaigns',
  'campaigns.send': 'Send campaigns',
  'quick_links.manage': 'Manage quick-chat links',
  'settings.team': 'Change team settings (routing, widget, bot)',
  'settings.hub': 'Change hub-wide settings',
  'analytics.read': 'Read the analytics',
  'accounts.read': 'See agents and teams',
  'accounts.manage': 'Manage agents, roles and teams',
  'audit.read': 'Read the audit log',
};

/** A permission in words (an unknown one as its name). */
export function permissionText(permission) {
  return PERMISSION_TEXT[permission] || permission;
}

/**
 * The roles an admin can give, `[{role, permissions}]`, from `GET /api/roles`; a
 * hub without it (404) knows only admin, lead and agent, without lists.
 */
export async function loadRoles(request) {
  try {
    const { roles } = await request('GET', '/api/roles');
    if (Array.isArray(roles) && roles.length) return roles;
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  return ['admin', 'lead', 'agent'].map((role) => ({ role, permissions: null }));
}
