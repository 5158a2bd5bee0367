/*
 * Bot page (#/bot, issue 6, docs/bot.md) for team leads and admins: per team the
 * bot settings form (GET/PUT /api/teams/{id}/bot), the rules (create, edit,
 * switch on/off, delete), the versioned prompts with their history
 * (/api/ai/prompts) and the knowledge base with a "test a question" box
 * (/api/knowledge…). Mounted like team.js: a page that replaces the inbox layout
 * while the hash is #/bot. The knowledge API may be missing on a hub; a 404 there
 * shows "knowledge base unavailable" instead of failing the page.
 */
import { workableTeams } from './permissions.js';
import { formatWhen } from './format.js';
import { h } from './dom.js';
import { toast, toastError } from './toast.js';

const CHANNELS = [
  ['widget', 'Website chat'],
  ['whatsapp', 'WhatsApp'],
  ['quick_chat', 'Quick chat'],
];
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const MESSAGES = [
  ['handover_message', 'Handover message', 'sent when the bot hands over to a person'],
  ['after_hours_message', 'After-hours message', 'sent instead, outside opening hours'],
  ['fallback_message', 'Fallback message', 'sent when the model is slow or down'],
  ['not_understood_message', 'Not understood message', 'sent when nothing matched and there is no model'],
];
const NUMBERS = [
  ['temperature', 'Temperature', '0–2', { min: '0', max: '2', step: '0.05' }],
  ['max_tokens', 'Max tokens', 'per model answer', { min: '1', max: '8192', step: '1' }],
  ['confidence_threshold', 'Confidence threshold', '0–1; below it the bot hands over', { min: '0', max: '1', step: '0.05' }],
  ['retrieval_threshold', 'Retrieval threshold', '0–1; knowledge-only answers', { min: '0', max: '1', step: '0.05' }],
  ['burst_window_ms', 'Burst window (ms)', 'quiet time before answering', { min: '0', max: '60000', step: '100' }],
  ['knowledge_k', 'Knowledge passages', 'given to the model', { min: '1', max: '20', step: '1' }],
  ['history_messages', 'History messages', 'given to the model', { min: '0', max: '100', step: '1' }],
  ['max_not_understood', 'Hand over after', '"not understood" answers in a row', { min: '1', max: '100', step: '1' }],
];
const PROMPT_PARTS = [
  ['base', 'Base prompt', 'who the bot is and how it answers'],
  ['company', 'Company information', 'what the business is and offers'],
  ['rules', 'Conversation rules', 'what to do and never do'],
  ['escalation', 'Escalation criteria', 'when to hand over to a person'],
];
const DOC_KINDS = [
  ['faq', 'FAQ'],
  ['package', 'Package'],
  ['text', 'Text'],
  ['markdown', 'Markdown'],
];
const DELETE_CONFIRM_MS = 4000;

function field(label, control, hint) {
  return h('label', { className: 'team-field' }, h('span', {}, label), control, hint ? h('small', {}, hint) : null);
}

function check(label, input) {
  return h('label', { className: 'bot-check' }, input, ' ', label);
}


/** The citation label the bot uses for a knowledge document. */
function docLabel(doc) {
  if (doc.label) return doc.label;
  const kind = { faq: 'FAQ', package: 'Package' }[doc.kind] || 'Doc';
  return `${kind} #${doc.ref_code ?? '?'}`;
}

/** Whatever list shape the knowledge API answers with. */
function listOf(r, ...keys) {
  if (Array.isArray(r)) return r;
  for (const k of keys) if (r && Array.isArray(r[k])) return r[k];
  return [];
}

/** A button that deletes on its second click within a few seconds. */
function deleteButton(testid, onConfirm) {
  let armed = 0;
  const btn = h('button', { type: 'button', className: 'btn btn-small btn-danger', dataset: { testid } }, 'Delete');
  btn.addEventListener('click', () => {
    if (!armed) {
      btn.textContent = 'Really delete?';
      armed = setTimeout(() => {
        armed = 0;
        btn.textContent = 'Delete';
      }, DELETE_CONFIRM_MS);
      return;
    }
    clearTimeout(armed);
    armed = 0;
    onConfirm(btn);
  });
  return btn;
}

