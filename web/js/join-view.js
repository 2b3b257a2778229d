// Joining by code (`/j/CODE`): look the code up (no token needed), then
// join the party as a guest with just a name (`POST /v1/auth/guest`), or
// sign in; either way the session page opens. Someone already signed in
// goes straight in.

import { api } from './api.js';
import { auth } from './auth.js';
import { $, formError, withBusy } from './dom.js';
import { plural, problem } from './messages.js';

let target = null; // {code, sessionId, name, host, members, active}
let looking = null; // the code being looked up

/** The session page of the party (leaving the /j/ path). */
function enter(sessionId) {
  location.replace(`/#/s/${sessionId}`);
}

export function initJoinView() {
  $('#form-guest').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.currentTarget;
    const name = f.name.value.trim();
    if (!name) {
      formError(f, 'Enter a name so people know who added what.');
      return;
    }
    if (!target) return;
    withBusy(f, async () => {
      try {
        const r = await api('POST', '/auth/guest', { name });
        formError(f, null);
        const sessionId = target.sessionId;
        auth.set(r.token, { ...r.user, guest: true });
        enter(sessionId);
      } catch (err) {
        formError(f, `Couldn't join. ${problem(err)}`);
      }
    });
  });
  $('#join-signin').addEventListener('click', (e) => {
    e.preventDefault();
    if (target) enter(target.sessionId);
  });
}

/** Show the join page for `code`. */
export async function showJoin(code) {
  if (target && target.code === code) {
    if (auth.signedIn) enter(target.sessionId);
    return;
  }
  if (looking === code) return;
  looking = code;
  $('#join-title').textContent = 'Finding the party…';
  $('#join-lead').textContent = '';
  $('#form-guest').hidden = true;
  $('#join-missing').hidden = true;
  try {
    target = await api('GET', `/join/${encodeURIComponent(code)}`);
  } catch (err) {
    looking = null;
    $('#join-kicker').textContent = 'Join a party';
    $('#join-title').textContent = err.status === 404 ? 'No party with this code' : "Couldn't look the code up";
    $('#join-missing').hidden = err.status !== 404;
    if (err.status !== 404) $('#join-lead').textContent = problem(err);
    return;
  }
  looking = null;
  if (auth.signedIn) {
    enter(target.sessionId);
    return;
  }
  $('#join-kicker').textContent = `${target.host.name} invites you`;
  $('#join-title').textContent = target.name;
  $('#join-lead').textContent = `${plural(target.members, 'person', 'people')} in this party. Pick a name and you're in.`;
  $('#form-guest').hidden = false;
  $('#guest-name').focus();
}
