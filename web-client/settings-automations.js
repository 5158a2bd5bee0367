/*
 * Settings → Automations (#/settings/automations, issue 17 §5, docs/automations.md
 * "The Automations page"): a team's automated WhatsApp sequences. Owns
 * - the list (#/settings/automations): one card per sequence with its trigger in
 *   words, step count, run counts, the on/off switch (the hub's refusal, e.g.
 *   "Step 2: choose what to send.", shows on the card) and Edit; the shipped
 *   defaults carry a "Default" badge; a team select when the agent has several;
 * - the editor (#/settings/automations/{id} and …/new): name, trigger and its
 *   stage / tag / hours, stop-on-reply, and the steps — wait, send (an approved
 *   template with its `{{n}}` mapped as in the Broadcasts wizard and a live
 *   preview, or text for open 24-hour windows), add tag, create task, move stage —
 *   added, removed and reordered; save, delete (not the defaults);
 * - the recent runs of one sequence (contact, status, step, reason, next step).
 * The editor keeps its own copy of the sequence; every control writes into it and
 * the step list redraws from it. campaigns.manage only (settings.js).
 */
import { h, icon } from './dom.js';
import { workableTeams } from './permissions.js';
import { formatFull, formatWhen } from './format.js';
import { toastError } from './toast.js';
import { templateBubble } from './template-picker.js';
import { SOURCES } from './broadcast-wizard.js';
import { sectionHead, field, select, formError, savedNote, confirmDialog } from './settings-ui.js';
import {
  createAutomationsApi,
  UNITS,
  TRIGGERS,
  STEP_KINDS,
  splitMinutes,
  toMinutes,
  triggerSummary,
  newStep,
  runStepWords,
  RUN_STATUS,
} from './automations-api.js';

/** Sample contact the template preview fills variables with. */
const SAMPLE = { contact_name: 'Budi Santoso', contact_phone: '+62 812 3456 7890', campaign_code: 'UMR-0325' };