/**
 * @param {{botApi: object, teams: () => Promise<{teams: object[]}>, me: object, signal: AbortSignal}} opts
 */
export function setupBotSettings({ botApi, teams, me, signal }) {
  const page = document.getElementById('bot-page');
  const layout = document.querySelector('.layout');
  const body = document.getElementById('bot-body');
  const teamSelect = document.getElementById('bot-team');
  const teamLabel = document.getElementById('bot-team-label');
  let visible = false;
  let teamList = null;
  let teamId = null;
  let loadSeq = 0;

  // ---------------------------------------------------------------- teams

  async function loadTeams() {
    if (teamList) return teamList;
    const { teams: all } = await teams();
    teamList = workableTeams(me, all);
    teamSelect.replaceChildren(...teamList.map((t) => h('option', { value: t.id }, t.name || t.slug)));
    teamLabel.hidden = teamList.length < 2;
    return teamList;
  }

  async function load() {
    const mine = ++loadSeq;
    try {
      const list = await loadTeams();
      if (mine !== loadSeq || signal.aborted) return;
      if (!list.length) {
        body.replaceChildren(h('p', { className: 'empty' }, 'You lead no team yet.'));
        return;
      }
      if (!teamId || !list.some((t) => t.id === teamId)) teamId = list[0].id;
      teamSelect.value = teamId;
      renderTeam(teamId);
    } catch (err) {
      if (err.status !== 401) toastError(err);
    }
  }

  // Fresh cards per team: nothing typed for one team can be saved to another.
  function renderTeam(id) {
    const parts = [makeSettings(id), makeRules(id), makePrompts(id), makeKnowledge(id)];
    body.replaceChildren(...parts.map((p) => p.root));
    // Each part reports its own errors.
    for (const p of parts) p.load();
  }

  function card(testid, title, ...children) {
    return h('section', { className: 'team-card bot-card', dataset: { testid } }, h('h2', { className: 'team-name' }, title), ...children);
  }

  function reportError(err, errorEl) {
    if (err.status === 401) return;
    toastError(err);
    if (errorEl) {
      errorEl.textContent = err.message || 'Something went wrong.';
      errorEl.hidden = false;
    }
  }

  // ------------------------------------------------------------- settings

  function makeSettings(id) {
    const enabled = h('input', { type: 'checkbox', name: 'enabled', dataset: { testid: 'bot-enabled' } });
    const channels = CHANNELS.map(([value]) => h('input', { type: 'checkbox', name: 'channels', value }));
    const handoff = h(
      'select',
      { name: 'handoff' },
      h('option', { value: 'bot_first' }, 'Bot first — people get it on handover'),
      h('option', { value: 'parallel' }, 'Parallel — routed at once, bot answers meanwhile'),
    );
    const aiEnabled = h('input', { type: 'checkbox', name: 'ai_enabled' });
    const model = h('p', { className: 'team-muted bot-model', dataset: { testid: 'bot-model' } });
    const numbers = new Map(NUMBERS.map(([name, , , attrs]) => [name, h('input', { type: 'number', name, required: true, attrs })]));
    const hoursOn = h('input', { type: 'checkbox', name: 'hours_on' });
    const offset = h('input', { type: 'number', name: 'utc_offset_minutes', attrs: { min: '-840', max: '840', step: '15' } });
    const open = h('input', { type: 'time', name: 'open' });
    const close = h('input', { type: 'time', name: 'close' });
    const days = DAYS.map((d, i) => h('input', { type: 'checkbox', name: 'days', value: String(i + 1), attrs: { 'aria-label': d } }));
    const afterHours = h('input', { type: 'checkbox', name: 'answer_after_hours' });
    const messages = new Map(MESSAGES.map(([name]) => [name, h('textarea', { name, rows: 3, maxLength: 4000 })]));
    const keywords = h('textarea', { name: 'human_keywords', rows: 2 });
    const error = h('p', { className: 'form-error', attrs: { role: 'alert' }, hidden: true });
    const saved = h('span', { className: 'team-saved', attrs: { role: 'status' } });
    const save = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'bot-settings-save' } }, 'Save settings');
    const hoursBox = h(
      'div',
      { className: 'bot-hours' },
      field('UTC offset (minutes)', offset, 'e.g. 420 for UTC+7'),
      field('Opens', open),
      field('Closes', close, 'before "opens": past midnight'),
      h('div', { className: 'team-field bot-days' }, h('span', {}, 'Days'), h('div', {}, ...days.map((d, i) => check(DAYS[i], d)))),
    );
    const form = h(
      'form',
      { className: 'team-settings bot-settings', dataset: { testid: 'bot-settings-form' }, noValidate: true },
      h(
        'fieldset',
        { className: 'team-fields' },
        h('legend', {}, 'Answering'),
        h('div', { className: 'team-field' }, check('Bot answers this team\'s conversations', enabled)),
        h('div', { className: 'team-field' }, h('span', {}, 'Channels (none ticked: all)'), h('div', {}, ...channels.map((c, i) => check(CHANNELS[i][1], c)))),
        field('Handoff', handoff),
      ),
      h(
        'fieldset',
        { className: 'team-fields' },
        h('legend', {}, 'Model'),
        h('div', { className: 'team-field bot-wide' }, model, check('Use the model when one is configured', aiEnabled)),
        ...NUMBERS.map(([name, label, hint]) => field(label, numbers.get(name), hint)),
      ),
      h(
        'fieldset',
        { className: 'team-fields' },
        h('legend', {}, 'Opening hours'),
        h('div', { className: 'team-field bot-wide' }, check('Only open at set hours', hoursOn), check('Answer outside opening hours too', afterHours)),
        hoursBox,
      ),
      h(
        'fieldset',
        { className: 'team-fields bot-messages' },
        h('legend', {}, 'Messages'),
        ...MESSAGES.map(([name, label, hint]) => field(label, messages.get(name), hint)),
        field('Words asking for a person', keywords, 'comma-separated'),
      ),
      error,
      h('div', { className: 'team-actions' }, save, saved),
    );
    const root = card('bot-settings', 'Settings', form);

    function syncHours() {
      hoursBox.hidden = !hoursOn.checked;
    }
    hoursOn.addEventListener('change', syncHours);

    function fill(s) {
      enabled.checked = Boolean(s.enabled);
      for (const c of channels) c.checked = (s.channels || []).includes(c.value);
      handoff.value = s.handoff || 'bot_first';
      aiEnabled.checked = Boolean(s.ai_enabled);
      model.textContent = s.model_configured
        ? `Model: ${s.model || 'configured'}`
        : 'No model configured on this hub: the bot answers from rules and the knowledge base only.';
      // Thresholds are f32 on the hub and arrive as 0.30000001192092896.
      for (const [name, input] of numbers) input.value = typeof s[name] === 'number' ? String(Number(s[name].toPrecision(6))) : '';
      const bh = s.business_hours;
      hoursOn.checked = Boolean(bh);
      offset.value = bh ? bh.utc_offset_minutes : String(-new Date().getTimezoneOffset());
      open.value = bh ? bh.open : '09:00';
      close.value = bh ? bh.close : '17:00';
      for (const d of days) d.checked = bh ? bh.days.includes(Number(d.value)) : Number(d.value) <= 5;
      afterHours.checked = Boolean(s.answer_after_hours);
      for (const [name, input] of messages) input.value = s[name] || '';
      keywords.value = (s.human_keywords || []).join(', ');
      syncHours();
    }

    function collect() {
      const out = {
        enabled: enabled.checked,
        channels: channels.filter((c) => c.checked).map((c) => c.value),
        handoff: handoff.value,
        ai_enabled: aiEnabled.checked,
        answer_after_hours: afterHours.checked,
        human_keywords: keywords.value.split(/[,\n]/).map((k) => k.trim()).filter(Boolean),
        business_hours: hoursOn.checked
          ? {
              utc_offset_minutes: Number(offset.value) || 0,
              days: days.filter((d) => d.checked).map((d) => Number(d.value)),
              open: open.value,
              close: close.value,
            }
          : null,
      };
      for (const [name, input] of numbers) {
        const v = input.value.trim();
        if (v === '' || !Number.isFinite(Number(v))) throw new Error(`${NUMBERS.find((n) => n[0] === name)[1]} must be a number.`);
        out[name] = Number(v);
      }
      for (const [name, input] of messages) out[name] = input.value;
      return out;
    }

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.hidden = true;
      saved.textContent = '';
      let changes;
      try {
        changes = collect();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        return;
      }
      save.disabled = true;
      try {
        fill(await botApi.saveSettings(id, changes));
        saved.textContent = 'Saved.';
      } catch (err) {
        reportError(err, error);
      } finally {
        save.disabled = false;
      }
    });

    return {
      root,
      async load() {
        try {
          fill(await botApi.settings(id));
        } catch (err) {
          reportError(err, error);
        }
      },
    };
  }

  // ---------------------------------------------------------------- rules

  function makeRules(id) {
    const list = h('ul', { className: 'bot-rules', dataset: { testid: 'bot-rule-list' } });
    const empty = h('p', { className: 'team-muted' }, 'No rules yet: the bot answers with the model and the knowledge base.');
    const newBtn = h('button', { type: 'button', className: 'btn', dataset: { testid: 'bot-rule-new' } }, 'New rule');
    const name = h('input', { type: 'text', name: 'name', maxLength: 200, dataset: { testid: 'bot-rule-name' } });
    const priority = h('input', { type: 'number', name: 'priority', step: '1', value: '0', dataset: { testid: 'bot-rule-priority' } });
    const kind = h('select', { name: 'match_kind', dataset: { testid: 'bot-rule-kind' } }, h('option', { value: 'keyword' }, 'Keywords'), h('option', { value: 'regex' }, 'Regular expression'));
    const pattern = h('textarea', { name: 'pattern', rows: 2, maxLength: 2000, dataset: { testid: 'bot-rule-pattern' } });
    const action = h('select', { name: 'action', dataset: { testid: 'bot-rule-action' } }, h('option', { value: 'reply' }, 'Reply'), h('option', { value: 'handover' }, 'Hand over to a person'));
    const reply = h('textarea', { name: 'reply', rows: 3, maxLength: 4000, dataset: { testid: 'bot-rule-reply' } });
    const off = CHANNELS.map(([value]) => h('input', { type: 'checkbox', value }));
    const enabled = h('input', { type: 'checkbox', checked: true, dataset: { testid: 'bot-rule-enabled' } });
    const error = h('p', { className: 'form-error', attrs: { role: 'alert' }, hidden: true });
    const title = h('legend', {}, 'New rule');
    const saveBtn = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'bot-rule-save' } }, 'Save rule');
    const cancelBtn = h('button', { type: 'button', className: 'btn btn-ghost' }, 'Cancel');
    const form = h(
      'form',
      { className: 'team-settings bot-rule-form', dataset: { testid: 'bot-rule-form' }, noValidate: true, hidden: true },
      h(
        'fieldset',
        { className: 'team-fields' },
        title,
        field('Name', name),
        field('Priority', priority, 'higher wins'),
        field('Match', kind),
        field('Action', action),
        h('div', { className: 'bot-wide' }, field('Pattern', pattern, 'keywords: one per line or comma-separated; whole words, any case')),
        h('div', { className: 'bot-wide' }, field('Reply', reply, 'for "hand over" optional: the handover message is used')),
        h('div', { className: 'team-field' }, h('span', {}, 'Off on'), h('div', {}, ...off.map((c, i) => check(CHANNELS[i][1], c)))),
        h('div', { className: 'team-field' }, check('Enabled', enabled)),
      ),
      error,
      h('div', { className: 'team-actions' }, saveBtn, cancelBtn),
    );
    const root = card('bot-rules', 'Rules', h('p', { className: 'team-muted' }, 'Checked before the model, highest priority first; the first match answers or hands over.'), list, empty, h('div', { className: 'team-actions' }, newBtn), form);
    let rules = [];
    let editing = null; // rule id, or null for a new rule

    function formOf(r) {
      return {
        name: r.name,
        priority: r.priority,
        match_kind: r.match_kind,
        pattern: r.pattern,
        action: r.action,
        reply: r.reply || null,
        disabled_channels: r.disabled_channels || [],
        enabled: r.enabled,
      };
    }

    function render() {
      const sorted = [...rules].sort((a, b) => b.priority - a.priority);
      empty.hidden = rules.length > 0;
      list.replaceChildren(
        ...sorted.map((r) => {
          const on = h('input', { type: 'checkbox', checked: r.enabled, attrs: { 'aria-label': `Enabled: ${r.name}` }, dataset: { testid: 'bot-rule-toggle' } });
          on.addEventListener('change', async () => {
            on.disabled = true;
            try {
              replace(await botApi.updateRule(r.id, { ...formOf(r), enabled: on.checked }));
            } catch (err) {
              on.checked = r.enabled;
              reportError(err);
            } finally {
              on.disabled = false;
            }
          });
          const edit = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: 'bot-rule-edit' }, onclick: () => openForm(r) }, 'Edit');
          const del = deleteButton('bot-rule-delete', async (btn) => {
            btn.disabled = true;
            try {
              await botApi.deleteRule(r.id);
              rules = rules.filter((x) => x.id !== r.id);
              render();
            } catch (err) {
              btn.disabled = false;
              reportError(err);
            }
          });
          return h(
            'li',
            { className: `bot-rule${r.enabled ? '' : ' is-off'}`, dataset: { testid: 'bot-rule', id: r.id } },
            h(
              'div',
              { className: 'bot-rule-head' },
              h('label', { className: 'bot-check' }, on),
              h('strong', { className: 'bot-rule-name' }, r.name),
              h('span', { className: 'chip' }, `priority ${r.priority}`),
              h('span', { className: 'chip' }, r.action === 'handover' ? 'hands over' : 'replies'),
              (r.disabled_channels || []).length ? h('span', { className: 'chip' }, `off on ${r.disabled_channels.join(', ')}`) : null,
              h('span', { className: 'bot-spacer' }),
              edit,
              del,
            ),
            h('div', { className: 'bot-rule-pattern' }, r.match_kind === 'regex' ? 'regex ' : 'keywords ', h('code', {}, r.pattern)),
            r.reply ? h('div', { className: 'bot-rule-reply' }, '→ ', r.reply) : null,
          );
        }),
      );
    }

    function replace(row) {
      const i = rules.findIndex((x) => x.id === row.id);
      if (i >= 0) rules[i] = row;
      else rules.push(row);
      render();
    }

    function openForm(r) {
      editing = r ? r.id : null;
      title.textContent = r ? `Edit rule "${r.name}"` : 'New rule';
      name.value = r ? r.name : '';
      priority.value = String(r ? r.priority : 0);
      kind.value = r ? r.match_kind : 'keyword';
      pattern.value = r ? r.pattern : '';
      action.value = r ? r.action : 'reply';
      reply.value = (r && r.reply) || '';
      for (const c of off) c.checked = Boolean(r && (r.disabled_channels || []).includes(c.value));
      enabled.checked = r ? r.enabled : true;
      error.hidden = true;
      form.hidden = false;
      name.focus();
    }

    newBtn.addEventListener('click', () => openForm(null));
    cancelBtn.addEventListener('click', () => {
      form.hidden = true;
      editing = null;
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.hidden = true;
      const body = {
        name: name.value.trim(),
        priority: Number(priority.value) || 0,
        match_kind: kind.value,
        pattern: pattern.value,
        action: action.value,
        reply: reply.value.trim() ? reply.value : null,
        disabled_channels: off.filter((c) => c.checked).map((c) => c.value),
        enabled: enabled.checked,
      };
      saveBtn.disabled = true;
      try {
        replace(editing ? await botApi.updateRule(editing, body) : await botApi.createRule(id, body));
        form.hidden = true;
        editing = null;
        toast('Rule saved.', 'success');
      } catch (err) {
        reportError(err, error);
      } finally {
        saveBtn.disabled = false;
      }
    });

    return {
      root,
      async load() {
        try {
          rules = listOf(await botApi.rules(id), 'rules');
          render();
        } catch (err) {
          reportError(err);
        }
      },
    };
  }

  // -------------------------------------------------------------- prompts

  function makePrompts(id) {
    const version = h('p', { className: 'team-muted', dataset: { testid: 'bot-prompt-version' } });
    const parts = new Map();
    const editors = PROMPT_PARTS.map(([type, label, hint]) => {
      const text = h('textarea', { rows: type === 'base' ? 5 : 3, maxLength: 20000, dataset: { testid: `bot-prompt-${type}` } });
      const label2 = h('input', { type: 'text', placeholder: 'version label (optional)', maxLength: 40, attrs: { 'aria-label': `${label} version label` } });
      const current = h('small', { className: 'team-muted' });
      const save = h('button', { type: 'button', className: 'btn btn-small', dataset: { testid: `bot-prompt-save-${type}` } }, 'Save as new version');
      save.addEventListener('click', async () => {
        if (!text.value.trim()) {
          toast(`${label} is empty.`);
          return;
        }
        save.disabled = true;
        try {
          await botApi.savePrompt(id, type, text.value, label2.value.trim() || undefined);
          label2.value = '';
          toast(`${label} saved.`, 'success');
          await load();
        } catch (err) {
          reportError(err);
        } finally {
          save.disabled = false;
        }
      });
      parts.set(type, { text, current });
      return h(
        'div',
        { className: 'bot-prompt' },
        h('label', { className: 'team-field' }, h('span', {}, label, ' ', current), text, h('small', {}, hint)),
        h('div', { className: 'team-actions' }, label2, save),
      );
    });
    const history = h('ol', { className: 'bot-history', dataset: { testid: 'bot-prompt-history' } });
    const root = card('bot-prompts', 'Prompts', version, ...editors, h('h3', { className: 'bot-sub' }, 'Version history'), history);

    async function load() {
      try {
        const p = await botApi.prompts(id);
        version.textContent = `In use: ${p.version}. Every bot reply records the versions it was made with.`;
        for (const [type, { text, current }] of parts) {
          const row = p.current && p.current[type];
          text.value = row ? row.content : '';
          text.placeholder = type === 'base' ? p.default_base || '' : '';
          current.textContent = row ? `(version ${row.version}, ${formatWhen(row.created_at)})` : type === 'base' ? '(default)' : '(not set)';
        }
        const rows = p.history || [];
        history.replaceChildren(
          ...(rows.length
            ? rows.map((r) =>
                h(
                  'li',
                  { className: 'bot-history-row' },
                  h('strong', {}, `${r.prompt_type} ${r.version}`),
                  ` · ${r.updated_by || ''} · ${formatWhen(r.created_at)} `,
                  h(
                    'button',
                    {
                      type: 'button',
                      className: 'btn btn-small btn-ghost',
                      title: 'Put this text in the editor; saving it makes a new version',
                      onclick: () => {
                        const part = parts.get(r.prompt_type);
                        if (part) part.text.value = r.content;
                      },
                    },
                    'Load',
                  ),
                  h('div', { className: 'bot-history-text' }, r.content),
                ),
              )
            : [h('li', { className: 'team-muted' }, 'No prompt stored yet: the default base prompt is used.')]),
        );
      } catch (err) {
        reportError(err);
      }
    }

    return { root, load };
  }

  // ------------------------------------------------------------ knowledge

  function makeKnowledge(id) {
    const notice = h('p', { className: 'team-muted', dataset: { testid: 'bot-knowledge-status' } });
    const kindFilter = h('select', { attrs: { 'aria-label': 'Kind' } }, h('option', { value: '' }, 'All kinds'), ...DOC_KINDS.map(([v, l]) => h('option', { value: v }, l)));
    const list = h('ul', { className: 'bot-docs', dataset: { testid: 'bot-knowledge-list' } });
    const kind = h('select', {}, ...DOC_KINDS.map(([v, l]) => h('option', { value: v }, l)));
    const title = h('input', { type: 'text', maxLength: 300 });
    const text = h('textarea', { rows: 4 });
    const ref = h('input', { type: 'text', maxLength: 40, placeholder: 'automatic' });
    const fields = h('textarea', { rows: 2, placeholder: '{"price": "Rp 30.000.000", "departure": "2026-03-10"}' });
    const error = h('p', { className: 'form-error', attrs: { role: 'alert' }, hidden: true });
    const legend = h('legend', {}, 'New document');
    const saveBtn = h('button', { type: 'submit', className: 'btn btn-primary' }, 'Save document');
    const cancelBtn = h('button', { type: 'button', className: 'btn btn-ghost' }, 'Cancel');
    const newBtn = h('button', { type: 'button', className: 'btn' }, 'New document');
    const form = h(
      'form',
      { className: 'team-settings', noValidate: true, hidden: true },
      h(
        'fieldset',
        { className: 'team-fields' },
        legend,
        field('Kind', kind),
        field('Reference', ref, 'the number cited, e.g. FAQ #3'),
        h('div', { className: 'bot-wide' }, field('Title', title, 'for an FAQ: the question')),
        h('div', { className: 'bot-wide' }, field('Body', text, 'for an FAQ: the answer')),
        h('div', { className: 'bot-wide' }, field('Fields (JSON, optional)', fields, 'packages: price, dates, …')),
      ),
      error,
      h('div', { className: 'team-actions' }, saveBtn, cancelBtn),
    );
    const question = h('input', { type: 'search', placeholder: 'Ask what a customer would ask…', dataset: { testid: 'bot-knowledge-question' } });
    const askBtn = h('button', { type: 'submit', className: 'btn' }, 'Test');
    const hits = h('ol', { className: 'bot-hits', dataset: { testid: 'bot-knowledge-hits' } });
    const ask = h('form', { className: 'bot-ask', noValidate: true }, h('label', { className: 'sr-only' }, 'Test a question'), question, askBtn);
    const tools = h('div', { className: 'bot-knowledge-tools' }, kindFilter, newBtn);
    const root = card('bot-knowledge', 'Knowledge', notice, tools, list, form, h('h3', { className: 'bot-sub' }, 'Test a question'), ask, hits);
    let docs = [];
    let editing = null;

    function unavailable() {
      notice.textContent = 'Knowledge base unavailable on this hub.';
      tools.hidden = true;
      list.replaceChildren();
      form.hidden = true;
      ask.hidden = true;
      hits.replaceChildren();
    }

    function render() {
      notice.textContent = docs.length ? '' : 'No documents yet. FAQs, packages and texts here are what the bot cites.';
      list.replaceChildren(
        ...docs.map((d) =>
          h(
            'li',
            { className: 'bot-doc', dataset: { id: d.id } },
            h(
              'div',
              { className: 'bot-rule-head' },
              h('span', { className: 'bot-cite' }, `[${docLabel(d)}]`),
              h('strong', {}, d.title || ''),
              h('span', { className: 'bot-spacer' }),
              h('button', { type: 'button', className: 'btn btn-small', onclick: () => edit(d) }, 'Edit'),
              deleteButton('bot-doc-delete', async (btn) => {
                btn.disabled = true;
                try {
                  await botApi.deleteDoc(d.id);
                  docs = docs.filter((x) => x.id !== d.id);
                  render();
                } catch (err) {
                  btn.disabled = false;
                  reportError(err);
                }
              }),
            ),
            // The list carries a preview; the whole body is fetched for editing.
            h('div', { className: 'bot-history-text' }, d.preview ?? d.body ?? ''),
          ),
        ),
      );
    }

    async function edit(summary) {
      try {
        const r = await botApi.doc(summary.id);
        openForm(r.document || r);
      } catch (err) {
        reportError(err);
      }
    }

    function openForm(d) {
      editing = d ? d.id : null;
      legend.textContent = d ? `Edit ${docLabel(d)}` : 'New document';
      kind.value = d ? d.kind : kindFilter.value || 'faq';
      kind.disabled = Boolean(d); // a document keeps its kind
      title.value = d ? d.title || '' : '';
      text.value = d ? d.body || '' : '';
      ref.value = d && d.ref_code != null ? String(d.ref_code) : '';
      fields.value = d && d.fields ? JSON.stringify(d.fields) : '';
      error.hidden = true;
      form.hidden = false;
      title.focus();
    }

    async function load() {
      tools.hidden = false;
      ask.hidden = false;
      try {
        docs = listOf(await botApi.knowledge(id, kindFilter.value || undefined), 'docs', 'documents', 'items');
        render();
      } catch (err) {
        if (err.status === 404) unavailable();
        else reportError(err);
      }
    }

    kindFilter.addEventListener('change', load);
    newBtn.addEventListener('click', () => openForm(null));
    cancelBtn.addEventListener('click', () => {
      form.hidden = true;
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.hidden = true;
      // An update names only what may change; emptied fields are cleared with {}.
      const body = editing ? { title: title.value.trim(), body: text.value, fields: {} } : { team_id: id, kind: kind.value, title: title.value.trim(), body: text.value };
      if (ref.value.trim()) body.ref_code = ref.value.trim();
      if (fields.value.trim()) {
        try {
          body.fields = JSON.parse(fields.value);
        } catch {
          error.textContent = 'Fields must be JSON, e.g. {"price": "…"}.';
          error.hidden = false;
          return;
        }
      }
      saveBtn.disabled = true;
      try {
        if (editing) await botApi.updateDoc(editing, body);
        else await botApi.createDoc(body);
        form.hidden = true;
        await load();
      } catch (err) {
        if (err.status === 404 && !editing) unavailable();
        else reportError(err, error);
      } finally {
        saveBtn.disabled = false;
      }
    });
    ask.addEventListener('submit', async (e) => {
      e.preventDefault();
      const q = question.value.trim();
      if (!q) return;
      askBtn.disabled = true;
      try {
        const result = await botApi.searchKnowledge(id, q);
        const found = listOf(result, 'hits', 'results');
        const mode = { hybrid: 'Keywords and meaning (hybrid)', lexical: 'Keywords only (no embeddings)' }[result && result.mode];
        hits.replaceChildren(
          ...(mode ? [h('li', { className: 'team-muted' }, `Search: ${mode}`)] : []),
          ...(found.length
            ? found.map((x) =>
                h(
                  'li',
                  { className: 'bot-hit' },
                  h('span', { className: 'bot-cite' }, `[${docLabel(x)}]`),
                  ' ',
                  h('strong', {}, x.title || ''),
                  typeof x.confidence === 'number' ? ` · ${Math.round(x.confidence * 100)}%` : '',
                  h('div', { className: 'bot-history-text' }, x.answer || x.text || ''),
                ),
              )
            : [h('li', { className: 'team-muted' }, 'Nothing found: the bot would not find an answer to this.')]),
        );
      } catch (err) {
        if (err.status === 404) unavailable();
        else reportError(err);
      } finally {
        askBtn.disabled = false;
      }
    });

    return { root, load };
  }

  // ------------------------------------------------------------ visibility

  teamSelect.addEventListener(
    'change',
    () => {
      teamId = teamSelect.value;
      load();
    },
    { signal },
  );

  function show() {
    if (visible) return;
    visible = true;
    page.hidden = false;
    layout.hidden = true;
    load();
    const heading = document.getElementById('bot-title');
    if (heading) heading.focus({ preventScroll: true });
  }

  function hide() {
    if (!visible) return;
    visible = false;
    page.hidden = true;
    layout.hidden = false;
  }

  signal.addEventListener('abort', () => {
    hide();
    body.replaceChildren();
    teamSelect.replaceChildren();
    teamList = null;
  });

  return { show, hide, isVisible: () => visible };
}
