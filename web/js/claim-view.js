// A guest keeps their account: "Keep account" in the account bar opens a
// short form (email, password) that claims it (`POST /v1/auth/claim`); the
// same account, its parties and tracks, now signs in with them.

import { api } from './api.js';
import { auth } from './auth.js';
import { $, formError, withBusy } from './dom.js';
import { problem } from './messages.js';
import * as toasts from './toasts.js';

function open(show) {
  $('#claim-panel').hidden = !show;
  if (show) $('#claim-email').focus();
}

export function initClaim() {
  $('#claim-open').addEventListener('click', () => open($('#claim-panel').hidden));
  $('#claim-cancel').addEventListener('click', () => open(false));
  $('#guest-sign-out').addEventListener('click', () => { open(false); $('#sign-out').click(); });
  $('#form-claim').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.currentTarget;
    withBusy(f, async () => {
      try {
        const r = await api('POST', '/auth/claim', { email: f.email.value.trim(), password: f.password.value });
        formError(f, null);
        f.reset();
        open(false);
        auth.set(auth.token, { ...r.user, guest: false });
        toasts.confirm('Account kept: sign in with your email next time.');
      } catch (err) {
        formError(f, err.status === 403
          ? 'This account is not a guest account any more.'
          : `Couldn't keep the account. ${problem(err)}`);
      }
    });
  });
}

/** The "Keep account" button shows for guests only. */
export function renderClaim() {
  const guest = Boolean(auth.signedIn && auth.user.guest);
  $('#claim-open').hidden = !guest;
  // A guest has no password: signing out loses the account, so it sits in
  // the claim panel, after the way to keep it.
  $('#sign-out').hidden = guest;
  if (!guest) $('#claim-panel').hidden = true;
}
