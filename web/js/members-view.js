// Who is here: the People list (online first, the host marked), the count on
// the People tab, and the "2 listening" chip under the session's name so
// presence is visible without scrolling. An ended session lists who was in it.
// Each person has an avatar (initials on a colour from their id) and a role;
// hosts get a ⋯ per person: co-host or guest, hand the party over (the
// host), remove, or remove and ban. The banned are listed with Unban.

import { $, el, hueOf, initials } from './dom.js';
import { plural } from './messages.js';
import { openMenu } from './row-menu.js';

const ROLE_NAME = { host: 'Host', cohost: 'Co-host', member: '' };
let actions = null;
let shown = null; // the SessionState last rendered

/** An initials circle coloured by a hash of the user id. */
export function avatar(userId, name, size = '') {
  const a = el('span', { class: `avatar${size ? ` avatar-${size}` : ''}`, 'aria-hidden': 'true' }, initials(name));
  a.style.setProperty('--hue', String(hueOf(userId)));
  return a;
}

/** @param {object} a setRole(userId, role), kick(userId, ban), unban(userId) */
export function initMembers(a) {
  actions = a;
  $('#people').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action=person]');
    if (b && shown) openPersonMenu(b, b.dataset.user);
  });
  $('#banned').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action=unban]');
    if (b) actions.unban(b.dataset.user);
  });
}

function openPersonMenu(button, userId) {
  const s = shown;
  const role = s.roleOf(userId);
  const name = s.members.get(userId)?.name || 'them';
  const items = [];
  if (s.isHost) {
    if (role === 'cohost') items.push({ label: 'Make a guest', run: () => actions.setRole(userId, 'member') });
    else items.push({ label: 'Make co-host', run: () => actions.setRole(userId, 'cohost') });
    items.push({ label: `Hand the party to ${name}`, run: () => actions.setRole(userId, 'host') });
  }
  items.push({ label: 'Remove from the party', danger: true, run: () => actions.kick(userId, false) });
  items.push({ label: 'Remove and ban', danger: true, run: () => actions.kick(userId, true) });
  openMenu(button, items, () => {});
}

/** May we act on this person (not us, not the host; a co-host not on a co-host)? */
function canManage(s, userId) {
  if (!s.canControl || userId === s.me) return false;
  const role = s.roleOf(userId);
  if (role === 'host') return false;
  return s.isHost || role !== 'cohost';
}

/** @param {import('./session-state.js').SessionState} s */
export function renderPeople(s) {
  shown = s;
  const people = [...s.members.entries()].sort((a, b) =>
    (b[1].online - a[1].online) || a[1].name.localeCompare(b[1].name));
  const ended = s.ended;
  $('#people-title').firstChild.textContent = ended ? 'Who was here ' : 'Listening ';
  $('#people').replaceChildren(...people.map(([id, m]) => {
    const you = id === s.me;
    const role = s.roleOf(id);
    const presence = ended ? '' : m.online ? 'listening' : 'away';
    const li = el('li', { class: ended ? 'was-here' : m.online ? 'online' : 'offline', dataset: { user: id, role } },
      el('span', { class: 'avatar-wrap' }, avatar(id, m.name), el('span', { class: 'dot', 'aria-hidden': 'true' })),
      el('span', { class: 'person' }, you ? `${m.name} (you)` : m.name),
      ROLE_NAME[role] ? el('span', { class: `role-tag role-${role}` }, ROLE_NAME[role]) : '',
      el('span', { class: 'presence' }, presence));
    if (!ended && canManage(s, id)) {
      li.append(el('button', {
        type: 'button',
        class: 'icon-btn more',
        textContent: '⋯',
        dataset: { action: 'person', user: id },
        'aria-label': `Actions for ${m.name}`,
        'aria-haspopup': 'menu',
        'aria-expanded': 'false',
      }));
    }
    return li;
  }));
  const banned = s.canControl ? s.party.banned : [];
  $('#banned-box').hidden = !banned.length;
  $('#banned').replaceChildren(...banned.map((id) => el('li', { dataset: { user: id } },
    el('span', { class: 'person' }, s.members.get(id)?.name || s.formerNames.get(id) || 'Someone banned'),
    el('button', { type: 'button', class: 'btn', dataset: { action: 'unban', user: id }, textContent: 'Unban' }))));
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
