/*
 * HTTP calls of the routing API (offers, team workload, routing settings,
 * hand-back and the routing audit), with the same conventions as api.js:
 * Bearer token, JSON error bodies turned into ApiError, 401 reported.
 * It also keeps a rough estimate of the server clock (from the Date header)
 * so countdowns to server timestamps stay right on a badly set client clock.
 * Contract: docs/api.md, "Routing".
 */
import { ApiError } from './api.js';

// The Date header has one-second resolution: smaller differences are noise.
const SKEW_THRESHOLD_MS = 1500;
let skewMs = 0;

/** Milliseconds since the epoch on the server's clock (best estimate). */
export function serverNow() {
  return Date.now() + skewMs;
}

function noteServerDate(res, sentAt) {
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isNaN(date)) return;
  const local = (sentAt + Date.now()) / 2;
  const skew = date + 500 - local; // the header truncates to the second
  skewMs = Math.abs(skew) > SKEW_THRESHOLD_MS ? skew : 0;
}

/**
 * @param {{getToken: () => string|null, onUnauthorized: (err: ApiError) => void}} opts
 */
export function createRoutingApi({ getToken, onUnauthorized }) {
  async function request(method, path, { body, query } = {}) {
    let url = path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
      }
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;

    const sentAt = Date.now();
    let res;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.');
    }
    noteServerDate(res, sentAt);

    let data = null;
    const text = await res.text().catch(() => '');
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const err = new ApiError(
        res.status,
        (data && data.error) || 'http_error',
        (data && data.message) || `Request failed (${res.status} ${res.statusText}).`,
      );
      if (res.status === 401) onUnauthorized(err);
      throw err;
    }
    return data;
  }

  const enc = encodeURIComponent;
  return {
    offers: () => request('GET', '/api/offers'),
    claim: (offerId) => request('POST', `/api/offers/${enc(offerId)}/claim`),
    workload: (teamId) => request('GET', '/api/team/workload', { query: { team_id: teamId } }),
    teamRouting: (teamId) => request('GET', `/api/teams/${enc(teamId)}/routing`),
    updateTeamRouting: (teamId, body) => request('PUT', `/api/teams/${enc(teamId)}/routing`, { body }),
    setCapacity: (agentId, capacity) => request('PUT', `/api/agents/${enc(agentId)}/capacity`, { body: { capacity } }),
    requeue: (conversationId) => request('POST', `/api/conversations/${enc(conversationId)}/requeue`),
    audit: (conversationId) => request('GET', `/api/conversations/${enc(conversationId)}/routing`),
  };
}
