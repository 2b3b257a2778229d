// The reactions feed: the last 30 likes and skip votes, newest first, each
// with its time. (Toasts only sum these up; the feed keeps them.)

import { $, el } from './dom.js';

const KEEP = 30;

export function addReaction({ text, at, kind }) {
  const feed = $('#feed');
  const time = el('time', {
    dateTime: at,
    textContent: new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
  });
  feed.prepend(el('li', {}, el('span', { class: `feed-text kind-${kind}` }, text), time));
  while (feed.children.length > KEEP) feed.lastElementChild.remove();
  $('#feed-empty').hidden = true;
}

export function clearFeed() {
  $('#feed').replaceChildren();
  $('#feed-empty').hidden = false;
}
