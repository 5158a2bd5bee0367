/*
 * Desktop notification and a short chime when a conversation is assigned to me
 * (round-robin, a won claim, a transfer). Permission is asked once, on the first
 * click after signing in (browsers only allow asking from a user gesture), and the
 * answer is remembered by the browser; with no permission only the chime plays.
 */

const ASKED_KEY = 'switchboard.notify_asked';

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

function askOnce() {
  if (!('Notification' in window) || Notification.permission !== 'default') return;
  try {
    if (localStorage.getItem(ASKED_KEY)) return;
    localStorage.setItem(ASKED_KEY, '1');
  } catch {
    /* storage blocked: may ask again next session */
  }
  Notification.requestPermission().catch(() => {});
}

/**
 * Wires assignment alerts for the signed-in agent. `describe(id)` returns the
 * conversation's display name; `onOpen(id)` opens it when the notification is clicked.
 */
export function setupNotifications({ store, signal, describe, onOpen }) {
  document.addEventListener('click', askOnce, { once: true, signal });
  return {
    /** Call with every `assigned` frame. */
    onAssigned(frame) {
      if (!store.me || frame.agent_id !== store.me.id) return;
      chime();
      if (!('Notification' in window) || Notification.permission !== 'granted') return;
      if (document.visibilityState === 'visible' && document.hasFocus()) return; // the inbox shows it
      try {
        const n = new Notification('New conversation assigned to you', {
          body: describe(frame.conversation_id) || 'Open the inbox to answer.',
          tag: `assigned-${frame.conversation_id}`,
        });
        n.onclick = () => {
          window.focus();
          onOpen(frame.conversation_id);
          n.close();
        };
      } catch {
        /* some platforms only allow notifications from a service worker */
      }
    },
  };
}
