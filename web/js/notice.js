// The one place the page speaks up about trouble: a bar under the top bar
// (so it stays in view wherever the user has scrolled) showing one message
// at a time — the latest error, else the connection's state and the changes
// waiting for it — plus the connection badge in the top bar. Never a stack.

import { $ } from './dom.js';
import { CONNECTION, waitingSentence } from './messages.js';

const ERROR_MS = 12000;

let connKey = null; // a CONNECTION key, or null outside a session
let connAction = null; // {label, run} offered with the connection message
let waiting = []; // descriptions of changes not sent yet
let error = null; // {text, action, timer}

/** The connection's state (a CONNECTION key), or null to hide the badge. */
export function setConnection(key, action = null) {
  connKey = key;
  connAction = action;
  const badge = $('#conn-badge');
  badge.hidden = !key;
  if (key) {
    badge.dataset.state = key;
    badge.textContent = CONNECTION[key].badge;
  }
  render();
}

/** What is waiting to be sent (shown while the connection is down). */
export function setWaiting(whats) {
  waiting = whats;
  render();
}

/** Show an error in words until dismissed, replaced, or 12 s pass. */
export function showError(text, action = null) {
  clearTimeout(error && error.timer);
  error = { text, action, timer: setTimeout(clearError, ERROR_MS) };
  render();
}

export function clearError() {
  if (!error) return;
  clearTimeout(error.timer);
  error = null;
  render();
}

function render() {
  const bar = $('#notice');
  const textEl = bar.querySelector('.notice-text');
  const actionEl = bar.querySelector('.notice-action');
  const dismissEl = bar.querySelector('.notice-dismiss');
  let text = '';
  let action = null;
  let kind = '';
  if (error) {
    ({ text, action } = error);
    kind = 'error';
  } else if (connKey && CONNECTION[connKey].text) {
    text = [CONNECTION[connKey].text, waitingSentence(waiting)].filter(Boolean).join(' ');
    action = connAction;
    kind = 'warn';
  }
  bar.hidden = !text;
  bar.dataset.kind = kind;
  textEl.textContent = text;
  actionEl.hidden = !action;
  if (action) {
    actionEl.textContent = action.label;
    actionEl.onclick = () => action.run();
  }
  dismissEl.hidden = kind !== 'error';
}

export function initNotice() {
  $('#notice .notice-dismiss').addEventListener('click', clearError);
}
