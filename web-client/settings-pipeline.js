/*
 * Settings → Pipeline (#/settings/pipeline, issue 16; docs/admin.md, docs/leads.md):
 * a team's lead stages (order, names, closing outcome, follow-up task), its intent
 * rules (keywords → stage, priority, task, handover, score) and the welcome reply,
 * edited as one document and saved in one PUT /api/teams/{id}/pipeline
 * (settings.team), which the hub validates whole and records in the audit log.
 *
 * The form keeps its own copy of the configuration; every control writes into it
 * and the lists redraw from it, so moving or removing a row never loses what was
 * typed in another.
 */
import { workableTeams } from './permissions.js';
import { h, icon } from './dom.js';
import { sectionHead, field, select, formError, savedNote, confirmDialog } from './settings-ui.js';

const OUTCOMES = [['', 'Open stage'], ['won', 'Closes as won'], ['lost', 'Closes as lost']];
const PRIORITIES = [['', 'Keep'], ['low', 'Low'], ['normal', 'Normal'], ['high', 'High']];

/** A stage key from a name: lowercase letters, digits and `_` (the hub's rule). */
function keyOf(name) {
  return String(name || '')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 40);
}

/** Up / down / remove buttons of one row of `list`. */
function rowTools(list, i, redraw, what) {
  const move = (d) => {
    const [item] = list.splice(i, 1);
    list.splice(i + d, 0, item);
    redraw();
  };
  const up = h('button', { type: 'button', className: 'btn btn-small', disabled: i === 0, onclick: () => move(-1) }, '↑', h('span', { className: 'sr-only' }, ` Move ${what} up`));
  const down = h('button', { type: 'button', className: 'btn btn-small', disabled: i === list.length - 1, onclick: () => move(1) }, '↓', h('span', { className: 'sr-only' }, ` Move ${what} down`));
  const remove = h('button', { type: 'button', className: 'btn btn-small', onclick: () => { list.splice(i, 1); redraw(); } }, icon('x'), h('span', { className: 'sr-only' }, ` Remove ${what}`));
  return h('div', { className: 'pl-tools' }, up, down, remove);
}

/** A labelled control bound to `obj[prop]` (`parse` turns the text into the value). */
function bound(obj, prop, { label, control, parse = (v) => v, show = (v) => v ?? '', testid, hint }) {
  const f = field({ label, control, testid, hint });
  f.input.value = show(obj[prop]);
  f.input.addEventListener('input', () => {
    obj[prop] = parse(f.input.value);
  });
  return f.root;
}

const optionalNumber = (v) => (String(v).trim() === '' ? null : Number(v));

