/*
 * The "Working hours" card of the agent editor (docs/routing.md "Working hours"):
 * "Always available" or a weekly schedule in a time zone. Each weekday is one text
 * field of ranges ("09:00-12:00, 13:00-17:00"; empty = day off; "22:00-06:00" runs
 * overnight). The hub validates and its sentence ("Monday 18:00–09:00 overlaps …")
 * is shown as is. Reads GET and writes PUT /api/agents/{id}/hours; outside the hours
 * routing offers the agent nothing new.
 */
import { h, icon } from './dom.js';
import { field, select, formError } from './settings-ui.js';

const DAYS = [
  ['mon', 'Monday'],
  ['tue', 'Tuesday'],
  ['wed', 'Wednesday'],
  ['thu', 'Thursday'],
  ['fri', 'Friday'],
  ['sat', 'Saturday'],
  ['sun', 'Sunday'],
];

/** The zones the browser knows, with `current` and UTC always present. */
function zoneOptions(current) {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf('timeZone');
  } catch {
    // Older browsers: offer the current zone and UTC only.
  }
  const all = new Set(zones);
  all.add('UTC');
  if (current) all.add(current);
  return [...all].sort().map((z) => [z, z.replaceAll('_', ' ')]);
}

/** The browser's own zone, the natural default for a new schedule. */
function localZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** "09:00-12:00, 13:00-17:00" → ["09:00-12:00", "13:00-17:00"]. */
function splitRanges(text) {
  return text
    .split(/[,;]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * @param {{accounts: object, agent: object, card: Function,
 *          attempt: Function, refresh: (notice?: string) => Promise<void>}} opts
 *   `card(title, testid, ...children)` and `attempt(button, error, name, work)` are the
 *   editor's own helpers, so the card looks and fails like its neighbours.
 */
export function hoursCard({ accounts, agent, card, attempt, refresh }) {
  const status = h('p', { className: 'sf-muted', attrs: { role: 'status' }, dataset: { testid: 'hours-status' } }, 'Loading…');
  const always = h('input', { type: 'checkbox', dataset: { testid: 'hours-always' } });
  const alwaysLabel = h('label', { className: 'sf-check' }, always, ' ', 'Always available');
  const zoneSelect = select(zoneOptions(localZone()), localZone());
  const zone = field({ label: 'Time zone', control: zoneSelect, testid: 'hours-zone' });
  const days = DAYS.map(([key, name]) => {
    const f = field({
      label: name,
      testid: `hours-${key}`,
      attrs: { placeholder: 'Day off', spellcheck: 'false', inputmode: 'numeric' },
    });
    return { key, f };
  });
  const schedule = h(
    'div',
    { className: 'hours-schedule', dataset: { testid: 'hours-schedule' } },
    zone.root,
    h(
      'fieldset',
      { className: 'hours-days' },
      h('legend', {}, 'Hours per day'),
      h('small', { className: 'sf-hint' }, 'Ranges like 09:00-17:00, separated by commas. Empty is a day off; 22:00-06:00 runs overnight.'),
      ...days.map((d) => d.f.root),
    ),
  );
  const error = formError('hours-error');
  const save = h('button', { type: 'submit', className: 'btn', dataset: { testid: 'hours-save' } }, icon('clock'), 'Save hours');
  const form = h('form', { noValidate: true }, alwaysLabel, schedule, error.el, h('div', { className: 'sf-actions' }, save));
  // What the hub said when the card loaded; while the toggle disagrees with it the
  // line says the change is not saved yet rather than repeat a stale state.
  let saved = { always: true, text: '' };
  const paint = () => {
    schedule.hidden = always.checked;
    if (saved.text) status.textContent = always.checked === saved.always ? saved.text : 'Not saved yet.';
  };
  always.addEventListener('change', paint);
  always.checked = true;
  paint();

  accounts
    .hours(agent.id)
    .then((view) => {
      always.checked = !view.hours;
      if (view.time_zone) {
        zoneSelect.replaceChildren(...zoneOptions(view.time_zone).map(([v, l]) => h('option', { value: v }, l)));
        zoneSelect.value = view.time_zone;
      }
      for (const d of days) d.f.input.value = ((view.hours && view.hours[d.key]) || []).join(', ');
      saved = {
        always: !view.hours,
        text: !view.hours
          ? 'Always available: routing ignores the clock.'
          : view.working_now
            ? 'Inside their working hours now.'
            : 'Outside their working hours now: offered no new conversations.',
      };
      paint();
    })
    .catch((err) => {
      if (err.status !== 401) status.textContent = 'The working hours could not be loaded.';
    });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    let body;
    if (always.checked) {
      body = { hours: null };
    } else {
      const hours = {};
      for (const d of days) hours[d.key] = splitRanges(d.f.input.value);
      if (!Object.values(hours).some((list) => list.length)) {
        error.show('Enter at least one range, or choose "Always available".');
        return;
      }
      body = { time_zone: zoneSelect.value, hours };
    }
    attempt(save, error, agent.name, async () => {
      await accounts.setHours(agent.id, body);
      await refresh(always.checked ? `${agent.name} is always available.` : 'Working hours saved.');
    });
  });

  return card(
    'Working hours',
    'agent-hours-card',
    status,
    form,
    h('p', { className: 'sf-note' }, icon('info'), h('span', {}, 'Outside their hours they are offered no new conversations; the ones they have stay with them.')),
  );
}
