/*
 * Entry point of the agent inbox (/app/main.js): signs in, wires the API, the
 * /ws/agent socket, the store and the views together, routes server frames to
 * them, and tears everything down again on logout or an expired session.
 */
import { createApi } from './api.js';
import { HubSocket } from './socket.js';
import { Store } from './store.js';
import { auth, setupLogin } from './login.js';
import { setupConversationList } from './conversation-list.js';
import { setupConversationView } from './conversation-view.js';
import { toastError } from './toast.js';
import { createRoutingApi, noteServerDate } from './routing-api.js';
import { setupOffers } from './offers.js';
import { setupLeadPanel } from './lead-panel.js';
import { setupTeamPage } from './team.js';
import { setupRoutingPanel } from './routing-panel.js';
import { setupNotifications } from './notify.js';
import { createBotApi } from './bot-api.js';
import { setupBotPanel } from './bot-panel.js';
import { setupBotSettings } from './bot-settings.js';
import { setupAuditPage } from './audit.js';
import { setupDashboard } from './dashboard.js';
import { contactName } from './contact.js';
import { registerServiceWorker, setOffline } from './pwa.js';
import { can } from './permissions.js';
import { createAccountsApi } from './accounts-api.js';
import { setupSettings } from './settings.js';
import { createLeadsData } from './leads-data.js';
import { setupLeadsPage } from './leads-page.js';
import { setupTasksPage } from './tasks-page.js';
import { setupAlerts } from './alerts.js';
import { createContactsApi } from './contacts-data.js';
import { setupContactTags } from './contact-tags.js';
import { setupContactsPage } from './contacts-page.js';
import { setupBroadcastsPage } from './broadcasts-page.js';

const WS_URL = `${location.origin.replace(/^http/, 'ws')}/ws/agent`;
const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

let token = auth.load();
let session = null; // everything that lives only while signed in
// Set by start() while signed in: the router's entry points.
let navigateTo = null;
let routeNow = null;
let detailsHash = () => '#/';

const conversationHash = (id) => `#/c/${encodeURIComponent(id)}`;

/** Moves to `hash` as a new history entry (so the browser's back button undoes it). */
function navigate(hash) {
  if (navigateTo) navigateTo(hash);
  else location.hash = hash;
}

/**
 * The on-screen back buttons: one step back through the app's own history
 * entries, or to the list when the page was opened on a deep link.
 */
function goBack() {
  const hash = location.hash;
  goUp(/\/details$/.test(hash) ? hash.replace(/\/details$/, '') : '#/');
}

/** goBack() for a view whose parent is `up` (the settings' stacked views). */
function goUp(up) {
  if (history.state && history.state.inbox) {
    history.back();
    return;
  }
  history.replaceState(null, '', up);
  if (routeNow) routeNow();
}

const api = createApi({
  getToken: () => token,
  onUnauthorized: () => logout('Your session has expired. Please sign in again.'),
  onResponse: noteServerDate,
});

const routingApi = createRoutingApi(api);
const accountsApi = createAccountsApi(api.request);
const botApi = createBotApi(api);

const login = setupLogin({
  api,
  onLoggedIn(newToken, remember) {
    token = newToken;
    auth.save(newToken, remember);
    start();
  },
});

const appEl = document.getElementById('app');
const meName = document.getElementById('me-name');
const presenceSelect = document.getElementById('presence-select');
const connectionEl = document.getElementById('connection-status');
const navTeam = document.getElementById('nav-team');
const teamBack = document.getElementById('team-back');
const navBot = document.getElementById('nav-bot');
const botBack = document.getElementById('bot-back');
const navSettings = document.getElementById('nav-settings');
const navDashboard = document.getElementById('nav-dashboard');
const settingsBack = document.getElementById('settings-back');
const navLeads = document.getElementById('nav-leads');
const navTasks = document.getElementById('nav-tasks');
const navContacts = document.getElementById('nav-contacts');
const navBroadcasts = document.getElementById('nav-broadcasts');

const navMenu = document.getElementById('nav-menu');
const mainNav = document.getElementById('main-nav');

