// Who is here: the People list (online first, the host marked), the count on
// the People tab, and the "2 listening" chip under the session's name so
// presence is visible without scrolling. An ended session lists who was in it.

import { $, el } from './dom.js';
import { plural } from './messages.js';

/** @param {import('./session-state.js').SessionState} s */
export function renderPeople(s) {
  const people = [...s.members.entries()].sort((a, b) =>
    (b[1].online - a[1].online) || a[1].name.localeCompare(b[1].name));
  const hostId = s.info && s.info.hostId;
  const ended = s.ended;
  $('#people-title').firstChild.textContent = ended ? 'Who was here ' : 'Listening ';
  $('#people').replaceChildren(...people.map(([id, m]) => {
    const you = id === s.me;
    const role = id === hostId ? 'host' : '';
    const presence = ended ? role : [role, m.online ? 'listening' : 'away'].filter(Boolean).join(' · ');
    return el('li', { class: ended ? 'was-here' : m.online ? 'online' : 'offline', dataset: { user: id } },
      el('span', { class: 'dot', 'aria-hidden': 'true' }),
      el('span', { class: 'person' }, you ? `${m.name} (you)` : m.name),
      el('span', { class: 'presence' }, presence));
  }));
  const online = s.onlineCount();
  const chip = $('#people-summary');
  if (!s.loaded) {
    $('#people-count').textContent = '';
    $('#tab-people-count').textContent = '';
    chip.hidden = true;
    return;
  }
  $('#people-count').textContent = ended ? `(${people.length})` : `(${online} online)`;
  $('#tab-people-count').textContent = ended ? '' : String(online);
  chip.hidden = false;
  chip.dataset.state = ended ? 'ended' : 'live';
  chip.textContent = ended ? `${plural(people.length, 'person', 'people')} took part` : `${online} listening`;
  chip.setAttribute('aria-label', ended
    ? `${plural(people.length, 'person', 'people')} took part: show who`
    : `${online} listening now: show who`);
}
