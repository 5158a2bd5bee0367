/*
 * Notifications (issue 14): the bell in the top bar asks for permission (browsers
 * only allow asking from a user gesture) and turns them off and on again; once
 * granted, new offers, new customer messages and conversations assigned to me
 * raise a system notification through the service worker registration (what an
 * installed app on a phone requires) while the inbox tab is hidden. Clicking one
 * focuses the inbox on that conversation (sw.js). Assignments also play a short
 * chime, with or without permission.
 */
import { icon } from './dom.js';
import { readyRegistration, onServiceWorkerOpen } from './pwa.js';

const PREF_KEY = 'switchboard.notify';
const APP_ICON = '/app/pwa/icon-192.png';

let audio = null;

/** A 160 ms two-tone chime through Web Audio (no sound file to serve). */
function chime() {
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    [880, 1320].forEach((freq, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.08);
      gain.gain.exponentialRampToValueAtTime(0.15, now + i * 0.08 + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.08 + 0.08);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.08);
      osc.stop(now + i * 0.08 + 0.09);
    });
  } catch {
    /* no audio (autoplay policy before any click, or no device) */
  }
}

function supported() {
  return 'Notification' in window;
}

function wanted() {
  try {
    return localStorage.getItem(PREF_KEY) !== 'off';
  } catch {
    return true;
  }
}

function setWanted(on) {
  try {
    localStorage.setItem(PREF_KEY, on ? 'on' : 'off');
  } catch {
    /* storage blocked: the choice lasts for this page only */
  }
}

/** The bell: its icon, words and pressed state follow the permission and the agent's choice. */
function paintControl(button) {
  if (!supported()) {
    button.hidden = true;
    return;
  }
  button.hidden = false;
  const perm = Notification.permission;
  const on = perm === 'granted' && wanted();
  const label =
    perm === 'denied'
      ? 'Notifications are blocked in this browser’s site settings'
      : on
        ? 'Notifications on (turn off)'
        : 'Turn on notifications';
  button.replaceChildren(icon(on ? 'bell' : 'bell-off'), Object.assign(document.createElement('span'), { className: 'sr-only', textContent: label }));
  button.title = label;
  button.setAttribute('aria-pressed', String(on));
  button.disabled = perm === 'denied';
}

/** Raises a notification unless the inbox is in front of the agent. */
async function raise(title, body, conversationId) {
  if (!supported() || Notification.permission !== 'granted' || !wanted()) return;
  if (document.visibilityState === 'visible' && document.hasFocus()) return; // the inbox shows it
  const options = { body, tag: `conv-${conversationId}`, icon: APP_ICON, badge: APP_ICON, data: { conversationId } };
  try {
    const reg = await readyRegistration();
    if (reg) {
      await reg.showNotification(title, options);
      return;
    }
  } catch {
    /* no worker: try the page-level API below */
  }
  try {
    const n = new Notification(title, options);
    n.onclick = () => {
      window.focus();
      window.dispatchEvent(new CustomEvent('switchboard:open', { detail: conversationId }));
      n.close();
    };
  } catch {
    /* some platforms only allow notifications from a service worker */
  }
}

/**
 * Wires notifications for the signed-in agent. `describe(id)` returns the
 * conversation's display name; `onOpen(id)` opens it when a notification is clicked.
 */
export function setupNotifications({ store, signal, describe, onOpen }) {
  const button = document.getElementById('notify-toggle');
  if (button) {
    paintControl(button);
    button.addEventListener(
      'click',
      async () => {
        if (!supported()) return;
        if (Notification.permission === 'granted') {
          setWanted(!wanted());
        } else if (Notification.permission === 'default') {
          const answer = await Notification.requestPermission().catch(() => 'default');
          if (answer === 'granted') setWanted(true);
        }
        paintControl(button);
      },
      { signal },
    );
  }
  onServiceWorkerOpen((id) => !signal.aborted && onOpen(id));
  window.addEventListener('switchboard:open', (e) => onOpen(e.detail), { signal });

  return {
    /** A notification of one's own (the alerts centre): `raise(title, body, conversationId)`. */
    raise,
    /** Call with every `assigned` frame. */
    onAssigned(frame) {
      if (!store.me || frame.agent_id !== store.me.id) return;
      chime();
      raise('New conversation assigned to you', describe(frame.conversation_id) || 'Open the inbox to answer.', frame.conversation_id);
    },
    /** Call with every `offer` frame: a conversation offered to me. */
    onOffer(frame) {
      if (!frame.conversation_id) return;
      raise('New conversation offered to you', frame.preview || 'Open the inbox to claim it.', frame.conversation_id);
    },
    /** Call with every `message` frame: customers' messages notify. */
    onMessage(frame) {
      if (!frame.sender || frame.sender.kind !== 'guest') return;
      const who = describe(frame.conversation_id) || 'A customer';
      raise(`New message from ${who}`, frame.body || '', frame.conversation_id);
    },
  };
}
