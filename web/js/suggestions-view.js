// "Up next for this room": the hub's `suggestions` frame as a strip under
// the queue — each track with its reason in words and a one-tap Add (an
// ordinary `add` of its id). The latest frame replaces the list; a track
// just added shows "Added" until the next list leaves it out.

import { coverArt } from './cover.js';
import { $, el } from './dom.js';

const SHOWN = 6;
let actions = null;
let adding = new Set(); // track ids added from here, until the next list

/** @param {object} a add({trackId, name}) → Promise<{ok}> */
export function initSuggestions(a) {
  actions = a;
  $('#suggestions-list').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-track]');
    if (!b || b.disabled) return;
    const id = b.dataset.track;
    adding.add(id);
    b.disabled = true;
    b.textContent = 'Adding…';
    const r = await actions.add({ trackId: id, name: b.dataset.name });
    if (r && r.ok) {
      b.textContent = 'Added ✓';
      b.dataset.state = 'added';
    } else {
      adding.delete(id);
      b.disabled = false;
      b.textContent = 'Add';
    }
  });
}

export function resetSuggestions() {
  adding = new Set();
}

/** @param {import('./session-state.js').SessionState} s */
export function renderSuggestions(s) {
  const queued = new Set(s.queue.map((e) => e.track.id));
  const items = s.open ? s.suggestions.filter((i) => !queued.has(i.track.id) || adding.has(i.track.id)).slice(0, SHOWN) : [];
  $('#suggestions').hidden = !items.length || !(s.party.settings.guestsAdd || s.canControl);
  $('#suggestions-list').replaceChildren(...items.map((item) => {
    const t = item.track;
    const added = adding.has(t.id) && queued.has(t.id);
    return el('li', { class: 'suggestion', dataset: { track: t.id } },
      coverArt(t, 'sm'),
      el('div', { class: 'info' },
        el('span', { class: 'title' }, t.name),
        el('span', { class: 'sub' }, (t.artists || []).join(', ')),
        el('span', { class: 'reason' }, item.reason)),
      el('button', {
        type: 'button',
        class: 'btn add-btn',
        dataset: { track: t.id, name: t.name, state: added ? 'added' : '' },
        disabled: added,
        'aria-label': added ? `${t.name} added` : `Add ${t.name}`,
      }, added ? 'Added ✓' : 'Add'));
  }));
}
