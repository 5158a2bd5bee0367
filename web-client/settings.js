/*
 * The Settings page (#/settings…, issue 16): a menu of sections — Agents & roles,
 * Teams, Widget, Pipeline, Campaign codes, Automations, Quick-chat links, WhatsApp numbers, Scheduled jobs, My account, and the
 * slot of the audit log — and the section on show.
 * Owns the routes below #/settings, which sections the agent may open (can()),
 * the friendly "not allowed" view, and the depth of the stacked views on a phone
 * (menu → section → one agent or team, data-depth 0/1/2 on the page; wider
 * screens show the menu and the section side by side). Mounted like team.js: a
 * page that replaces the inbox layout while the hash is #/settings….
 */
import { h, icon } from './dom.js';
import { can, roleLabel } from './permissions.js';
import { sectionHead } from './settings-ui.js';
import { setupAgentsSection } from './settings-agents.js';
import { setupTeamsSection } from './settings-teams.js';
import { setupAccountSection } from './settings-account.js';
import { setupWidgetSection } from './settings-widget.js';
import { setupPipelineSection } from './settings-pipeline.js';
import { setupCampaignsSection } from './settings-campaigns.js';
import { setupAutomationsSection } from './settings-automations.js';
import { setupLinksSection } from './settings-links.js';
import { setupNumbersSection } from './settings-numbers.js';
import { setupJobsSection } from './settings-jobs.js';
import { setupTemplatesSection } from './templates-page.js';

const PHONE = window.matchMedia('(max-width: 760px)');

const SECTIONS = [
  { key: 'agents', title: 'Agents & roles', allowed: (me) => can(me, 'accounts.manage'), needs: 'manage agents and roles' },
  {
    key: 'teams',
    title: 'Teams',
    allowed: (me) => can(me, 'accounts.manage') || can(me, 'accounts.read'),
    needs: 'see or change teams',
  },
  { key: 'widget', title: 'Widget', allowed: (me) => can(me, 'settings.team'), needs: "change a team's settings" },
  { key: 'pipeline', title: 'Pipeline', allowed: (me) => can(me, 'settings.team'), needs: "change a team's settings" },
  {
    key: 'campaigns',
    title: 'Campaign codes',
    allowed: (me) => can(me, 'leads.read') || can(me, 'campaigns.manage'),
    needs: 'see campaign codes',
  },
  { key: 'automations', title: 'Automations', allowed: (me) => can(me, 'campaigns.manage'), needs: 'manage automated WhatsApp sequences' },
  { key: 'links', title: 'Quick-chat links', allowed: (me) => can(me, 'quick_links.manage'), needs: 'share quick-chat links' },
  { key: 'numbers', title: 'WhatsApp numbers', allowed: (me) => can(me, 'accounts.manage'), needs: 'manage WhatsApp numbers' },
  { key: 'jobs', title: 'Scheduled jobs', allowed: (me) => can(me, 'audit.read'), needs: 'see what the hub has scheduled' },
  { key: 'templates', title: 'Message templates', allowed: (me) => can(me, 'campaigns.manage'), needs: 'manage message templates' },
  { key: 'account', title: 'My account', allowed: () => true, needs: '' },
];

const MAKERS = {
  agents: setupAgentsSection,
  teams: setupTeamsSection,
  campaigns: setupCampaignsSection,
  automations: setupAutomationsSection,
  links: setupLinksSection,
  numbers: setupNumbersSection,
  jobs: setupJobsSection,
  templates: setupTemplatesSection,
  widget: setupWidgetSection,
  pipeline: setupPipelineSection,
  account: setupAccountSection,
};

/**
 * @param {{accounts: object, me: object, signal: AbortSignal,
 *          navigate: (hash: string) => void, back: (parent: string) => void,
 *          changeOwnPassword: (current: string, next: string) => Promise<void>}} opts
 */