/**
 * The Pages menu of a phone (style.css folds the page links into it below 760 px):
 * its button opens it; following a link, Escape or a click elsewhere closes it.
 */
function setNavMenu(open) {
  mainNav.classList.toggle('is-open', open);
  navMenu.setAttribute('aria-expanded', String(open));
}
navMenu.addEventListener('click', () => setNavMenu(!mainNav.classList.contains('is-open')));
mainNav.addEventListener('click', (e) => {
  if (e.target.closest('a')) setNavMenu(false);
});
document.addEventListener('click', (e) => {
  if (!mainNav.contains(e.target) && !navMenu.contains(e.target)) setNavMenu(false);
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && mainNav.classList.contains('is-open')) {
    setNavMenu(false);
    navMenu.focus();
  }
});

document.getElementById('logout').addEventListener('click', () => logout());
document.getElementById('view-back').addEventListener('click', goBack);
document.getElementById('view-details').addEventListener('click', () => navigate(detailsHash()));

async function start() {
  let me;
  try {
    ({ agent: me } = await api.me());
  } catch (err) {
    if (err.status === 0) {
      // The hub is unreachable (the shell came from the service worker's cache):
      // say so, and start again by itself once it answers.
      setOffline(true);
      retryWhenReachable();
      return;
    }
    // 401 already went through onUnauthorized; anything else keeps the token
    // so signing in is one click once the hub is reachable again.
    if (err.status !== 401) login.show(err.message);
    return;
  }
  setOffline(false);
  if (!token) return; // logged out while waiting

  const controller = new AbortController();
  const { signal } = controller;
  const store = new Store();
  store.setMe(me);

  let socketToken = null; // the token the socket last authenticated with
  let renewing = null; // our own password change in flight: a revocation is expected
  const socket = new HubSocket({
    url: WS_URL,
    getToken: () => (socketToken = token),
    getCursors: () => {
      const cursors = store.cursors();
      const active = view.cursor();
      if (active) cursors[active.id] = active.seq;
      return cursors;
    },
  });
  const view = setupConversationView({ store, api, socket, signal });
  // Leads (issue 5): the details panel follows whichever conversation the view opens.
  // Contacts (issue 17 §3): the contact's tags and consent in the details panel.
  const contactsApi = can(me, 'leads.read') ? createContactsApi(api.request) : null;
  const contactTags = contactsApi ? setupContactTags({ contacts: contactsApi, me, signal }) : null;
  const leadPanel = setupLeadPanel({ request: api.request, store, signal, onBack: goBack, contactExtra: contactTags });
  // The bot (issue 6): its strip follows the open conversation too.
  const botPanel = setupBotPanel({ botApi, view, signal });
  const openView = view.open;
  view.open = (id) => {
    // Once per conversation: re-opening the open one must not re-fetch (a 404
    // for a lead that does not exist yet would be logged every time).
    if (store.activeId !== id) {
      leadPanel.show(id);
      botPanel.show(id);
    }
    return openView(id);
  };
  const list = setupConversationList({
    store,
    api,
    signal,
    onSelect: (id) => navigate(conversationHash(id)),
  });
  session = { controller, socket, store };

  // Routing (issue 4): poll offers for everyone, the team page for supervisors.
  const supervises = can(me, 'team.supervise');
  const team = supervises ? setupTeamPage({ store, routingApi, assign: api.assign, signal }) : null;
  const botPage = supervises ? setupBotSettings({ botApi, teams: api.teams, me, signal }) : null;
  // The audit log (issue 16): for audit.read (admins).
  const auditPage =
    can(me, 'audit.read') ? setupAuditPage({ request: api.request, agents: api.agents, teams: api.teams, signal }) : null;
  // The marketing dashboard (seed 001): for analytics.read.
  const dashboard = can(me, 'analytics.read')
    ? setupDashboard({
        request: api.request,
        teams: api.teams,
        me,
        canTakeOver: can(me, 'conversations.reply'),
        navigate,
        signal,
      })
    : null;
  // Roles that read no conversations (marketing) have no inbox: the hub would
  // refuse the list, so the app opens on their first page instead.
  const readsConversations = can(me, 'conversations.read_team');
  const homeHash = readsConversations ? null : dashboard ? '#/dashboard' : '#/settings';
  // Leads and tasks screens (issue 16): for leads.read; read-only without leads.edit.
  const leadsData = can(me, 'leads.read') ? createLeadsData({ request: api.request, me }) : null;
  const leadsPage = leadsData ? setupLeadsPage({ request: api.request, data: leadsData, signal }) : null;
  const tasksPage = leadsData ? setupTasksPage({ request: api.request, data: leadsData, signal }) : null;
  // The Contacts page (issue 17 §3): search, tags, segments, consent; for leads.read.
  const contactsPage =
    contactsApi && leadsData
      ? setupContactsPage({ contacts: contactsApi, data: leadsData, me, agentName: (id) => store.agentName(id), navigate, signal })
      : null;
  // Broadcasts (issue 17 §4): for campaigns.send.
  const broadcastsPage = can(me, 'campaigns.send') ? setupBroadcastsPage({ request: api.request, navigate, signal }) : null;
  const offers = setupOffers({
    store,
    routingApi,
    socket,
    signal,
    onWon(id) {
      // The claim is committed: this summary is fresher than any fetched before it.
      api
        .conversation(id)
        .then((conv) => store.upsert(conv))
        .catch(() => {});
      navigate(conversationHash(id));
    },
  });
  setupRoutingPanel({ store, routingApi, signal });
  // Accounts (issue 16): "My account" for everyone, the rest by permission.
  const settings = setupSettings({
    accounts: accountsApi,
    me,
    signal,
    navigate,
    back: goUp,
    async changeOwnPassword(current, next) {
      let settle;
      renewing = new Promise((resolve) => {
        settle = resolve;
      });
      try {
        const { token: fresh } = await accountsApi.changeOwnPassword(current, next);
        token = fresh;
        auth.renew(fresh);
      } finally {
        renewing = null;
        settle();
      }
    },
  });
  const notify = setupNotifications({
    store,
    signal,
    describe(id) {
      const conv = store.conversations.get(id);
      return conv ? contactName(conv.contact) : '';
    },
    onOpen: (id) => navigate(conversationHash(id)),
  });
  // The notification centre (issue 16): handovers and overdue tasks, docs/alerts.md.
  const alerts = setupAlerts({
    me,
    request: api.request,
    signal,
    who: (id) => (store.conversations.get(id) ? contactName(store.conversations.get(id).contact) : ''),
    raise: notify.raise,
    navigate,
  });
  navTeam.hidden = !supervises;
  navBot.hidden = !supervises;
  document.getElementById('settings-nav-audit').closest('li').hidden = !auditPage;
  navSettings.hidden = false;
  navDashboard.hidden = !dashboard;
  navLeads.hidden = !leadsPage;
  navTasks.hidden = !tasksPage;
  navContacts.hidden = !contactsPage;
  navBroadcasts.hidden = !broadcastsPage;
  // Hash router: #/ (the list), #/c/{id} (a conversation), #/c/{id}/details (its
  // details, a stacked view on narrow screens), #/team, #/bot, #/leads,
  // #/leads/{id}, #/tasks, #/contacts/… (contacts-page.js),
  // #/broadcasts[/new|/{id}[/edit]], #/settings/… (its own stacked views, settings.js).
  // In-app moves push
  // a history entry, so the browser's back button walks the same stack as the
  // on-screen back buttons.
  let lastInbox = '#/';
  let routed = null; // the hash last routed: hashchange and popstate both report one move
  function route() {
    let hash = location.hash || '#/';
    if (homeHash && (hash === '#/' || hash.startsWith('#/c/'))) {
      history.replaceState(null, '', homeHash);
      hash = homeHash;
    }
    routed = hash;
    const onTeam = Boolean(team) && hash === '#/team';
    const onBot = Boolean(botPage) && hash === '#/bot';
    const onAudit = Boolean(auditPage) && hash === '#/audit';
    const onDashboard = Boolean(dashboard) && hash === '#/dashboard';
    const settingsMatch = /^#\/settings(?:\/(.*))?$/.exec(hash);
    const leadsMatch = leadsPage && /^#\/leads(?:\/([^/]+))?$/.exec(hash);
    const onTasks = Boolean(tasksPage) && hash === '#/tasks';
    const contactsMatch = contactsPage && /^#\/contacts(?:\/(.*))?$/.exec(hash);
    const broadcastsMatch = broadcastsPage && /^#\/broadcasts(?:\/(.+))?$/.exec(hash);
    // Hide first: each page's hide() shows the inbox layout again.
    if (team && !onTeam) team.hide();
    if (botPage && !onBot) botPage.hide();
    if (auditPage && !onAudit) auditPage.hide();
    if (dashboard && !onDashboard) dashboard.hide();
    if (!settingsMatch) settings.hide();
    if (leadsPage && !leadsMatch) leadsPage.hide();
    if (tasksPage && !onTasks) tasksPage.hide();
    if (contactsPage && !contactsMatch) contactsPage.hide();
    if (broadcastsPage && !broadcastsMatch) broadcastsPage.hide();
    for (const [nav, on] of [
      [navTeam, onTeam],
      [navBot, onBot],
      [navDashboard, onDashboard],
      [navSettings, Boolean(settingsMatch) || onAudit],
      [navLeads, Boolean(leadsMatch)],
      [navTasks, onTasks],
      [navContacts, Boolean(contactsMatch)],
      [navBroadcasts, Boolean(broadcastsMatch)],
    ]) {
      if (on) nav.setAttribute('aria-current', 'page');
      else nav.removeAttribute('aria-current');
    }
    // "← Inbox" returns to the conversation that was open, if any.
    teamBack.href = lastInbox;
    botBack.href = lastInbox;
    settingsBack.href = lastInbox;
    if (onTeam) return team.show();
    if (onBot) return botPage.show();
    if (onAudit) return auditPage.show(lastInbox);
    if (onDashboard) return dashboard.show();
    if (settingsMatch) return settings.show(settingsMatch[1] || '');
    if (leadsMatch) return leadsPage.show(leadsMatch[1] ? decodeURIComponent(leadsMatch[1]) : '', lastInbox);
    if (onTasks) return tasksPage.show(lastInbox);
    if (contactsMatch) return contactsPage.show(contactsMatch[1] || '', lastInbox);
    if (broadcastsMatch) return broadcastsPage.show(broadcastsMatch[1] || '', lastInbox);
    const match = /^#\/c\/([^/]+)(\/details)?$/.exec(hash);
    const details = Boolean(match && match[2]);
    appEl.classList.toggle('show-details', details);
    if (!match) {
      lastInbox = '#/';
      view.close();
      return undefined;
    }
    const id = decodeURIComponent(match[1]);
    lastInbox = conversationHash(id);
    view.open(id);
    if (details) leadPanel.element.focus({ preventScroll: true });
    return undefined;
  }
  const onMove = () => (location.hash || '#/') !== routed && route();
  window.addEventListener('hashchange', onMove, { signal });
  window.addEventListener('popstate', onMove, { signal });
  navigateTo = (hash) => {
    if (location.hash === hash) return route();
    history.pushState({ inbox: true }, '', hash);
    return route();
  };
  routeNow = route;
  detailsHash = () => (store.activeId ? `${conversationHash(store.activeId)}/details` : '#/');

  meName.textContent = me.name;
  presenceSelect.value = 'online';
  presenceSelect.addEventListener('change', () => socket.send({ type: 'presence', status: presenceSelect.value }), {
    signal,
  });

  const fetching = new Set();
  function fetchUnknown(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    api
      .conversation(id)
      .then((conv) => store.upsert(conv))
      .catch(() => {
        /* not visible to us after all */
      })
      .finally(() => fetching.delete(id));
  }

  let connectedBefore = false;
  socket.addEventListener('state', (e) => {
    connectionEl.textContent = CONNECTION_TEXT[e.detail] || '';
    connectionEl.dataset.state = e.detail;
  });
  socket.addEventListener('hello', () => {
    // The hub does not remember "away" across connections.
    if (presenceSelect.value !== 'online') socket.send({ type: 'presence', status: presenceSelect.value });
  });
  socket.addEventListener('ready', () => {
    setOffline(false);
    view.flushOutbox();
    view.markRead();
    // Summaries of conversations nobody resumed may have changed while away.
    if (connectedBefore && readsConversations) list.load();
    connectedBefore = true;
    if (can(me, 'conversations.reply')) offers.load();
    if (team && team.isVisible()) team.load();
  });
  socket.addEventListener('unauthorized', async () => {
    // Changing one's own password ends every session of one's own, this socket's
    // too: reconnect with the new token instead of signing out.
    if (renewing) await renewing;
    if (token && socketToken !== token) {
      socket.start();
      return;
    }
    logout('Your session has expired. Please sign in again.');
  });
  socket.addEventListener('frame', (e) => {
    const f = e.detail;
    if (dashboard) dashboard.onFrame(f);
    switch (f.type) {
      case 'message':
        if (!store.applyMessage(f)) fetchUnknown(f.conversation_id);
        view.onFrame(f);
        botPanel.onFrame(f);
        notify.onMessage(f);
        break;
      case 'read':
        store.applyRead(f);
        break;
      case 'conversation':
        store.upsert(f.conversation);
        break;
      case 'assigned':
        store.applyAssigned(f);
        notify.onAssigned(f);
        break;
      case 'presence':
        store.setPresence(f.agent_id, f.status);
        break;
      case 'ack':
      case 'typing':
      case 'error':
        view.onFrame(f);
        if (f.type === 'error' && f.ref === 'claim') offers.onFrame(f);
        break;
      case 'offer':
      case 'offer_closed':
        offers.onFrame(f);
        if (f.type === 'offer') notify.onOffer(f);
        break;
      case 'lead':
      case 'timeline':
      case 'task_due':
        leadPanel.onFrame(f);
        if (leadsPage) leadsPage.onFrame(f);
        if (tasksPage && f.type !== 'timeline') tasksPage.onFrame(f);
        if (f.type === 'timeline') botPanel.onFrame(f);
        if (f.type === 'task_due') alerts.onFrame(f);
        break;
      case 'handover':
        alerts.onFrame(f);
        break;
      case 'number_status':
        alerts.onFrame(f);
        settings.onFrame(f);
        break;
      case 'bot':
        botPanel.onFrame(f);
        break;
      case 'contact_tags':
        if (contactTags) contactTags.onFrame(f);
        if (contactsPage) contactsPage.onFrame(f);
        break;
      case 'workload':
      case 'routing_alert':
        if (team) team.onFrame(f);
        break;
      default:
        break;
    }
  });
  signal.addEventListener('abort', () => socket.stop());

  login.hide();
  appEl.hidden = false;
  socket.start();

  api
    .agents()
    .then(({ agents }) => store.setAgents(agents))
    .catch(() => {
      /* names fall back to "Agent" */
    });
  if (readsConversations) await list.load();

  if (!signal.aborted) route();
}

