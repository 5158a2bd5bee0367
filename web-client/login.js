/*
 * Login screen and token storage. The token lives in sessionStorage (this tab)
 * and, with "remember me", also in localStorage so a new tab starts signed in.
 */

const KEY = 'switchboard.agent_token';

export const auth = {
  load() {
    try {
      return sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
    } catch {
      return null;
    }
  },
  save(token, remember) {
    try {
      sessionStorage.setItem(KEY, token);
      if (remember) localStorage.setItem(KEY, token);
      else localStorage.removeItem(KEY);
    } catch {
      /* storage blocked: the token only lives in memory for this page */
    }
  },
  /** Replaces the stored token where it is kept (a password change issues a new one). */
  renew(token) {
    try {
      sessionStorage.setItem(KEY, token);
      if (localStorage.getItem(KEY)) localStorage.setItem(KEY, token);
    } catch {
      /* storage blocked: the token only lives in memory for this page */
    }
  },
  clear() {
    try {
      sessionStorage.removeItem(KEY);
      localStorage.removeItem(KEY);
    } catch {
      /* nothing stored */
    }
  },
};

/**
 * Wires the static login form of index.html.
 * @param {{api: object, onLoggedIn: (token: string, remember: boolean) => void}} opts
 * @returns {{show: (notice?: string) => void, hide: () => void}}
 */
export function setupLogin({ api, onLoggedIn }) {
  const screen = document.getElementById('login-screen');
  const form = document.getElementById('login-form');
  const errorEl = document.getElementById('login-error');
  const submit = form.querySelector('[data-testid="login-submit"]');

  function showError(text) {
    errorEl.textContent = text || '';
    errorEl.hidden = !text;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const email = form.elements.email.value.trim();
    const password = form.elements.password.value;
    if (!email || !password) {
      showError('Enter your email and password.');
      return;
    }
    showError('');
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const { token } = await api.login(email, password);
      form.elements.password.value = '';
      onLoggedIn(token, form.elements.remember.checked);
    } catch (err) {
      showError(err.code === 'invalid_credentials' || err.status === 401 ? 'Wrong email or password.' : err.message);
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });

  return {
    show(notice) {
      screen.hidden = false;
      showError(notice || '');
      (form.elements.email.value ? form.elements.password : form.elements.email).focus();
    },
    hide() {
      screen.hidden = true;
      showError('');
    },
  };
}
