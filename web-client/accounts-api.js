/*
 * The account calls of the settings screens (docs/api.md "Auth and agents",
 * docs/accounts.md) on top of api.js's request(): agents, teams and membership,
 * capacity, working hours, an admin's password reset, one's own password change, the roles.
 */
import { loadRoles } from './permissions.js';

export function createAccountsApi(request) {
  const enc = encodeURIComponent;
  return {
    /** The plain request (settings sections beyond accounts: campaign codes, links). */
    request,
    agents: () => request('GET', '/api/agents'),
    createAgent: (body) => request('POST', '/api/agents', { body }),
    updateAgent: (id, patch) => request('PATCH', `/api/agents/${enc(id)}`, { body: patch }),
    resetPassword: (id, password) => request('POST', `/api/agents/${enc(id)}/password`, { body: { password } }),
    setCapacity: (id, capacity) => request('PUT', `/api/agents/${enc(id)}/capacity`, { body: { capacity } }),
    hours: (id) => request('GET', `/api/agents/${enc(id)}/hours`),
    setHours: (id, body) => request('PUT', `/api/agents/${enc(id)}/hours`, { body }),
    teams: () => request('GET', '/api/teams'),
    createTeam: (name, slug) => request('POST', '/api/teams', { body: { name, slug } }),
    addMember: (teamId, agentId) => request('POST', `/api/teams/${enc(teamId)}/members`, { body: { agent_id: agentId } }),
    removeMember: (teamId, agentId) => request('DELETE', `/api/teams/${enc(teamId)}/members/${enc(agentId)}`),
    workload: () => request('GET', '/api/team/workload'),
    changeOwnPassword: (current, next) =>
      request('POST', '/api/auth/password', { body: { current_password: current, new_password: next } }),
    roles: () => loadRoles(request),
    widget: (teamId) => request('GET', `/api/teams/${enc(teamId)}/widget`),
    setWidget: (teamId, body) => request('PUT', `/api/teams/${enc(teamId)}/widget`, { body }),
    pipeline: (teamId) => request('GET', `/api/teams/${enc(teamId)}/pipeline`),
    setPipeline: (teamId, body) => request('PUT', `/api/teams/${enc(teamId)}/pipeline`, { body }),
  };
}

/** A team slug from its name: lower-case letters, digits and dashes, ≤ 48. */
export function slugify(name) {
  return String(name || '')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48)
    .replace(/-+$/, '');
}

/**
 * The hub's refusal in plain words: the last-admin guard (409) gets its reason and
 * the way out; anything else its own message.
 */
export function explain(err, agentName) {
  if (err && err.status === 409 && /last active admin/i.test(err.message || '')) {
    return `${agentName || 'This agent'} is the last active admin, and someone must be able to manage the hub. Make another agent an admin first.`;
  }
  if (err && err.status === 409 && /^an agent with email/i.test(err.message || '')) {
    return 'Another agent already signs in with this email.';
  }
  if (err && err.status === 409 && /^a team with slug/i.test(err.message || '')) {
    return 'Another team already has this short name.';
  }
  if (err && err.status === 403) return 'You are not allowed to do this.';
  return (err && err.message) || 'Something went wrong.';
}
