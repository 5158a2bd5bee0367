/*
 * Settings → Widget (#/settings/widget, issue 16; docs/admin.md): what website
 * visitors meet in the chat widget of a team — the greeting, the away message,
 * the pre-chat form (which fields, required or skippable) and business hours —
 * with a live preview beside the form that redraws on every keystroke, open or
 * closed as the hours say. Saving replaces the team's settings
 * (PUT /api/teams/{id}/widget, settings.team).
 *
 * The preview is drawn here from the form's values instead of loading the real
 * widget: the real one would open a guest session on every look.
 */
import { workableTeams } from './permissions.js';
import { h, icon } from './dom.js';
import { sectionHead, field, select, formError, savedNote } from './settings-ui.js';

const FIELDS = [
  ['name', 'Name'],
  ['email', 'Email'],
  ['phone', 'Phone'],
];
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** `+07:00` for 420 minutes. */
function offsetText(minutes) {
  const sign = minutes < 0 ? '−' : '+';
  const m = Math.abs(minutes);
  return `UTC${sign}${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

/** Offsets from UTC−12 to UTC+14 in quarter hours that some zone uses. */
const OFFSETS = [];
for (let m = -12 * 60; m <= 14 * 60; m += 15) {
  if (m % 60 === 0 || [-570, -210, 210, 270, 330, 345, 390, 525, 570, 630, 765].includes(m)) OFFSETS.push(m);
}

/** Draws the widget as a visitor would see it with these settings. */
function drawPreview(host, s, { open, teamName }) {
  const fields = FIELDS.filter(([k]) => s.prechat_fields.includes(k));
  const form = fields.length
    ? h(
        'div',
        { className: 'wp-prechat', dataset: { testid: 'preview-prechat' } },
        h('p', {}, s.prechat_required ? 'Tell us who you are to start.' : 'Tell us who you are (optional).'),
        fields.map(([, label]) => h('div', { className: 'wp-input' }, h('span', {}, label), h('span', { className: 'wp-box' }))),
        h('div', { className: 'wp-buttons' }, h('span', { className: 'wp-primary' }, 'Start chat'), s.prechat_required ? null : h('span', { className: 'wp-skip' }, 'Skip')),
      )
    : null;
  host.replaceChildren(
    h(
      'div',
      { className: 'wp-panel', attrs: { 'aria-label': 'Widget preview', role: 'img' } },
      h('div', { className: 'wp-head' }, h('strong', {}, teamName), h('span', { className: 'wp-status' }, open ? 'We reply here' : 'Away')),
      h('div', { className: 'wp-body' },
        h('p', { className: 'wp-bubble', dataset: { testid: 'preview-greeting' } }, s.greeting),
        open ? null : h('p', { className: 'wp-away', dataset: { testid: 'preview-away' } }, s.away_message),
        form),
      h('div', { className: 'wp-composer' }, h('span', {}, 'Write a message…'), icon('send')),
    ),
    h('div', { className: 'wp-launcher' }, icon('message-circle')),
  );
}

/** The Widget section. `ctx` as settings.js gives it. */
export function setupWidgetSection(ctx) {
  const { accounts, me } = ctx;
  const head = sectionHead({ title: 'Widget', backLabel: 'Back to settings', onBack: () => ctx.back('#/settings'), testid: 'widget-title' });
  head.heading.id = 'widget-heading';
  const teamSelect = field({ label: 'Team', control: select([]), testid: 'widget-team' });
  const greeting = field({ label: 'Greeting', control: h('textarea', { rows: 2, maxLength: 500 }), testid: 'widget-greeting', hint: 'The first thing a visitor reads. Leave empty for the default.' });
  const away = field({ label: 'Away message', control: h('textarea', { rows: 2, maxLength: 500 }), testid: 'widget-away', hint: 'Shown outside business hours or when nobody is online.' });
  const fieldBoxes = FIELDS.map(([key, label]) =>
    h('label', { className: 'sf-check' }, h('input', { type: 'checkbox', value: key, dataset: { testid: `widget-field-${key}` } }), ` ${label}`),
  );
  const required = h('label', { className: 'sf-check' }, h('input', { type: 'checkbox', dataset: { testid: 'widget-required' } }), ' Visitors must fill it in before writing');
  const hoursOn = h('label', { className: 'sf-check' }, h('input', { type: 'checkbox', dataset: { testid: 'widget-hours-on' } }), ' Only open at set hours');
  const dayBoxes = DAYS.map((d, i) =>
    h('label', { className: 'sf-check wp-day' }, h('input', { type: 'checkbox', value: String(i + 1) }), ` ${d}`),
  );
  const openAt = field({ label: 'Opens', type: 'time', value: '09:00', testid: 'widget-open' });
  const closeAt = field({ label: 'Closes', type: 'time', value: '17:00', testid: 'widget-close', hint: 'Earlier than the opening time: open past midnight.' });
  const offset = field({ label: 'Time zone', control: select(OFFSETS.map((m) => [String(m), offsetText(m)])), testid: 'widget-offset' });
  const hoursFields = h('div', { className: 'wp-hours' }, h('fieldset', { className: 'wp-days' }, h('legend', {}, 'Open on'), dayBoxes), openAt.root, closeAt.root, offset.root);
  const previewOpen = h('select', { dataset: { testid: 'widget-preview-mode' } }, h('option', { value: 'open' }, 'as when open'), h('option', { value: 'closed' }, 'as when away'));
  const preview = h('div', { className: 'wp-stage', dataset: { testid: 'widget-preview' } });
  const error = formError('widget-error');
  const saved = savedNote('widget-saved');
  const save = h('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'widget-save' } }, 'Save widget');

  const form = h(
    'form',
    { className: 'settings-card wp-form', noValidate: true, attrs: { 'aria-labelledby': 'widget-heading' } },
    teamSelect.root,
    greeting.root,
    away.root,
    h('fieldset', { className: 'wp-fieldset' }, h('legend', {}, 'Pre-chat form'), h('div', { className: 'wp-checks' }, fieldBoxes), required),
    h('fieldset', { className: 'wp-fieldset' }, h('legend', {}, 'Business hours'), hoursOn, hoursFields),
    error.el,
    h('div', { className: 'sf-actions' }, save, saved.el),
  );
  const element = h(
    'section',
    { className: 'settings-section', dataset: { testid: 'settings-widget' }, attrs: { 'aria-labelledby': 'widget-heading' } },
    head.root,
    h('div', { className: 'wp-layout' },
      form,
      h('section', { className: 'settings-card wp-preview', attrs: { 'aria-label': 'Preview' } },
        h('h3', { className: 'sf-card-title' }, 'Preview'),
        h('label', { className: 'wp-mode' }, 'Show the widget ', previewOpen),
        preview)),
  );

  let teams = [];

  /** The form's values in the API's shape. */
  function values() {
    const fields = fieldBoxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    const hours = hoursOn.firstChild.checked
      ? {
          utc_offset_minutes: Number(offset.input.value),
          days: dayBoxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => Number(c.value)),
          open: openAt.input.value,
          close: closeAt.input.value,
        }
      : null;
    return {
      prechat_fields: fields,
      prechat_required: fields.length > 0 && required.firstChild.checked,
      greeting: greeting.input.value,
      away_message: away.input.value,
      business_hours: hours,
    };
  }

  function redraw() {
    const v = values();
    hoursFields.hidden = !v.business_hours;
    required.firstChild.disabled = v.prechat_fields.length === 0;
    const team = teams.find((t) => t.id === teamSelect.input.value);
    drawPreview(preview, {
      ...v,
      // The hub shows its defaults for blank texts; so does the preview.
      greeting: v.greeting.trim() || 'Hi! Send us a message and we will reply here.',
      away_message: v.away_message.trim() || 'We are away right now. Leave a message and we will get back to you as soon as we can.',
    }, { open: previewOpen.value === 'open', teamName: team ? team.name : '' });
  }

  function fill(s) {
    greeting.input.value = s.greeting;
    away.input.value = s.away_message;
    for (const l of fieldBoxes) l.firstChild.checked = s.prechat_fields.includes(l.firstChild.value);
    required.firstChild.checked = s.prechat_required;
    const bh = s.business_hours;
    hoursOn.firstChild.checked = Boolean(bh);
    for (const l of dayBoxes) l.firstChild.checked = bh ? bh.days.includes(Number(l.firstChild.value)) : Number(l.firstChild.value) <= 5;
    openAt.input.value = bh ? bh.open : '09:00';
    closeAt.input.value = bh ? bh.close : '17:00';
    offset.input.value = String(bh ? bh.utc_offset_minutes : -new Date().getTimezoneOffset());
    redraw();
  }

  async function loadTeam() {
    error.show('');
    saved.show('');
    try {
      fill(await accounts.widget(teamSelect.input.value));
    } catch (err) {
      if (err.status !== 401) error.show(err.message);
    }
  }

  form.addEventListener('input', redraw);
  form.addEventListener('change', (e) => (e.target === teamSelect.input ? loadTeam() : redraw()));
  previewOpen.addEventListener('change', redraw);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = values();
    if (v.business_hours && !v.business_hours.days.length) {
      error.show('Pick at least one day the team is open, or switch business hours off.');
      return;
    }
    error.show('');
    save.disabled = true;
    try {
      fill(await accounts.setWidget(teamSelect.input.value, v));
      saved.show('Saved. Visitors see it the next time they open the widget.');
    } catch (err) {
      if (err.status !== 401) error.show(err.message);
    } finally {
      save.disabled = false;
    }
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
        teams = workableTeams(me, all);
        teamSelect.input.replaceChildren(...teams.map((t) => h('option', { value: t.id }, t.name)));
        if (teams.length) await loadTeam();
      } catch (err) {
        loaded = false;
        if (err.status !== 401) error.show(err.message);
      }
    },
    leave() {},
  };
}
