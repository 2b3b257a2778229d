// A session's parts on a phone: Queue, Add and People as tabs in a bar at
// the bottom (in reach of a thumb), one part on screen at a time. From
// 960 px every part is shown side by side and the bar is hidden (CSS).

import { $ } from './dom.js';

const TABS = ['queue', 'add', 'people'];

export function initTabs() {
  for (const name of TABS) {
    const tab = $(`#tab-${name}`);
    tab.addEventListener('click', () => showTab(name));
    tab.addEventListener('keydown', (e) => {
      const i = TABS.indexOf(name);
      const next = { ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: TABS.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      const to = TABS[(next + TABS.length) % TABS.length];
      showTab(to);
      $(`#tab-${to}`).focus();
    });
  }
}

/** Show one part; `focus` moves focus into it (for a jump from elsewhere). */
export function showTab(name, { focus = false } = {}) {
  const layout = $('#session-layout');
  const changed = layout.dataset.tab !== name;
  layout.dataset.tab = name;
  for (const t of TABS) {
    const tab = $(`#tab-${t}`);
    tab.setAttribute('aria-selected', String(t === name));
    tab.tabIndex = t === name ? 0 : -1;
  }
  const panel = $(`#panel-${name}`);
  if (tabsShown()) {
    if (changed) window.scrollTo(0, 0);
  } else {
    panel.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }
  if (focus) {
    const heading = panel.querySelector('h2');
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

/** Are the tabs in use (a narrow screen), or every part on screen? */
export function tabsShown() {
  return getComputedStyle($('.tabbar')).display !== 'none';
}
