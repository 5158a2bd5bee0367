/*
 * HTTP calls of the routing API (offers, team workload, routing settings,
 * hand-back, transfer to another team and the routing audit), with the same conventions as api.js:
 * Bearer token, JSON error bodies turned into ApiError, 401 reported.
 * It also keeps a rough estimate of the server clock (from the Date header)
 * so countdowns to server timestamps stay right on a badly set client clock.
 * Contract: docs/api.md, "Routing".
 */

// The Date header has one-second resolution: smaller differences are noise.
const SKEW_THRESHOLD_MS = 1500;
let skewMs = 0;

/** Milliseconds since the epoch on the server's clock (best estimate). */
export function serverNow() {
  return Date.now() + skewMs;
}

/** Feed for createApi's onResponse: keeps the server clock estimate current. */
export function noteServerDate(res, sentAt) {
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isNaN(date)) return;
  const local = (sentAt + Date.now()) / 2;
  const skew = date + 500 - local; // the header truncates to the second
  skewMs = Math.abs(skew) > SKEW_THRESHOLD_MS ? skew : 0;
}

/**
 * The routing calls, on top of api.js's request wrapper (same token, errors, 401).
 * @param {{request: Function}} api  what createApi returned
 */
export function createRoutingApi({ request }) {
  const enc = encodeURIComponent;
  return {
    offers: () => request('GET', '/api/offers'),
    claim: (offerId) => request('POST', `/api/offers/${enc(offerId)}/claim`),
    workload: (teamId) => request('GET', '/api/team/workload', { query: { team_id: teamId } }),
    teamRouting: (teamId) => request('GET', `/api/teams/${enc(teamId)}/routing`),
    updateTeamRouting: (teamId, body) => request('PUT', `/api/teams/${enc(teamId)}/routing`, { body }),
    setCapacity: (agentId, capacity) => request('PUT', `/api/agents/${enc(agentId)}/capacity`, { body: { capacity } }),
    teams: () => request('GET', '/api/teams'),
    transfer: (conversationId, teamId, agentId) =>
      request('POST', `/api/conversations/${enc(conversationId)}/transfer`, {
        body: agentId ? { team_id: teamId, agent_id: agentId } : { team_id: teamId },
      }),
    requeue: (conversationId) => request('POST', `/api/conversations/${enc(conversationId)}/requeue`),
    analytics: (teamId, since) => request('GET', '/api/marketing/analytics', { query: { team: teamId, since } }),
    audit: (conversationId) => request('GET', `/api/conversations/${enc(conversationId)}/routing`),
  };
}
