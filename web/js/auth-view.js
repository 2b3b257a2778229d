// Signing in and creating an account: the two forms and their tabs. Each
// form says what went wrong right under its fields, in plain words.

import { api } from './api.js';
import { auth } from './auth.js';
import { $, formError, withBusy } from './dom.js';
import { problem } from './messages.js';

export function initAuthView() {
  const tabs = [$('#tab-signin'), $('#tab-signup')];
  $('#tab-signin').addEventListener('click', () => selectTab('signin'));
  $('#tab-signup').addEventListener('click', () => selectTab('signup'));
  for (const tab of tabs) {
    tab.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      const next = tab.id === 'tab-signin' ? 'signup' : 'signin';
      selectTab(next);
      $(`#tab-${next}`).focus();
      e.preventDefault();
    });
  }

  $('#form-signin').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.currentTarget;
    withBusy(f, async () => {
      try {
        const r = await api('POST', '/auth/token', { email: f.email.value.trim(), password: f.password.value });
        formError(f, null);
        f.reset();
        auth.set(r.token, r.user);
      } catch (err) {
        formError(f, err.status === 401
          ? 'Sign-in failed: wrong email or password.'
          : `Sign-in failed. ${problem(err)}`);
      }
    });
  });

  $('#form-signup').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.currentTarget;
    withBusy(f, async () => {
      try {
        const r = await api('POST', '/users', {
          email: f.email.value.trim(),
          name: f.name.value.trim(),
          password: f.password.value,
        });
        formError(f, null);
        f.reset();
        auth.set(r.token, r.user);
      } catch (err) {
        formError(f, `Couldn't create the account. ${problem(err)}`);
      }
    });
  });
}

function selectTab(which) {
  const signin = which === 'signin';
  $('#tab-signin').setAttribute('aria-selected', String(signin));
  $('#tab-signup').setAttribute('aria-selected', String(!signin));
  $('#tab-signin').tabIndex = signin ? 0 : -1;
  $('#tab-signup').tabIndex = signin ? -1 : 0;
  $('#form-signin').hidden = !signin;
  $('#form-signup').hidden = signin;
}

/** The lead line: joining a session, or just signing in. */
export function showAuthView(forSession) {
  $('#auth-lead').textContent = forSession
    ? 'Sign in or create an account to join this session.'
    : "Sign in to start a session or join your friends' queue.";
}
