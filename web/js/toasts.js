// One toast at most, in the top bar (never over the queue): others'
// activity coalesced into one line while it lasts ("Ana and 3 others added
// 5 tracks · 2 likes"), or a confirmation of the user's own change with an
// action (Undo), which takes precedence.

import { $ } from './dom.js';
import { summarize } from './messages.js';

const ACTIVITY_MS = 4000; // shown this long after the last event…
const ACTIVITY_MAX_MS = 9000; // …but a burst is summed up for at most this long
const CONFIRM_MS = 8000;

let burst = []; // events of the activity toast on screen (or waiting behind a confirmation)
let burstStart = 0;
let lastAt = 0;
let confirmation = null; // {text, action}
let hideTimer = null;

/** Someone else's add or reaction (see messages.summarize). */
export function activity(event) {
  const now = Date.now();
  if (!burst.length || now - burstStart > ACTIVITY_MAX_MS) {
    burst = [];
    burstStart = now;
  }
  burst.push(event);
  lastAt = now;
  if (!confirmation) show(summarize(burst), null, ACTIVITY_MS, endBurst);
}

/** Tell the user their own change went through, with an optional action. */
export function confirm(text, action = null) {
  confirmation = { text, action };
  show(text, action, CONFIRM_MS, afterConfirmation);
}

/** Hide everything (leaving a session). */
export function clearToasts() {
  burst = [];
  confirmation = null;
  clearTimeout(hideTimer);
  $('#toast').hidden = true;
}

function afterConfirmation() {
  confirmation = null;
  if (burst.length && Date.now() - lastAt < ACTIVITY_MS) show(summarize(burst), null, ACTIVITY_MS, endBurst);
  else endBurst();
}

function endBurst() {
  burst = [];
  $('#toast').hidden = true;
}

function show(text, action, ms, onEnd) {
  const box = $('#toast');
  box.querySelector('.toast-text').textContent = text;
  const button = box.querySelector('.toast-action');
  button.hidden = !action;
  if (action) {
    button.textContent = action.label;
    button.setAttribute('aria-label', action.ariaLabel || action.label);
    button.onclick = () => {
      clearTimeout(hideTimer);
      action.run();
      afterConfirmation();
    };
  }
  box.dataset.kind = action ? 'confirm' : 'activity';
  box.hidden = false;
  clearTimeout(hideTimer);
  hideTimer = setTimeout(onEnd, ms);
}
