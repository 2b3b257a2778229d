// Audotics Hub web client: plain ES modules, no build step, no framework.
// This entry wires the modules under js/ and routes between the three pages
// (sign-in, home, a session); each module says at its top what it is for.
//
//   api, auth            REST and who is signed in
//   connection           the WebSocket: join/resume, heartbeat, reconnects
//   session-state        the queue, members and pending ops (pure)
//   session              ops, acks, errors in words, Undo, the end
//   session-view, queue-view, drag, row-menu, members-view, feed-view,
//   search, invite, tabs the session page's parts
//   now-playing-view, cover, suggestions-view, settings-view  the party's parts
//   join-view (/j/CODE), tv-view (/tv/CODE), claim-view (a guest keeps the account)
//   notice, toasts       the one place for trouble; at most one toast
//   messages             every sentence the page shows from hub codes

import { auth } from './js/auth.js';
import { initAuthView, showAuthView } from './js/auth-view.js';
import { initClaim, renderClaim } from './js/claim-view.js';
import { initJoinView, showJoin } from './js/join-view.js';
import { showTv } from './js/tv-view.js';
import { $ } from './js/dom.js';
import { initHomeView } from './js/home-view.js';
import { initInvite } from './js/invite.js';
import { clearError, initNotice } from './js/notice.js';
import { currentRoute } from './js/router.js';
import { parseSpotify } from './js/search.js';
import { Session } from './js/session.js';
import { initSessionView, mountSession, reaction, render, unmountSession } from './js/session-view.js';

let session = null;

function showView(name) {
  for (const v of ['auth', 'home', 'session', 'join', 'tv']) $(`#view-${v}`).hidden = v !== name;
}

function renderAccount() {
  $('#account').hidden = !auth.signedIn;
  $('#account-name').textContent = auth.signedIn ? auth.user.name : '';
  renderClaim();
}

function leaveSession() {
  if (!session) return;
  session.close();
  session = null;
  unmountSession();
}

function route() {
  const r = currentRoute();
  if (r.name === 'tv') {
    leaveSession();
    showView('tv');
    showTv(r.code);
    return;
  }
  if (r.name === 'join') {
    leaveSession();
    showView('join');
    showJoin(r.code);
    return;
  }
  if (!auth.signedIn) {
    leaveSession();
    showAuthView(r.name === 'session');
    showView('auth');
    return;
  }
  if (r.name === 'session') {
    if (!session || session.id !== r.id) {
      leaveSession();
      clearError();
      session = new Session(r.id, { onChange: render, onReaction: reaction });
      mountSession(session);
      session.start();
    }
    showView('session');
  } else {
    leaveSession();
    showView('home');
  }
}

initNotice();
initAuthView();
initHomeView();
initInvite();
initSessionView();
initJoinView();
initClaim();

auth.onChange(() => {
  renderAccount();
  route();
});
$('#sign-out').addEventListener('click', () => {
  leaveSession();
  auth.clear();
  location.hash = '#/';
});
window.addEventListener('hashchange', route);
window.addEventListener('pagehide', leaveSession);
// Back from the back-forward cache: the session was left on pagehide.
window.addEventListener('pageshow', (e) => { if (e.persisted) route(); });

renderAccount();
route();

// For tests and debugging: a read-only look at the client's state.
window.audotics = {
  get version() { return session ? session.state.version : null; },
  get state() { return session ? (session.state.ended ? 'ended' : session.connState) : null; },
  get queue() { return session ? session.state.queue.map((e) => e.entryId) : []; },
  get pending() { return session ? session.state.pending.size : 0; },
  get clockOffset() { return session ? session.clockOffset : null; },
  parseSpotify,
};