/** The Pipeline section. `ctx` as settings.js gives it. */
export function setupPipelineSection(ctx) {
  const { accounts, me } = ctx;
  const head = sectionHead({ title: 'Pipeline', backLabel: 'Back to settings', onBack: () => ctx.back('#/settings'), testid: 'pipeline-title' });
  head.heading.id = 'pipeline-heading';
  const teamSelect = field({ label: 'Team', control: select([]), testid: 'pipeline-team' });
  const stagesEl = h('ol', { className: 'pl-list', dataset: { testid: 'pipeline-stages' } });
  const rulesEl = h('ol', { className: 'pl-list', dataset: { testid: 'pipeline-rules' } });
  const welcome = field({ label: 'Welcome reply', control: h('textarea', { rows: 3, maxLength: 1000 }), testid: 'pipeline-welcome', hint: 'Sent when a first message carries a campaign code the team does not know.' });
  const error = formError('pipeline-error');
  const saved = savedNote('pipeline-saved');
  const save = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'pipeline-save' } }, 'Save pipeline');
  const reset = h('button', { type: 'button', className: 'btn', dataset: { testid: 'pipeline-reset' } }, icon('rotate-ccw'), 'Back to the defaults');
  const addStage = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'pipeline-add-stage' } }, icon('plus'), 'Add stage');
  const addRule = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'pipeline-add-rule' } }, icon('plus'), 'Add intent rule');

  const form = h(
    'form',
    { className: 'pl-form', noValidate: true, attrs: { 'aria-labelledby': 'pipeline-heading' } },
    h('div', { className: 'settings-card' }, teamSelect.root),
    h('section', { className: 'settings-card', attrs: { 'aria-labelledby': 'pl-stages-title' } },
      h('h3', { id: 'pl-stages-title', className: 'sf-card-title' }, 'Stages, in order'),
      h('p', { className: 'sf-hint' }, 'Leads move forward through open stages; closing stages end them. Keys are fixed once saved: leads refer to them.'),
      stagesEl, addStage),
    h('section', { className: 'settings-card', attrs: { 'aria-labelledby': 'pl-rules-title' } },
      h('h3', { id: 'pl-rules-title', className: 'sf-card-title' }, 'Intent rules, first match first'),
      h('p', { className: 'sf-hint' }, 'Keywords are matched as whole words in what the customer writes (not inside links), whatever the case or accents.'),
      rulesEl, addRule),
    h('div', { className: 'settings-card' }, welcome.root),
    error.el,
    h('div', { className: 'sf-actions' }, save, reset, saved.el),
  );
  const element = h('section', { className: 'settings-section', dataset: { testid: 'settings-pipeline' }, attrs: { 'aria-labelledby': 'pipeline-heading' } }, head.root, form);

  let cfg = { stages: [], rules: [], welcome: '' };
  let savedKeys = new Set();

  function drawStages() {
    stagesEl.replaceChildren(
      ...cfg.stages.map((s, i) => {
        const name = bound(s, 'name', { label: 'Name', testid: 'pipeline-stage-name' });
        name.querySelector('input').addEventListener('input', () => {
          if (!savedKeys.has(s.key) || !s.key) s.key = keyOf(s.name);
          keyEl.textContent = s.key;
        });
        const keyEl = h('code', {}, s.key);
        return h('li', { className: 'pl-row', dataset: { testid: 'pipeline-stage' } },
          h('div', { className: 'pl-fields' },
            name,
            bound(s, 'outcome', { label: 'Kind', control: select(OUTCOMES), parse: (v) => v || null }),
            bound(s, 'follow_up_hours', { label: 'Follow-up task after (hours)', control: h('input', { type: 'number', min: 0 }), parse: optionalNumber, hint: 'Empty: none.' })),
          h('div', { className: 'pl-meta' }, h('span', { className: 'sf-hint' }, 'Key '), keyEl, rowTools(cfg.stages, i, drawAll, `stage ${s.name}`)));
      }),
    );
  }

  function drawRules() {
    const stageOptions = [['', 'Keep'], ...cfg.stages.map((s) => [s.key, s.name])];
    rulesEl.replaceChildren(
      ...cfg.rules.map((r, i) => {
        const handover = h('label', { className: 'sf-check' }, h('input', { type: 'checkbox', checked: r.handover }), ' Hand over to a person');
        handover.firstChild.addEventListener('change', () => {
          r.handover = handover.firstChild.checked;
        });
        return h('li', { className: 'pl-row', dataset: { testid: 'pipeline-rule' } },
          h('div', { className: 'pl-fields' },
            bound(r, 'intent', { label: 'Intent', testid: 'pipeline-rule-intent' }),
            bound(r, 'language', { label: 'Language' }),
            h('div', { className: 'pl-wide' }, bound(r, 'keywords', {
              label: 'Keywords',
              testid: 'pipeline-rule-keywords',
              show: (v) => (v || []).join(', '),
              parse: (v) => v.split(',').map((k) => k.trim()).filter(Boolean),
              hint: 'Separated by commas.',
            })),
            bound(r, 'stage', { label: 'Move the lead to', control: select(stageOptions), parse: (v) => v || null }),
            bound(r, 'priority', { label: 'Raise priority to', control: select(PRIORITIES), parse: (v) => v || null }),
            bound(r, 'task', { label: 'Create a task', parse: (v) => v.trim() || null, hint: 'Empty: none.' }),
            bound(r, 'task_due_minutes', { label: 'Task due after (minutes)', control: h('input', { type: 'number', min: 0 }), parse: optionalNumber }),
            bound(r, 'score', { label: 'Score', control: h('input', { type: 'number' }), parse: (v) => Number(v) || 0 }),
            handover),
          h('div', { className: 'pl-meta' }, rowTools(cfg.rules, i, drawAll, `rule ${r.intent}`)));
      }),
    );
  }

  function drawAll() {
    drawStages();
    drawRules();
  }

  function fill(next) {
    cfg = structuredClone(next);
    savedKeys = new Set(cfg.stages.map((s) => s.key));
    welcome.input.value = cfg.welcome;
    drawAll();
  }

  async function load() {
    error.show('');
    saved.show('');
    try {
      fill(await accounts.pipeline(teamSelect.input.value));
    } catch (err) {
      if (err.status !== 401) error.show(err.message);
    }
  }

  async function put(body, note) {
    error.show('');
    save.disabled = true;
    try {
      fill(await accounts.setPipeline(teamSelect.input.value, body));
      saved.show(note);
    } catch (err) {
      if (err.status !== 401) error.show(err.message);
    } finally {
      save.disabled = false;
    }
  }

  welcome.input.addEventListener('input', () => {
    cfg.welcome = welcome.input.value;
  });
  teamSelect.input.addEventListener('change', load);
  addStage.addEventListener('click', () => {
    cfg.stages.push({ key: '', name: '' });
    drawAll();
    stagesEl.lastElementChild.querySelector('input').focus();
  });
  addRule.addEventListener('click', () => {
    cfg.rules.push({ intent: '', language: 'en', keywords: [], handover: false, score: 0 });
    drawAll();
    rulesEl.lastElementChild.querySelector('input').focus();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    put({ stages: cfg.stages, rules: cfg.rules, welcome: cfg.welcome }, 'Saved. New messages follow these rules from now on.');
  });
  reset.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: 'Back to the default pipeline?',
      text: 'The stages, intent rules and welcome reply of this team go back to what a new team gets. Leads keep their stage.',
      confirmLabel: 'Use the defaults',
      danger: true,
    });
    if (ok) put({ reset: true }, 'The defaults are back.');
  });

  let loaded = false;
  return {
    element,
    async route() {
      head.heading.focus({ preventScroll: true });
      if (loaded) return;
      loaded = true;
      try {
        const { teams: all } = await accounts.teams();
        const teams = workableTeams(me, all);
        teamSelect.input.replaceChildren(...teams.map((t) => h('option', { value: t.id }, t.name)));
        if (teams.length) await load();
      } catch (err) {
        loaded = false;
        if (err.status !== 401) error.show(err.message);
      }
    },
    leave() {},
  };
}