export function setupSettings({ accounts, me, signal, navigate, back, changeOwnPassword }) {
  const page = document.getElementById('settings-page');
  const layout = document.querySelector('.layout');
  const body = document.getElementById('settings-body');
  const title = document.getElementById('settings-title');
  let pending = null; // what a navigation hands to the next view (a notice)
  const ctx = {
    accounts,
    me,
    signal,
    back,
    changeOwnPassword,
    navigate(hash, handover) {
      pending = handover || null;
      navigate(hash);
    },
  };
  const mounted = new Map(); // key -> section, built on first visit
  let current = null;
  let visible = false;

  for (const s of SECTIONS) {
    const item = document.getElementById(`settings-nav-${s.key}`);
    if (item) item.closest('li').hidden = !s.allowed(me);
  }

  function section(key) {
    if (!mounted.has(key)) {
      mounted.set(key, MAKERS[key](ctx));
    }
    return mounted.get(key);
  }

  function forbidden(s) {
    const head = sectionHead({ title: 'Not available to you', backLabel: 'Back to settings', onBack: () => back('#/settings'), testid: 'forbidden-title' });
    return h(
      'section',
      { className: 'settings-section', dataset: { testid: 'settings-forbidden' } },
      head.root,
      h(
        'div',
        { className: 'settings-card sf-forbidden' },
        icon('shield'),
        h(
          'div',
          {},
          h('p', {}, `“${s.title}” is for people who may ${s.needs}. Your role, ${roleLabel(me.role)}, does not include that.`),
          h('p', { className: 'sf-muted' }, 'If you need it, ask an admin to change your role.'),
          h('p', {}, h('a', { href: '#/settings/account' }, 'Go to My account'), ' · ', h('a', { href: '#/' }, 'Back to the inbox')),
        ),
      ),
    );
  }

  function notFound() {
    const head = sectionHead({ title: 'No such page', backLabel: 'Back to settings', onBack: () => back('#/settings') });
    return h(
      'section',
      { className: 'settings-section', dataset: { testid: 'settings-unknown' } },
      head.root,
      h('p', { className: 'settings-card' }, 'There is no settings page at this address. ', h('a', { href: '#/settings' }, 'See all settings')),
    );
  }

  /** Shows `#/settings/{rest}`; `rest` is '' for the menu. */
  function show(rest) {
    const parts = rest.split('/').filter(Boolean).map(decodeURIComponent);
    const handover = pending || {};
    pending = null;
    if (!visible) {
      visible = true;
      page.hidden = false;
      layout.hidden = true;
    }
    // Wide screens have room for a section beside the menu: the first one allowed
    // (a phone shows the menu alone, a view of its own).
    if (!parts.length && !PHONE.matches) {
      parts.push(SECTIONS.find((s) => s.allowed(me)).key);
      history.replaceState(history.state, '', `#/settings/${parts[0]}`);
    }
    page.dataset.depth = String(Math.min(parts.length, 2));
    // A new view starts at its top, not where the last one was scrolled to.
    page.scrollTop = 0;
    const key = parts[0];
    for (const s of SECTIONS) {
      const link = document.getElementById(`settings-nav-${s.key}`);
      if (!link) continue;
      if (s.key === key) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const s = SECTIONS.find((x) => x.key === key);
    if (current && current !== key && mounted.has(current)) mounted.get(current).leave();
    current = key;
    if (!key) {
      body.replaceChildren();
      title.focus({ preventScroll: true });
      return;
    }
    if (!s) {
      body.replaceChildren(notFound());
      focusFirst(parts.length);
      return;
    }
    if (!s.allowed(me)) {
      body.replaceChildren(forbidden(s));
      focusFirst(parts.length);
      return;
    }
    const view = section(key);
    if (body.firstElementChild !== view.element) body.replaceChildren(view.element);
    view.route(parts.slice(1), handover);
  }

  function focusFirst(depth) {
    const target = depth ? body.querySelector('.settings-heading') : title;
    if (target) target.focus({ preventScroll: true });
  }

  function hide() {
    if (!visible) return;
    visible = false;
    page.hidden = true;
    layout.hidden = false;
    if (current && mounted.has(current)) mounted.get(current).leave();
    current = null;
  }

  signal.addEventListener('abort', () => {
    hide();
    body.replaceChildren();
    mounted.clear();
  });

  /** Live frames for the sections that want them (`number_status`). */
  function onFrame(f) {
    for (const s of mounted.values()) if (s.onFrame) s.onFrame(f);
  }

  return { show, hide, isVisible: () => visible, onFrame };
}