function logout(notice) {
  token = null;
  auth.clear();
  if (session) {
    session.controller.abort();
    session = null;
  }
  appEl.hidden = true;
  navTeam.hidden = true;
  navBot.hidden = true;
  navSettings.hidden = true;
  navDashboard.hidden = true;
  navLeads.hidden = true;
  navTasks.hidden = true;
  navContacts.hidden = true;
  navBroadcasts.hidden = true;
  teamBack.href = '#/';
  settingsBack.href = '#/';
  botBack.href = '#/';
  navigateTo = null;
  routeNow = null;
  appEl.classList.remove('show-details');
  meName.textContent = '';
  connectionEl.textContent = '';
  history.replaceState(null, '', location.pathname);
  login.show(notice);
}

let retryTimer = 0;
let retryDelay = 2000;
/** Tries start() again: at once when the browser says it is online, else with backoff. */
function retryWhenReachable() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => {
    retryDelay = Math.min(retryDelay * 2, 30000);
    if (token && !session) start();
  }, retryDelay);
}
window.addEventListener('online', () => {
  retryDelay = 2000;
  if (token && !session) start();
});

// Unexpected failures in async handlers surface as a toast, not a silent stop.
window.addEventListener('unhandledrejection', (e) => {
  toastError(e.reason);
});

registerServiceWorker();
if (token) start();
else login.show();
