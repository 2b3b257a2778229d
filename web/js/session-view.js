// The session page around the queue: its name, your role, the ended banner,
// which parts are offered (no adding or inviting once it ended; host
// controls for the host), and the End session confirmation. It renders a
// Session through the part views and passes their clicks back to it.

import { $ } from './dom.js';
import { addReaction, clearFeed } from './feed-view.js';
import { showInvite } from './invite.js';
import { initMembers, renderPeople } from './members-view.js';
import { initNowPlaying, renderNowPlaying, stopNowPlaying } from './now-playing-view.js';
import { initQueueView, renderQueue } from './queue-view.js';
import { initSettings, renderSettings } from './settings-view.js';
import { initSuggestions, renderSuggestions, resetSuggestions } from './suggestions-view.js';
import { initSearch, resetSearch } from './search.js';
import { showTab, initTabs } from './tabs.js';

let current = null; // the Session on screen

export function initSessionView() {
  const act = (fn) => (...args) => current && fn(current, ...args);
  initTabs();
  initQueueView({
    like: act((s, id) => s.like(id)),
    skip: act((s, id) => s.skip(id)),
    remove: act((s, id) => s.remove(id)),
    move: act((s, id, to) => s.move(id, to)),
    vote: act((s, id, up) => s.vote(id, up)),
    pin: act((s, id) => s.pin(id)),
    play: act((s, id) => s.play(id)),
    plannedIndex: (id) => (current ? current.plannedIndex(id) : -1),
    goAdd: () => showTab('add', { focus: true }),
  });
  initSearch({
    add: (ref) => (current ? current.add(ref) : Promise.resolve({ ok: false })),
    queuedTracks: () => (current ? current.state.queue.map((e) => e.track) : []),
    live: () => Boolean(current && current.connState === 'live'),
  });
  initNowPlaying({
    play: act((s) => s.play()),
    pause: act((s) => s.pause()),
    next: act((s) => s.next()),
    seek: act((s, ms) => s.seek(ms)),
    skipVote: act((s, up) => s.skipVote(up)),
  });
  initSuggestions({ add: (ref) => (current ? current.add(ref) : Promise.resolve({ ok: false })) });
  initSettings({ settings: act((s, changes) => s.settings(changes)) });
  initMembers({
    setRole: act((s, id, role) => s.setRole(id, role)),
    kick: act((s, id, ban) => s.kick(id, ban)),
    unban: act((s, id) => s.unban(id)),
  });
  $('#people-summary').addEventListener('click', () => showTab('people', { focus: true }));

  $('#end-session').addEventListener('click', () => confirmEnd(true));
  $('#end-no').addEventListener('click', () => confirmEnd(false));
  $('#end-yes').addEventListener('click', async () => {
    if (!current) return;
    $('#end-yes').disabled = true;
    await current.end();
    $('#end-yes').disabled = false;
    confirmEnd(false, { focus: false });
  });
}

function confirmEnd(open, { focus = true } = {}) {
  $('#end-confirm').hidden = !open;
  $('#end-session').hidden = open;
  if (focus) (open ? $('#end-no') : $('#end-session')).focus();
}

/** Put a new session on the page (fresh parts, the invite for its id). */
export function mountSession(session) {
  current = session;
  clearFeed();
  resetSearch();
  resetSuggestions();
  confirmEnd(false, { focus: false });
  showTab('queue');
  showInvite(session.id);
  render('all');
}

export function unmountSession() {
  current = null;
  stopNowPlaying();
}

/** The session's hook: re-render what changed. */
export function render(what) {
  const session = current;
  if (!session) return;
  const s = session.state;
  const party = what === 'party' || what === 'people';
  if (what === 'all' || what === 'conn' || what === 'queue' || party) renderQueue(session);
  if (what === 'all' || what === 'conn' || what === 'queue' || party) renderNowPlaying(session);
  if (what === 'all' || what === 'queue' || what === 'suggestions' || party) renderSuggestions(s);
  if (what === 'all' || party) renderSettings(s);
  if (what === 'all' || what === 'people') renderPeople(s);
  if (what === 'people') renderRole(s);
  if (what !== 'all' && what !== 'conn') return;
  const name = s.info ? s.info.name : s.ended || s.missing ? 'Session' : 'Opening the session…';
  $('#session-title').textContent = name;
  document.title = s.info ? `${s.info.name} · Audotics Hub` : 'Audotics Hub';
  renderRole(s);
  const removed = session.removed;
  $('#removed-banner').hidden = !removed;
  if (removed) {
    $('#removed-title').textContent = removed === 'banned' ? 'You were removed from this party and banned.' : 'You were removed from this party.';
    $('#removed-text').textContent = removed === 'banned'
      ? "A host took you out of the party: you can't join it again."
      : 'A host took you out of the party. You can join again if they invite you.';
  }
  $('#ended-banner').hidden = !s.ended || Boolean(removed);
  $('#queue-title').firstChild.textContent = s.ended ? 'Queue ' : 'Up next ';
  $('#ended-text').textContent = s.notMember
    ? "It ended before you joined, so there's no queue to show."
    : s.loaded ? 'The queue below is how it was left.' : 'Loading how the queue was left…';
  const open = s.open;
  $('#panel-add').hidden = !open;
  $('#tab-add').hidden = !open;
  $('#share-card').hidden = s.ended || s.missing;
  $('#host-card').hidden = !(s.isHost && open);
  $('#session-layout').hidden = s.notMember || s.missing;
  $('.tabbar').hidden = s.notMember || s.missing || !s.loaded;
  if (!open && $('#session-layout').dataset.tab === 'add') showTab('queue');
}

function renderRole(s) {
  const role = $('#role-badge');
  role.hidden = !s.you;
  role.textContent = s.isHost ? 'Host' : s.isCohost ? 'Co-host' : 'Guest';
}

export function reaction(r) {
  addReaction(r);
}
