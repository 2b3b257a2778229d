// The host's party settings (hosts and co-hosts): the queue's order (by
// host, by votes, fair turns), what guests may do (add, reorder, skip), how
// many tracks one guest may have queued, and the share of skip votes that
// skips. Every change is one `settings` op; the view shows the hub's
// settings as they are (an op refused leaves them as they were).

import { $ } from './dom.js';

const ORDER_HELP = {
  host: 'Hosts arrange the queue by hand.',
  votes: 'Tracks with the most votes play first; pinned tracks before them.',
  fair: 'Everyone takes turns: nobody’s second track plays before everyone’s first.',
};

let actions = null;

/** @param {object} a settings(changes) */
export function initSettings(a) {
  actions = a;
  for (const b of document.querySelectorAll('#settings-card .seg')) {
    b.addEventListener('click', () => {
      if (b.getAttribute('aria-pressed') !== 'true') actions.settings({ order: b.dataset.order });
    });
  }
  for (const b of document.querySelectorAll('#settings-card .toggle')) {
    b.addEventListener('click', () => {
      actions.settings({ [b.dataset.setting]: b.getAttribute('aria-pressed') !== 'true' });
    });
  }
  $('#setting-cap').addEventListener('change', (e) => actions.settings({ guestQueueCap: Number(e.target.value) }));
  $('#setting-threshold').addEventListener('change', (e) => actions.settings({ skipThreshold: Number(e.target.value) }));
}

/** @param {import('./session-state.js').SessionState} s */
export function renderSettings(s) {
  const card = $('#settings-card');
  card.hidden = !s.canControl;
  if (card.hidden) return;
  const st = s.party.settings;
  for (const b of card.querySelectorAll('.seg')) b.setAttribute('aria-pressed', String(b.dataset.order === st.order));
  for (const b of card.querySelectorAll('.toggle')) b.setAttribute('aria-pressed', String(Boolean(st[b.dataset.setting])));
  $('#order-help').textContent = ORDER_HELP[st.order] || '';
  const cap = $('#setting-cap');
  const capValue = String(st.guestQueueCap || 0);
  if (![...cap.options].some((o) => o.value === capValue)) cap.add(new Option(capValue, capValue));
  cap.value = capValue;
  const th = $('#setting-threshold');
  const near = [...th.options].reduce((best, o) => (Math.abs(Number(o.value) - st.skipThreshold) < Math.abs(Number(best.value) - st.skipThreshold) ? o : best));
  th.value = near.value;
}
