// The queue ("Up next") as people see it: one short row per track (cover,
// title, artists, ♥ and ⋯; the host also gets a ⠿ handle to drag or to move
// with the arrow keys), the changes still waiting to be sent as rows of
// their own, and focus kept where it was across re-renders.

import { $, coverTile, el } from './dom.js';
import { initDrag } from './drag.js';
import { closeMenu, initRowMenu, openMenu } from './row-menu.js';

let actions = null;
let shown = null; // the Session last rendered (a drag defers its re-render)
let dragging = false;
let focusWish = null; // {entryId, action} to focus after the next render

/**
 * @param {object} a the session's actions: like, skip, remove, move(entryId,
 *   toIndex), plannedIndex(entryId), goAdd()
 */
export function initQueueView(a) {
  actions = a;
  initRowMenu();
  const list = $('#queue');
  list.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const id = b.dataset.entry;
    if (b.dataset.action === 'like') {
      focusWish = { entryId: id, action: 'like' };
      actions.like(id);
    } else if (b.dataset.action === 'vote') {
      focusWish = { entryId: id, action: 'vote' };
      actions.vote(id, b.getAttribute('aria-pressed') !== 'true');
    } else if (b.dataset.action === 'menu') {
      openRowMenu(b, id);
    }
  });
  list.addEventListener('keydown', (e) => {
    const b = e.target.closest('button.handle');
    if (!b) return;
    const id = b.dataset.entry;
    const at = actions.plannedIndex(id);
    const moves = { ArrowUp: at - 1, ArrowDown: at + 1, Home: 0, End: Number.MAX_SAFE_INTEGER };
    if (!(e.key in moves)) return;
    e.preventDefault();
    focusWish = { entryId: id, action: 'handle' };
    actions.move(id, moves[e.key]);
  });
  initDrag(list, {
    onDrop: (id, to) => {
      focusWish = { entryId: id, action: 'handle' };
      actions.move(id, to);
    },
    onActive: (active) => {
      dragging = active;
      if (!active && shown) renderQueue(shown);
    },
  });
  $('#empty-add').addEventListener('click', () => actions.goAdd());
}

function openRowMenu(button, entryId) {
  const s = shown.state;
  const i = s.indexOf(entryId);
  if (i === -1) return;
  const e = s.queue[i];
  const items = [];
  if (s.open) {
    const voted = (e.votes || []).includes(s.me);
    items.push({ label: voted ? 'Take back my vote' : 'Vote up', run: () => actions.vote(entryId, !voted) });
    if (s.party.settings.order === 'votes' && !s.liked.has(e.track.id)) items.push({ label: 'Like', run: () => actions.like(entryId) });
  }
  if (s.canControl) {
    items.push({ label: 'Play now', run: () => actions.play(entryId) });
    if (!e.pinned) items.push({ label: 'Play next', run: () => actions.pin(entryId) });
  }
  if (s.canReorder) {
    if (i > 0) {
      items.push({ label: 'Move to top', run: () => moveFromMenu(entryId, 0) });
      items.push({ label: 'Move up', run: () => moveFromMenu(entryId, i - 1) });
    }
    if (i < s.queue.length - 1) items.push({ label: 'Move down', run: () => moveFromMenu(entryId, i + 1) });
  }
  items.push({ label: 'Vote to skip', run: () => actions.skip(entryId) });
  if (s.canRemove(e)) items.push({ label: 'Remove', danger: true, run: () => actions.remove(entryId) });
  openMenu(button, items, (how) => {
    if (how !== 'outside' && how !== 'replaced') {
      focusWish = focusWish || { entryId, action: 'menu' };
      const again = findButton(entryId, 'menu');
      if (again) again.focus();
    }
  });
}

function moveFromMenu(entryId, to) {
  focusWish = { entryId, action: 'menu' };
  actions.move(entryId, to);
}

function findButton(entryId, action) {
  return $(`#queue button[data-entry="${CSS.escape(entryId)}"][data-action="${action}"]`);
}

/**
 * Render the queue of `session` (a Session): its state, the ops waiting,
 * and whether the connection is live (waiting ops say why they wait).
 */
