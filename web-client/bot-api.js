/*
 * HTTP calls of the bot API (issue 6, docs/api.md "Bot"): a team's bot settings,
 * rules, versioned prompts, the knowledge base, and a conversation's bot state,
 * pause/resume and reply suggestions. Built on api.js's request wrapper, so the
 * token, the {error, message} bodies (ApiError) and 401 handling are the same.
 */

/** @param {{request: Function}} api  what createApi returned */
export function createBotApi({ request }) {
  const enc = encodeURIComponent;
  return {
    state: (conversationId) => request('GET', `/api/conversations/${enc(conversationId)}/bot`),
    setState: (conversationId, status) =>
      request('PUT', `/api/conversations/${enc(conversationId)}/bot`, { body: { status } }),
    suggest: (conversationId) => request('POST', `/api/conversations/${enc(conversationId)}/bot/suggest`, { body: {} }),

    settings: (teamId) => request('GET', `/api/teams/${enc(teamId)}/bot`),
    saveSettings: (teamId, body) => request('PUT', `/api/teams/${enc(teamId)}/bot`, { body }),

    rules: (teamId) => request('GET', `/api/teams/${enc(teamId)}/bot/rules`),
    createRule: (teamId, body) => request('POST', `/api/teams/${enc(teamId)}/bot/rules`, { body }),
    updateRule: (ruleId, body) => request('PUT', `/api/bot/rules/${enc(ruleId)}`, { body }),
    deleteRule: (ruleId) => request('DELETE', `/api/bot/rules/${enc(ruleId)}`),

    prompts: (teamId) => request('GET', '/api/ai/prompts', { query: { team_id: teamId } }),
    savePrompt: (teamId, promptType, content, version) =>
      request('PUT', '/api/ai/prompts', {
        body: version ? { team_id: teamId, prompt_type: promptType, content, version } : { team_id: teamId, prompt_type: promptType, content },
      }),

    knowledge: (teamId, kind) => request('GET', '/api/knowledge', { query: { team_id: teamId, kind } }),
    doc: (docId) => request('GET', `/api/knowledge/${enc(docId)}`),
    createDoc: (body) => request('POST', '/api/knowledge', { body }),
    updateDoc: (docId, body) => request('PUT', `/api/knowledge/${enc(docId)}`, { body }),
    deleteDoc: (docId) => request('DELETE', `/api/knowledge/${enc(docId)}`),
    searchKnowledge: (teamId, q, k = 5) => request('GET', '/api/knowledge/search', { query: { team_id: teamId, q, k } }),
  };
}
