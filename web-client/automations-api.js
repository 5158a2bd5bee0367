/*
 * The calls of Settings → Automations (settings-automations.js; issue 17 §5,
 * docs/automations.md) on top of api.js's request(), and the pure words the page
 * shows for a sequence: its trigger as a sentence, a step as a line, a wait as
 * minutes / hours / days. Kept apart from the DOM so the rules are in one place.
 * API: GET/POST /api/automations, GET/PUT/DELETE /api/automations/{id},
 * POST /api/automations/{id}/{enable,disable}; GET /api/tags,
 * GET /api/teams/{id}/pipeline, GET /api/templates for the editor's choices.
 */

const enc = encodeURIComponent;

export function createAutomationsApi(request) {
  return {
    list: (teamId) => request('GET', '/api/automations', { query: { team_id: teamId } }).then((b) => b.automations || []),
    get: (id) => request('GET', `/api/automations/${enc(id)}`),
    create: (body) => request('POST', '/api/automations', { body }),
    update: (id, body) => request('PUT', `/api/automations/${enc(id)}`, { body }),
    remove: (id) => request('DELETE', `/api/automations/${enc(id)}`),
    enable: (id) => request('POST', `/api/automations/${enc(id)}/enable`, { body: {} }),
    disable: (id) => request('POST', `/api/automations/${enc(id)}/disable`, { body: {} }),
    tags: () => request('GET', '/api/tags').then((b) => b.tags || []),
    stages: (teamId) => request('GET', `/api/teams/${enc(teamId)}/pipeline`).then((b) => b.stages || []),
    templates: () => request('GET', '/api/templates').then((b) => b.templates || []),
  };
}

/** The units a wait or a task's due time is written in: [key, word, minutes]. */
export const UNITS = [
  ['minutes', 'minutes', 1],
  ['hours', 'hours', 60],
  ['days', 'days', 1440],
];

/** The largest unit that writes `minutes` as a whole number: {amount, unit}. */
export function splitMinutes(minutes) {
  const m = Number(minutes) || 0;
  if (m > 0 && m % 1440 === 0) return { amount: m / 1440, unit: 'days' };
  if (m > 0 && m % 60 === 0) return { amount: m / 60, unit: 'hours' };
  return { amount: m, unit: 'minutes' };
}

/** `amount` of `unit` as minutes (rounded to a whole minute). */
export function toMinutes(amount, unit) {
  const u = UNITS.find(([k]) => k === unit) || UNITS[0];
  return Math.round(Number(amount) * u[2]);
}

/** "3 days", "1 hour", "90 minutes". */
export function durationWords(minutes) {
  const { amount, unit } = splitMinutes(minutes);
  const word = amount === 1 ? unit.replace(/s$/, '') : unit;
  return `${amount} ${word}`;
}

/** What can start a sequence, as the editor offers it. */
export const TRIGGERS = [
  ['lead_created', 'A lead is created'],
  ['stage_entered', 'A lead enters a stage'],
  ['tag_added', 'A tag is added'],
  ['no_reply', 'The customer has not replied'],
];

/** The kinds of step, as the editor offers them. */
export const STEP_KINDS = [
  ['send', 'Send a WhatsApp message'],
  ['wait', 'Wait'],
  ['add_tag', 'Add a tag'],
  ['create_task', 'Create a task'],
  ['move_stage', 'Move the lead to a stage'],
];

/** A stage key's name in `stages` ([{key, name}]), else the key. */
export function stageName(stages, key) {
  const s = (stages || []).find((x) => x.key === key);
  return s ? s.name : key;
}

/** A tag id's name in `tags` ([{id, name}]), else a placeholder. */
export function tagName(tags, id) {
  const t = (tags || []).find((x) => x.id === id);
  return t ? t.name : 'a deleted tag';
}

/** The trigger as a sentence: "When a lead enters stage Interested". */
export function triggerSummary(trigger, { stages = [], tags = [] } = {}) {
  const t = trigger || {};
  switch (t.kind) {
    case 'lead_created':
      return 'When a lead is created';
    case 'stage_entered':
      return `When a lead enters stage ${stageName(stages, t.stage)}`;
    case 'tag_added':
      return `When tag ${tagName(tags, t.tag_id)} is added`;
    case 'no_reply':
      return `When the customer has not replied for ${t.hours} ${t.hours === 1 ? 'hour' : 'hours'}`;
    default:
      return 'When something happens';
  }
}

/** One step as a short line ("Wait 2 days", "Send text"). */
export function stepSummary(step, { stages = [], tags = [] } = {}) {
  const s = step || {};
  switch (s.kind) {
    case 'wait':
      return `Wait ${durationWords(s.minutes)}`;
    case 'send':
      if (!s.content) return 'Send a message (not chosen yet)';
      return s.content.kind === 'template' ? `Send template ${s.content.name} (${s.content.language})` : 'Send a text';
    case 'add_tag':
      return `Add tag ${tagName(tags, s.tag_id)}`;
    case 'create_task':
      return `Create task “${s.title}”`;
    case 'move_stage':
      return `Move the lead to ${stageName(stages, s.stage)}`;
    default:
      return s.kind || 'Step';
  }
}

/** A new step of `kind` with sensible first values. */
export function newStep(kind, { stages = [], tags = [] } = {}) {
  switch (kind) {
    case 'wait':
      return { kind, minutes: 1440 };
    case 'send':
      return { kind, content: null };
    case 'add_tag':
      return { kind, tag_id: tags.length ? tags[0].id : '' };
    case 'create_task':
      return { kind, title: '', due_in_minutes: 60 };
    case 'move_stage':
      return { kind, stage: stages.length ? stages[0].key : '' };
    default:
      return { kind };
  }
}

/** A run's place as "2 of 4" (`step` is the 0-based next step; a done run ran all). */
export function runStepWords(run, total) {
  const n = Math.max(Number(total) || 0, 0);
  if (run.status === 'done') return `${n} of ${n}`;
  return `${Math.min((Number(run.step) || 0) + 1, Math.max(n, 1))} of ${n}`;
}

/** Run statuses as words, with the design badge each gets. */
export const RUN_STATUS = {
  active: ['Active', 'badge-info'],
  done: ['Done', 'badge-success'],
  stopped: ['Stopped', 'badge-warning'],
  failed: ['Failed', 'badge-danger'],
};