export function renderQueue(session) {
  shown = session;
  if (dragging) return; // after the drop
  const s = session.state;
  const list = $('#queue');
  const active = document.activeElement;
  const keep = focusWish || (active && list.contains(active) && active.dataset.action
    ? { entryId: active.dataset.entry, action: active.dataset.action }
    : null);
  focusWish = null;
  const host = s.canReorder;
  const votesMode = s.party.settings.order === 'votes';
  const n = s.queue.length;
  const removing = new Set(s.pendingOf('remove').map((op) => op.frame.entryId));
  const rows = s.queue.map((e, i) => row(s, e, i, n, host, removing.has(e.entryId), votesMode));
  if ($('#row-menu').hidden === false && !rows.length) closeMenu('outside');
  list.replaceChildren(...rows);
  list.setAttribute('aria-label', `Queue, ${n} track${n === 1 ? '' : 's'}`);
  $('#queue-count').textContent = `(${n})`;
  $('#tab-queue-count').textContent = n ? String(n) : '';
  $('#queue-empty').hidden = n > 0 || !s.loaded || s.pendingOf('add').length > 0;
  $('#empty-add').hidden = !s.open;
  $('#queue-help').textContent = !s.open
    ? ''
    : host
      ? 'Drag ⠿ to reorder (or focus it and use the arrow keys). ⋯ has more.'
      : votesMode
        ? 'Most votes play first: tap ▲ to vote a track up. ⋯ has more.'
        : 'Tap ♥ to like a track. ⋯ has more; you can remove tracks you added.';
  renderWaiting(session);
  if (keep) {
    const target = findButton(keep.entryId, keep.action);
    if (target) target.focus({ preventScroll: keep.action !== 'handle' });
  }
}

function row(s, e, i, n, host, leaving, votesMode) {
  const t = e.track;
  const li = el('li', { class: `entry${leaving ? ' leaving' : ''}`, dataset: { entry: e.entryId, index: String(i) } });
  if (host) {
    li.append(el('button', {
      type: 'button',
      class: 'icon-btn handle',
      textContent: '⠿',
      dataset: { action: 'handle', entry: e.entryId },
      'aria-label': `Reorder ${t.name}, ${i + 1} of ${n}`,
      'aria-describedby': 'reorder-help',
    }));
  }
  li.append(
    el('span', { class: 'pos', 'aria-hidden': 'true' }, String(i + 1)),
    coverTile(t.album || t.name),
    el('div', { class: 'info' },
      el('span', { class: 'title' }, t.name),
      el('span', { class: 'sub' },
        el('span', { class: 'artists' }, (t.artists || []).join(', ')),
        el('span', { class: 'added' }, leaving ? ' · Removing…' : ` · Added by ${s.nameOf(e.addedBy)}`))),
  );
  const votes = (e.votes || []).length;
  if (e.pinned) li.querySelector('.info').prepend(el('span', { class: 'tag' }, 'Plays next'));
  if (s.open && votesMode) {
    const mine = (e.votes || []).includes(s.me);
    li.append(el('button', {
      type: 'button',
      class: 'icon-btn vote',
      dataset: { action: 'vote', entry: e.entryId },
      'aria-label': `${mine ? 'Take back your vote for' : 'Vote up'} ${t.name}, ${votes} vote${votes === 1 ? '' : 's'}`,
      'aria-pressed': String(mine),
    }, el('span', { class: 'vote-arrow', 'aria-hidden': 'true' }, '▲'), el('span', { class: 'vote-count' }, String(votes))));
  } else if (votes) {
    li.querySelector('.sub').append(el('span', { class: 'votes' }, ` · ▲ ${votes}`));
  }
  if (s.open) {
    const liked = s.liked.has(t.id);
    // In votes order the vote takes the like's place (Like moves to ⋯).
    if (!votesMode) li.append(
      el('button', {
        type: 'button',
        class: 'icon-btn like',
        textContent: liked ? '♥' : '♡',
        dataset: { action: 'like', entry: e.entryId },
        'aria-label': `Like ${t.name}`,
        'aria-pressed': String(liked),
      }));
    li.append(
      el('button', {
        type: 'button',
        class: 'icon-btn more',
        textContent: '⋯',
        dataset: { action: 'menu', entry: e.entryId },
        'aria-label': `More actions for ${t.name}`,
        'aria-haspopup': 'menu',
        'aria-expanded': 'false',
      }),
    );
  }
  return li;
}

/** Adds still waiting for the hub, as rows under the queue. */
function renderWaiting(session) {
  const live = session.connState === 'live';
  const rows = session.state.pendingOf('add').map((op) => el('li', { class: 'ghost' },
    coverTile(op.name),
    el('div', { class: 'info' },
      el('span', { class: 'ghost-title' }, op.name),
      el('span', { class: 'sub' }, live ? 'Adding…' : 'Waiting for the connection — it will be added then'))));
  $('#queue-waiting').replaceChildren(...rows);
  $('#queue-waiting').hidden = !rows.length;
}
