/*
 * HTTP API client for the agent inbox: one fetch wrapper that adds the Bearer
 * token, turns the hub's JSON error bodies ({"error","message"}) into ApiError,
 * and reports 401s so the app can return to the login screen.
 * Contract: docs/api.md.
 */

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0 when the hub could not be reached at all
    this.code = code;
  }
}

/**
 * @param {{getToken: () => string|null, onUnauthorized: (err: ApiError) => void,
 *          onResponse?: (res: Response, sentAt: number) => void}} opts
 *   onResponse sees every response that arrived (e.g. to read the Date header).
 */
export function createApi({ getToken, onUnauthorized, onResponse = () => {} }) {
  async function request(method, path, { body, query, auth = true } = {}) {
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
    const token = auth ? getToken() : null;
    if (token) headers.Authorization = `Bearer ${token}`;

    const sentAt = Date.now();
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.');
    }
    onResponse(res, sentAt);

    let data = null;
    const text = await res.text().catch(() => '');
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null; // e.g. a proxy's HTML error page
      }
    }
    if (!res.ok) {
      const err = new ApiError(
        res.status,
        (data && data.error) || 'http_error',
        (data && data.message) || `Request failed (${res.status} ${res.statusText}).`,
      );
      // A 401 on login itself means wrong credentials, not an expired session.
      if (res.status === 401 && auth) onUnauthorized(err);
      throw err;
    }
    return data;
  }

  const enc = encodeURIComponent;
  return {
    /** The wrapper itself, for modules that add their own calls (routing-api.js). */
    request,
    login: (email, password) => request('POST', '/api/auth/login', { body: { email, password }, auth: false }),
    me: () => request('GET', '/api/auth/me'),
    agents: () => request('GET', '/api/agents'),
    teams: () => request('GET', '/api/teams'),
    conversations: (query) => request('GET', '/api/conversations', { query }),
    conversation: (id) => request('GET', `/api/conversations/${enc(id)}`),
    messages: (id, query) => request('GET', `/api/conversations/${enc(id)}/messages`, { query }),
    assign: (id, agentId) => request('POST', `/api/conversations/${enc(id)}/assign`, { body: { agent_id: agentId } }),
    setStatus: (id, status) => request('POST', `/api/conversations/${enc(id)}/status`, { body: { status } }),
  };
}