/** A template a sequence can send: approved, body variables only (as broadcasts). */
function sendable(t) {
  const s = t.shape || {};
  const headerVars = s.header && s.header.format === 'text' && s.header.variables > 0;
  return t.sendable && !t.deleted && !headerVars && !(s.variable_buttons || []).length;
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/**
 * A select of `options` set to `value`; a saved value no longer offered (a tag
 * deleted since, a stage gone from the pipeline) stays as a choice named `missing`,
 * so the editor never shows another one than the hub has.
 */
function selectKeeping(options, value, missing) {
  const known = !value || options.some(([v]) => v === value);
  return select(known ? options : [[value, missing], ...options], value);
}

/** The Automations section. `ctx` as settings.js gives it. */
export function setupAutomationsSection(ctx) {
  const { accounts, me, signal } = ctx;
  const api = createAutomationsApi(accounts.request);
  let teams = [];
  let teamId = '';
  let tags = [];
  let templates = null; // loaded when an editor first needs them
  const stagesOf = new Map(); // team id -> [{key, name}]
  let automations = [];
  let loaded = false;
  let token = 0; // the newest route; older answers are dropped

  // ------------------------------------------------------------------ list view
  const newBtn = h(
    'button',
    { type: 'button', className: 'btn btn-primary', dataset: { testid: 'au-new' }, onclick: () => ctx.navigate('#/settings/automations/new') },
    icon('plus'),
    'New automation',
  );
  const head = sectionHead({ title: 'Automations', backLabel: 'Back to settings', onBack: () => ctx.back('#/settings'), actions: [newBtn], testid: 'automations-title' });
  head.heading.id = 'automations-heading';
  const teamField = field({ label: 'Team', control: select([]), testid: 'au-team' });
  teamField.root.hidden = true;
  const notice = savedNote('au-notice');
  const listError = formError('au-list-error');
  const listEl = h('ul', { className: 'au-list', dataset: { testid: 'au-list' }, attrs: { 'aria-label': 'Automations' } });
  const listView = h(
    'div',
    { className: 'au-list-view' },
    head.root,
    h(
      'p',
      { className: 'sf-note' },
      icon('info'),
      h('span', {}, 'Sequences of WhatsApp messages, waits, tags, tasks and stage moves that start by themselves for each contact. Every team gets three defaults, turned off.'),
    ),
    teamField.root,
    notice.el,
    listError.el,
    listEl,
  );
  const editorHost = h('div', { className: 'au-editor-host', hidden: true });
  const element = h(
    'section',
    { className: 'settings-section au-section', dataset: { testid: 'settings-automations' }, attrs: { 'aria-labelledby': 'automations-heading' } },
    listView,
    editorHost,
  );

  teamField.input.addEventListener('change', async () => {
    teamId = teamField.input.value;
    notice.show('');
    await loadList();
  });

  const choices = (team) => ({ stages: stagesOf.get(team) || [], tags });

  async function stagesFor(team) {
    if (!stagesOf.has(team)) stagesOf.set(team, await api.stages(team));
    return stagesOf.get(team);
  }

  /** Teams and tags, once per visit. */
  async function loadBasics() {
    if (loaded) return;
    const { teams: all } = await accounts.teams();
    teams = workableTeams(me, all);
    if (!teams.some((t) => t.id === teamId)) teamId = teams.length ? teams[0].id : '';
    teamField.input.replaceChildren(...teams.map((t) => h('option', { value: t.id }, t.name)));
    teamField.input.value = teamId;
    teamField.root.hidden = teams.length < 2;
    tags = await api.tags();
    loaded = true;
  }

  async function loadList() {
    listError.show('');
    // The cards on show are the last visit's until the answer comes: "loading".
    listEl.dataset.state = 'loading';
    if (!teamId) {
      listEl.replaceChildren(h('li', { className: 'empty' }, 'You are in no team: automations belong to a team.'));
      return;
    }
    try {
      const [list] = await Promise.all([api.list(teamId), stagesFor(teamId)]);
      if (signal.aborted) return;
      automations = list;
      renderList();
      listEl.dataset.state = 'ready';
    } catch (err) {
      if (err.status !== 401) listError.show(err.message || 'The automations could not be loaded.');
    }
  }

  function renderList() {
    listEl.replaceChildren(...(automations.length ? automations.map(card) : [h('li', { className: 'empty' }, 'No automations in this team yet.')]));
  }

  function runsWords(r) {
    const x = r || {};
    return `${x.active || 0} active · ${x.done || 0} done · ${x.stopped || 0} stopped · ${x.failed || 0} failed`;
  }

  function card(a) {
    const steps = a.steps || [];
    const err = h('p', { className: 'sf-error au-switch-error', hidden: true, attrs: { role: 'alert' }, dataset: { testid: 'au-switch-error' } });
    const toggle = h('input', { type: 'checkbox', checked: a.enabled, attrs: { role: 'switch' }, dataset: { testid: 'au-enabled' } });
    const sw = h('label', { className: 'au-switch' }, toggle, h('span', { className: 'au-switch-track', attrs: { 'aria-hidden': 'true' } }), h('span', {}, 'On'), h('span', { className: 'sr-only' }, `: ${a.name}`));
    toggle.addEventListener('change', () => setEnabled(a, toggle, err));
    return h(
      'li',
      { className: `settings-card au-card${a.enabled ? ' is-on' : ''}`, dataset: { testid: 'au-card', id: a.id, preset: a.preset || '', enabled: String(a.enabled) } },
      h(
        'div',
        { className: 'au-card-main' },
        h(
          'h3',
          { className: 'au-card-title' },
          h('span', { dataset: { testid: 'au-name' } }, a.name),
          a.preset ? h('span', { className: 'badge badge-accent', dataset: { testid: 'au-default' } }, 'Default') : null,
          a.enabled
            ? h('span', { className: 'badge badge-success', dataset: { testid: 'au-state' } }, icon('check'), 'On')
            : h('span', { className: 'badge', dataset: { testid: 'au-state' } }, 'Off'),
        ),
        h('p', { className: 'au-trigger', dataset: { testid: 'au-trigger' } }, icon('play'), h('span', {}, triggerSummary(a.trigger, choices(a.team_id)))),
        h(
          'p',
          { className: 'au-meta' },
          h('span', { dataset: { testid: 'au-step-count' } }, plural(steps.length, 'step', 'steps')),
          a.stop_on_reply ? ' · stops when the customer replies' : '',
        ),
        h('p', { className: 'au-meta', dataset: { testid: 'au-runs' } }, `Runs: ${runsWords(a.runs)}`),
        err,
      ),
      h(
        'div',
        { className: 'au-card-actions' },
        sw,
        h(
          'button',
          { type: 'button', className: 'btn', dataset: { testid: 'au-edit' }, onclick: () => ctx.navigate(`#/settings/automations/${encodeURIComponent(a.id)}`) },
          'Edit',
          h('span', { className: 'sr-only' }, ` ${a.name}`),
        ),
      ),
    );
  }

  async function setEnabled(a, toggle, err) {
    const on = toggle.checked;
    err.hidden = true;
    toggle.disabled = true;
    try {
      const fresh = on ? await api.enable(a.id) : await api.disable(a.id);
      automations = automations.map((x) => (x.id === a.id ? fresh : x));
      notice.show(`${fresh.name} is ${fresh.enabled ? 'on' : 'off'}.`);
      renderList();
      const again = listEl.querySelector(`[data-id="${CSS.escape(a.id)}"] [data-testid=au-enabled]`);
      if (again) again.focus();
    } catch (e) {
      toggle.checked = !on;
      toggle.disabled = false;
      if (e.status === 401) return;
      err.textContent = e.message || 'The automation could not be switched.';
      err.hidden = false;
    }
  }

  // ---------------------------------------------------------------- editor view
  async function openEditor(id, mine) {
    editorHost.replaceChildren(h('p', { className: 'sf-muted' }, 'Loading…'));
    let a = null;
    try {
      if (id !== 'new') a = await api.get(id);
      if (templates === null) templates = (await api.templates().catch(() => [])).filter(sendable);
      await stagesFor(a ? a.team_id : teamId);
    } catch (err) {
      if (mine !== token) return;
      if (err.status === 401) return;
      const back = sectionHead({ title: 'Automation not found', backLabel: 'All automations', onBack: () => ctx.navigate('#/settings/automations') });
      editorHost.replaceChildren(back.root, h('p', { className: 'settings-card' }, err.message || 'It could not be loaded. ', h('a', { href: '#/settings/automations' }, 'See all automations')));
      return;
    }
    if (mine !== token) return;
    editorHost.replaceChildren(...buildEditor(a));
    const heading = editorHost.querySelector('.settings-heading');
    if (heading) heading.focus({ preventScroll: true });
  }

  /** The editor's parts for automation `a` (null: a new one in the current team). */
  function buildEditor(a) {
    const team = a ? a.team_id : teamId;
    const known = () => choices(team);
    const draft = a
      ? structuredClone({ name: a.name, trigger: a.trigger, stop_on_reply: a.stop_on_reply, steps: a.steps })
      : { name: '', trigger: { kind: 'lead_created' }, stop_on_reply: true, steps: [newStep('send')] };
    // What the controls remember beyond the stored value: a wait's unit, a send's mode.
    const units = new WeakMap();
    const modes = new WeakMap();
    const title = a ? a.name : 'New automation';

    const backBtn = h('button', { type: 'button', className: 'btn btn-ghost', dataset: { testid: 'au-back' }, onclick: () => ctx.navigate('#/settings/automations') }, icon('arrow-left'), 'All automations');
    const edHead = sectionHead({ title: a ? `Edit “${title}”` : title, backLabel: 'All automations', onBack: () => ctx.navigate('#/settings/automations'), testid: 'au-editor-title' });
    const badges = h(
      'p',
      { className: 'au-badges' },
      a && a.preset ? h('span', { className: 'badge badge-accent' }, 'Default') : null,
      a ? (a.enabled ? h('span', { className: 'badge badge-success' }, icon('check'), 'On') : h('span', { className: 'badge' }, 'Off')) : null,
      a && a.enabled ? h('span', { className: 'sf-muted' }, 'It is on: saving checks that every step is complete.') : null,
    );

    // Name.
    const name = field({ label: 'Name', value: draft.name, testid: 'au-name-input', required: true, attrs: { maxlength: '80' }, hint: 'For your team; customers do not see it.' });
    name.input.addEventListener('input', () => {
      draft.name = name.input.value;
      name.setError('');
    });

    // Trigger.
    const triggerKind = field({ label: 'Starts when', control: select(TRIGGERS, draft.trigger.kind), testid: 'au-trigger-kind' });
    const triggerArg = h('div', { className: 'au-trigger-arg' });
    const stopOnReply = h('input', { type: 'checkbox', checked: draft.stop_on_reply, dataset: { testid: 'au-stop-on-reply' } });
    stopOnReply.addEventListener('change', () => {
      draft.stop_on_reply = stopOnReply.checked;
    });
    function drawTriggerArg() {
      const t = draft.trigger;
      const { stages } = known();
      let f = null;
      if (t.kind === 'stage_entered') {
        f = field({ label: 'Stage', control: selectKeeping(stages.map((s) => [s.key, s.name]), t.stage, `${t.stage} (not in the pipeline)`), testid: 'au-trigger-stage', hint: stages.length ? 'From the team’s pipeline.' : 'This team’s pipeline has no stages.' });
        f.input.addEventListener('change', () => {
          t.stage = f.input.value;
        });
      } else if (t.kind === 'tag_added') {
        f = field({ label: 'Tag', control: selectKeeping(tags.map((x) => [x.id, x.name]), t.tag_id, 'A deleted tag'), testid: 'au-trigger-tag', hint: tags.length ? 'Put on a contact by hand, in bulk or by another automation.' : 'No tags yet: create one on the Contacts page (Tags).' });
        f.input.addEventListener('change', () => {
          t.tag_id = f.input.value;
        });
      } else if (t.kind === 'no_reply') {
        f = field({ label: 'Hours without a reply', type: 'number', value: String(t.hours ?? 24), testid: 'au-trigger-hours', attrs: { min: '1', max: '720', inputmode: 'numeric' }, hint: 'Counted from the team’s last WhatsApp message (1–720).' });
        f.input.addEventListener('input', () => {
          t.hours = Number(f.input.value);
        });
      }
      triggerArg.replaceChildren(...(f ? [f.root] : []));
    }
    triggerKind.input.addEventListener('change', () => {
      const kind = triggerKind.input.value;
      const { stages } = known();
      draft.trigger =
        kind === 'stage_entered'
          ? { kind, stage: stages.length ? stages[0].key : '' }
          : kind === 'tag_added'
            ? { kind, tag_id: tags.length ? tags[0].id : '' }
            : kind === 'no_reply'
              ? { kind, hours: 24 }
              : { kind };
      drawTriggerArg();
    });
    drawTriggerArg();

    // Steps.
    const stepsEl = h('ol', { className: 'pl-list au-steps', dataset: { testid: 'au-steps' } });
    const addKind = field({ label: 'New step', control: select(STEP_KINDS, 'send'), testid: 'au-add-kind' });
    const addBtn = h('button', { type: 'button', className: 'btn', dataset: { testid: 'au-add-step' } }, icon('plus'), 'Add step');
    addBtn.addEventListener('click', () => {
      draft.steps.push(newStep(addKind.input.value, known()));
      drawSteps();
      const last = stepsEl.lastElementChild;
      const first = last && last.querySelector('input, select, textarea');
      if (first) first.focus();
    });

    function tools(i) {
      const n = i + 1;
      const move = (d) => {
        const [s] = draft.steps.splice(i, 1);
        draft.steps.splice(i + d, 0, s);
        drawSteps();
      };
      return h(
        'div',
        { className: 'pl-tools au-tools' },
        h('button', { type: 'button', className: 'btn btn-small', disabled: i === 0, dataset: { testid: 'au-step-up' }, onclick: () => move(-1) }, 'Up', h('span', { className: 'sr-only' }, ` (step ${n})`)),
        h('button', { type: 'button', className: 'btn btn-small', disabled: i === draft.steps.length - 1, dataset: { testid: 'au-step-down' }, onclick: () => move(1) }, 'Down', h('span', { className: 'sr-only' }, ` (step ${n})`)),
        h(
          'button',
          {
            type: 'button',
            className: 'btn btn-small btn-danger',
            dataset: { testid: 'au-step-remove' },
            onclick: () => {
              draft.steps.splice(i, 1);
              drawSteps();
            },
          },
          icon('x'),
          'Remove',
          h('span', { className: 'sr-only' }, ` step ${n}`),
        ),
      );
    }

    /** A number + unit pair bound to `step[prop]` (minutes). */
    function duration(step, prop, { label, testid, min }) {
      const first = units.get(step) || splitMinutes(step[prop]);
      const amount = field({ label, type: 'number', value: String(first.amount), testid, attrs: { min: String(min), inputmode: 'numeric' } });
      const unit = select(UNITS.map(([k, w]) => [k, w]), first.unit);
      unit.id = `${amount.input.id}-unit`;
      unit.dataset.testid = `${testid}-unit`;
      const sync = () => {
        units.set(step, { amount: amount.input.value, unit: unit.value });
        step[prop] = toMinutes(amount.input.value, unit.value);
      };
      amount.input.addEventListener('input', sync);
      unit.addEventListener('change', sync);
      return h('div', { className: 'au-duration' }, amount.root, h('div', { className: 'sf-field' }, h('label', { htmlFor: unit.id }, 'Unit'), unit));
    }

    function sendFields(step) {
      const mode = modes.has(step) ? modes.get(step) : step.content ? step.content.kind : '';
      const what = field({
        label: 'What to send',
        control: select([['', 'Not chosen yet'], ['template', 'Approved template'], ['text', 'Text']], mode),
        testid: 'au-send-kind',
      });
      const box = h('div', { className: 'au-send' });
      what.input.addEventListener('change', () => {
        modes.set(step, what.input.value);
        step.content = what.input.value === 'text' ? { kind: 'text', body: step.content && step.content.kind === 'text' ? step.content.body : '' } : null;
        drawSend();
      });
      function drawSend() {
        const m = modes.has(step) ? modes.get(step) : step.content ? step.content.kind : '';
        if (m === 'text') box.replaceChildren(...textFields(step));
        else if (m === 'template') box.replaceChildren(...templateFields(step));
        else box.replaceChildren(h('p', { className: 'sf-note', dataset: { testid: 'au-send-unchosen' } }, icon('info'), h('span', {}, 'Choose what to send: the automation cannot be turned on before.')));
      }
      drawSend();
      return [what.root, h('div', { className: 'pl-wide' }, box)];
    }

    function textFields(step) {
      const area = h('textarea', { className: 'input', rows: 4, attrs: { maxlength: '4096' } });
      area.value = step.content && step.content.kind === 'text' ? step.content.body : '';
      const f = field({ label: 'Message', control: area, testid: 'au-text', hint: 'Sent only while the customer’s 24-hour window is open (they wrote in the last 24 hours); otherwise the step is skipped.' });
      area.addEventListener('input', () => {
        step.content = { kind: 'text', body: area.value };
      });
      return [f.root];
    }

    function templateFields(step) {
      const c = step.content && step.content.kind === 'template' ? step.content : null;
      const list = templates || [];
      const seen = new Set();
      const usable = list.filter((t) => {
        const k = `${t.name}|${t.language}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
      const savedKey = c ? `${c.name}|${c.language}` : '';
      const offered = usable.map((t) => [`${t.name}|${t.language}`, `${t.name} (${t.language}, ${String(t.category || '').toLowerCase()})`]);
      // A saved template that is not approved now stays chosen (turning on checks it).
      if (savedKey && !offered.some(([k]) => k === savedKey)) offered.unshift([savedKey, `${c.name} (${c.language}, not approved now)`]);
      const choice = field({
        label: 'Approved template',
        control: select([['', 'Choose a template'], ...offered], savedKey),
        testid: 'au-template',
        hint: usable.length ? 'Templates reach the customer whatever their last message.' : 'No approved template yet: sync templates in Settings → Message templates.',
      });
      const mapping = h('div', { className: 'bc-vars', dataset: { testid: 'au-vars' } });
      const bubble = h('div', { className: 'bc-preview', attrs: { 'aria-live': 'polite' }, dataset: { testid: 'au-preview' } });
      const chosen = () => usable.find((t) => `${t.name}|${t.language}` === choice.input.value);
      const paintPreview = () => {
        const t = chosen();
        if (!t || !step.content) {
          bubble.replaceChildren();
          return;
        }
        const values = step.content.variables.map((v) => (v.source === 'text' ? v.value || '' : SAMPLE[v.source]));
        bubble.replaceChildren(h('p', { className: 'bc-preview-label' }, 'Preview (with sample contact details)'), templateBubble(t.shape, { body: values, media: step.content.header_media_url || '' }));
      };
      const paintMapping = () => {
        const t = chosen();
        if (!t && savedKey && choice.input.value === savedKey) {
          step.content = c;
          mapping.replaceChildren(h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'This template is not among the approved ones the hub has now: its variables stay as saved. Choose another, or sync templates.')));
          paintPreview();
          return;
        }
        if (!t) {
          step.content = null;
          mapping.replaceChildren();
          paintPreview();
          return;
        }
        const same = step.content && step.content.kind === 'template' && step.content.name === t.name && step.content.language === t.language;
        const old = same ? step.content.variables || [] : [];
        const oldMedia = same ? step.content.header_media_url : undefined;
        step.content = {
          kind: 'template',
          name: t.name,
          language: t.language,
          variables: Array.from({ length: t.shape.body_variables || 0 }, (_, i) => old[i] || (i === 0 ? { source: 'contact_name' } : { source: 'text', value: '' })),
        };
        if (oldMedia) step.content.header_media_url = oldMedia;
        const rows = step.content.variables.map((v, i) => {
          const label = `Body {{${i + 1}}}`;
          const from = select(SOURCES, v.source);
          from.setAttribute('aria-label', `${label}: fill from`);
          from.dataset.testid = 'au-var-source';
          const text = h('input', { type: 'text', value: v.value || '', className: 'bc-var-text', attrs: { 'aria-label': `${label}: fixed text`, maxlength: '1024' }, dataset: { testid: 'au-var-text' } });
          const sync = () => {
            text.hidden = from.value !== 'text';
            step.content.variables[i] = from.value === 'text' ? { source: 'text', value: text.value } : { source: from.value };
            paintPreview();
          };
          from.addEventListener('change', sync);
          text.addEventListener('input', sync);
          text.hidden = from.value !== 'text';
          return h('div', { className: 'bc-var', dataset: { testid: 'au-var' } }, h('span', { className: 'bc-var-label' }, label), from, text);
        });
        if (t.shape.header && t.shape.header.format === 'media') {
          const media = field({ label: `Header ${t.shape.header.kind} link`, type: 'url', testid: 'au-media', value: step.content.header_media_url || '', hint: 'The same for every contact (https://…).' });
          media.input.addEventListener('input', () => {
            const v = media.input.value.trim();
            if (v) step.content.header_media_url = v;
            else delete step.content.header_media_url;
            paintPreview();
          });
          rows.push(media.root);
        }
        mapping.replaceChildren(
          rows.length ? h('p', { className: 'sf-muted' }, 'Fill each variable for every contact. A contact without a name or campaign code for a variable that needs one is skipped.') : h('p', { className: 'sf-muted' }, 'This template has no variables.'),
          ...rows,
        );
        paintPreview();
      };
      choice.input.addEventListener('change', paintMapping);
      paintMapping();
      return [choice.root, h('div', { className: 'bc-content' }, mapping, bubble)];
    }

    function stepFields(step) {
      const { stages } = known();
      switch (step.kind) {
        case 'wait':
          return [duration(step, 'minutes', { label: 'Wait for', testid: 'au-wait', min: 1 })];
        case 'send':
          return sendFields(step);
        case 'add_tag': {
          const f = field({ label: 'Tag', control: selectKeeping(tags.map((t) => [t.id, t.name]), step.tag_id, 'A deleted tag'), testid: 'au-tag', hint: tags.length ? '' : 'No tags yet: create one on the Contacts page (Tags).' });
          f.input.addEventListener('change', () => {
            step.tag_id = f.input.value;
          });
          return [f.root];
        }
        case 'create_task': {
          const t = field({ label: 'Task title', value: step.title, testid: 'au-task-title', attrs: { maxlength: '200' }, hint: 'For the lead’s owner.' });
          t.input.addEventListener('input', () => {
            step.title = t.input.value;
          });
          return [t.root, duration(step, 'due_in_minutes', { label: 'Due in', testid: 'au-task-due', min: 0 })];
        }
        case 'move_stage': {
          const f = field({ label: 'Stage', control: selectKeeping(stages.map((s) => [s.key, s.name]), step.stage, `${step.stage} (not in the pipeline)`), testid: 'au-stage' });
          f.input.addEventListener('change', () => {
            step.stage = f.input.value;
          });
          return [f.root];
        }
        default:
          return [h('p', { className: 'sf-muted' }, `A step of kind ${step.kind}.`)];
      }
    }

    function drawSteps() {
      stepsEl.replaceChildren(
        ...draft.steps.map((step, i) => {
          const kindWords = (STEP_KINDS.find(([k]) => k === step.kind) || [step.kind, step.kind])[1];
          return h(
            'li',
            { className: 'pl-row au-step', dataset: { testid: 'au-step', kind: step.kind } },
            h('h4', { className: 'au-step-title' }, `Step ${i + 1}: ${kindWords}`),
            h('div', { className: 'pl-fields' }, ...stepFields(step)),
            h('div', { className: 'pl-meta' }, tools(i)),
          );
        }),
      );
      if (!draft.steps.length) stepsEl.replaceChildren(h('li', { className: 'sf-muted' }, 'No steps yet: add one below.'));
    }
    drawSteps();

    // Save / delete.
    const error = formError('au-error');
    const saveBtn = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'au-save' } }, icon('check'), a ? 'Save changes' : 'Create automation');
    const cancelBtn = h('button', { type: 'button', className: 'btn', dataset: { testid: 'au-cancel' }, onclick: () => ctx.navigate('#/settings/automations') }, 'Cancel');
    const deleteBtn =
      a && !a.preset
        ? h('button', { type: 'button', className: 'btn btn-danger', dataset: { testid: 'au-delete' }, onclick: () => remove() }, 'Delete')
        : null;
    const form = h(
      'form',
      { className: 'au-form', noValidate: true, dataset: { testid: 'au-editor' }, attrs: { 'aria-labelledby': 'au-editor-heading' } },
      h('div', { className: 'settings-card' }, name.root),
      h(
        'section',
        { className: 'settings-card', attrs: { 'aria-labelledby': 'au-trigger-title' } },
        h('h3', { id: 'au-trigger-title', className: 'sf-card-title' }, 'Trigger'),
        h('div', { className: 'sf-grid' }, triggerKind.root, triggerArg),
        h('label', { className: 'sf-check' }, stopOnReply, h('span', {}, 'Stop when the customer replies')),
      ),
      h(
        'section',
        { className: 'settings-card', attrs: { 'aria-labelledby': 'au-steps-title' } },
        h('h3', { id: 'au-steps-title', className: 'sf-card-title' }, 'Steps, in order'),
        h('p', { className: 'sf-hint' }, 'Each contact goes through the steps one after the other. Messages go from the WhatsApp number of the contact’s conversation in this team; opted-out contacts get none.'),
        stepsEl,
        h('div', { className: 'au-add' }, addKind.root, addBtn),
      ),
      error.el,
      h('div', { className: 'sf-actions' }, saveBtn, cancelBtn, h('span', { className: 'spacer' }), deleteBtn),
    );
    edHead.heading.id = 'au-editor-heading';
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.show('');
      const n = draft.name.trim();
      name.setError(n ? '' : 'Give the automation a name.');
      if (!n) {
        name.input.focus();
        return;
      }
      if (!draft.steps.length) {
        error.show('Add at least one step.');
        return;
      }
      const body = { name: n, trigger: draft.trigger, stop_on_reply: draft.stop_on_reply, steps: draft.steps };
      saveBtn.disabled = true;
      try {
        const saved = a ? await api.update(a.id, body) : await api.create({ ...body, team_id: team });
        ctx.navigate('#/settings/automations', { notice: a ? `Saved “${saved.name}”.` : `Created “${saved.name}”. Turn it on when it is ready.` });
      } catch (err) {
        if (err.status !== 401) error.show(err.message || 'The automation could not be saved.');
      } finally {
        saveBtn.disabled = false;
      }
    });

    async function remove() {
      const ok = await confirmDialog({
        title: `Delete “${a.name}”?`,
        text: 'Its runs stop and it is gone for good. To pause it instead, turn it off.',
        confirmLabel: 'Delete automation',
        danger: true,
        testid: 'au-confirm',
      });
      if (!ok) return;
      try {
        await api.remove(a.id);
        ctx.navigate('#/settings/automations', { notice: `Deleted “${a.name}”.` });
      } catch (err) {
        if (err.status !== 401) error.show(err.message || 'The automation could not be deleted.');
      }
    }

    const parts = [h('div', { className: 'au-back-row' }, backBtn), edHead.root, badges, form];
    if (a) parts.push(runsPanel(a));
    return parts;
  }

  /** The recent runs of `a`, with a button to fetch them again. */
  function runsPanel(a) {
    const body = h('div', { className: 'au-runs-body' });
    const refresh = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'au-runs-refresh' } }, icon('rotate-ccw'), 'Refresh');
    const counts = h('p', { className: 'sf-muted', dataset: { testid: 'au-runs-counts' } });
    const total = () => (a.steps || []).length;
    function paint(x) {
      const runs = x.recent_runs || [];
      const r = x.runs || {};
      counts.textContent = `${r.active || 0} active · ${r.done || 0} done · ${r.stopped || 0} stopped · ${r.failed || 0} failed`;
      if (!runs.length) {
        body.replaceChildren(h('p', { className: 'sf-muted', dataset: { testid: 'au-runs-empty' } }, 'No runs yet. Runs start when the trigger happens while the automation is on.'));
        return;
      }
      const cell = (label, ...content) => h('td', { dataset: { label } }, ...content);
      body.replaceChildren(
        h(
          'table',
          { className: 'au-runs-table', dataset: { testid: 'au-runs' } },
          h('caption', { className: 'sr-only' }, `Newest ${runs.length} runs of ${a.name}`),
          h('thead', {}, h('tr', {}, ...['Contact', 'Status', 'Step', 'Reason', 'Next step'].map((c) => h('th', { scope: 'col' }, c)))),
          h(
            'tbody',
            {},
            ...runs.map((run) => {
              const [word, badge] = RUN_STATUS[run.status] || [run.status, ''];
              return h(
                'tr',
                { dataset: { testid: 'au-run', status: run.status, contact: run.contact_id } },
                cell('Contact', h('a', { href: `#/contacts/c/${encodeURIComponent(run.contact_id)}` }, run.contact_name || 'Unnamed contact')),
                cell('Status', h('span', { className: `badge ${badge}`, dataset: { testid: 'au-run-status' } }, word)),
                cell('Step', h('span', { dataset: { testid: 'au-run-step' } }, runStepWords(run, total()))),
                cell('Reason', run.reason || '—'),
                cell('Next step', run.next_at ? h('time', { dateTime: run.next_at, title: formatFull(run.next_at) }, formatWhen(run.next_at)) : '—'),
              );
            }),
          ),
        ),
      );
    }
    paint(a);
    refresh.addEventListener('click', async () => {
      refresh.disabled = true;
      try {
        const fresh = await api.get(a.id);
        a = fresh;
        paint(fresh);
      } catch (err) {
        toastError(err);
      } finally {
        refresh.disabled = false;
      }
    });
    return h(
      'section',
      { className: 'settings-card au-runs-card', dataset: { testid: 'au-runs-panel' }, attrs: { 'aria-labelledby': 'au-runs-title' } },
      h('div', { className: 'au-runs-head' }, h('h3', { id: 'au-runs-title', className: 'sf-card-title' }, 'Recent runs'), h('span', { className: 'spacer' }), refresh),
      counts,
      body,
    );
  }

  // -------------------------------------------------------------------- routing
  async function route(parts, { notice: note } = {}) {
    const mine = ++token;
    const editing = parts.length > 0;
    listView.hidden = editing;
    editorHost.hidden = !editing;
    if (!editing) listEl.dataset.state = 'loading';
    try {
      await loadBasics();
    } catch (err) {
      if (err.status !== 401) listError.show(err.message || 'The automations could not be loaded.');
      return;
    }
    if (mine !== token) return;
    if (editing) {
      await openEditor(parts[0], mine);
      return;
    }
    editorHost.replaceChildren();
    notice.show(note || '');
    await loadList();
    if (mine === token) head.heading.focus({ preventScroll: true });
  }

  return {
    element,
    route,
    leave() {
      // Fresh tags and stages next time: they may have changed meanwhile.
      loaded = false;
      stagesOf.clear();
      templates = null;
    },
  };
}
