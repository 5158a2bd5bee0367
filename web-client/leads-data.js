/*
 * What the Leads and Tasks screens (leads-page.js, leads-board.js, lead-detail.js,
 * tasks-page.js; issue 16, docs/leads-screens.md) share: the agents (for owner
 * names and the owner select), the teams the signed-in agent may see, each team's
 * pipeline (the board's columns), and the pure rules for ordering tasks. Loaded
 * once per session and kept; the lists themselves are always fetched fresh.
 */

import { workableTeams } from './permissions.js';

const enc = encodeURIComponent;

/**
 * @param {{request: Function, me: object}} opts  request: api.js's wrapper
 */
export function createLeadsData({ request, me }) {
  const agentNames = new Map(); // agent id -> name
  let agents = [];
  let teams = [];
  const pipelines = new Map(); // team id -> [{key, name, outcome?}]
  let loading = null;

  /** Agents and teams, once (GET /api/agents, GET /api/teams). */
  function load() {
    if (!loading) {
      loading = Promise.all([request('GET', '/api/agents'), request('GET', '/api/teams')]).then(
        ([a, t]) => {
          agents = (a.agents || []).filter((x) => x.active !== false);
          for (const x of a.agents || []) agentNames.set(x.id, x.name);
          teams = workableTeams(me, t.teams);
          if (!teams.length) teams = t.teams || [];
        },
        (err) => {
          loading = null;
          throw err;
        },
      );
    }
    return loading;
  }

  /** A team's stages, fetched once (GET /api/teams/{id}/pipeline). */
  async function stages(teamId) {
    if (!pipelines.has(teamId)) {
      const cfg = await request('GET', `/api/teams/${enc(teamId)}/pipeline`);
      pipelines.set(teamId, cfg.stages || []);
    }
    return pipelines.get(teamId);
  }

  /** The name of a stage of a team whose pipeline is loaded, else its key. */
  function stageName(teamId, key) {
    const s = (pipelines.get(teamId) || []).find((x) => x.key === key);
    return s ? s.name : key;
  }

  return {
    load,
    stages,
    stageName,
    agentName: (id) => (id === me.id ? 'You' : agentNames.get(id) || 'Agent'),
    /** Active agents of a team (the owner and assignee selects). */
    members: (teamId) => agents.filter((a) => (a.team_ids || []).includes(teamId)),
    teams: () => teams,
    me,
  };
}

/** True for an open task whose due time has passed at `now` (epoch ms). */
export function isOverdue(task, now = Date.now()) {
  return task.status === 'open' && task.due_at < now;
}

/**
 * Tasks in the order the screens show them: open overdue ones first (the most
 * overdue on top), then open ones by due time, then finished ones, newest first.
 */
export function orderTasks(tasks, now = Date.now()) {
  const rank = (t) => (isOverdue(t, now) ? 0 : t.status === 'open' ? 1 : 2);
  return [...tasks].sort((a, b) => rank(a) - rank(b) || (rank(a) === 2 ? b.due_at - a.due_at : a.due_at - b.due_at));
}

/** The name agents see for a lead: its primary contact's. */
export function leadName(lead) {
  const c = (lead.contacts || [])[0] || {};
  return c.display_name || c.name || c.email || c.phone || 'Unnamed lead';
}
