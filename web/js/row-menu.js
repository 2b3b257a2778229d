// The small menu a queue row's ⋯ button opens (move, skip vote, remove):
// one shared popover, keyboard-operable (arrows, Home/End, Escape), closed
// by a tap elsewhere. Rows stay short because the rarer actions live here.

import { $, el } from './dom.js';

let anchor = null;
let onClose = null;

/**
 * Open the menu under (or above) `button` with `items`
 * [{label, run, danger?}]. `closed(how)` runs when it closes.
 */
export function openMenu(button, items, closed) {
  closeMenu('replaced');
  const menu = $('#row-menu');
  anchor = button;
  onClose = closed;
  menu.replaceChildren(...items.map((item) => {
    const b = el('button', {
      type: 'button',
      role: 'menuitem',
      class: `menu-item${item.danger ? ' danger' : ''}`,
      textContent: item.label,
      tabIndex: -1,
    });
    b.addEventListener('click', () => {
      closeMenu('chosen');
      item.run();
    });
    return b;
  }));
  menu.setAttribute('aria-label', button.getAttribute('aria-label') || 'Actions');
  menu.hidden = false;
  button.setAttribute('aria-expanded', 'true');
  place(menu, button);
  menu.querySelector('[role=menuitem]').focus({ preventScroll: true });
}

export function closeMenu(how = 'dismissed') {
  const menu = $('#row-menu');
  if (menu.hidden) return;
  menu.hidden = true;
  menu.replaceChildren();
  if (anchor) anchor.setAttribute('aria-expanded', 'false');
  const done = onClose;
  const a = anchor;
  anchor = null;
  onClose = null;
  if (done) done(how, a);
}

function place(menu, button) {
  const r = button.getBoundingClientRect();
  const m = menu.getBoundingClientRect();
  const vw = document.documentElement.clientWidth;
  const below = r.bottom + 4 + m.height <= window.innerHeight - 8;
  const top = below ? r.bottom + 4 : Math.max(8, r.top - 4 - m.height);
  const left = Math.max(8, Math.min(r.right - m.width, vw - m.width - 8));
  menu.style.setProperty('--menu-top', `${Math.round(top)}px`);
  menu.style.setProperty('--menu-left', `${Math.round(left)}px`);
}

export function initRowMenu() {
  const menu = $('#row-menu');
  menu.addEventListener('keydown', (e) => {
    const items = [...menu.querySelectorAll('[role=menuitem]')];
    const i = items.indexOf(document.activeElement);
    let next = null;
    if (e.key === 'ArrowDown') next = items[(i + 1) % items.length];
    else if (e.key === 'ArrowUp') next = items[(i - 1 + items.length) % items.length];
    else if (e.key === 'Home') next = items[0];
    else if (e.key === 'End') next = items[items.length - 1];
    else if (e.key === 'Escape') {
      e.preventDefault();
      closeMenu('escape');
      return;
    } else if (e.key === 'Tab') {
      closeMenu('tab');
      return;
    }
    if (next) {
      e.preventDefault();
      next.focus({ preventScroll: true });
    }
  });
  document.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !menu.contains(e.target) && e.target !== anchor) closeMenu('outside');
  });
  window.addEventListener('resize', () => closeMenu('outside'));
  window.addEventListener('scroll', () => closeMenu('outside'), { passive: true });
}
