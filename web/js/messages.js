// Plain words for everything the page has to say: refused changes (by what
// was tried and the hub's error code), REST problems, connection states and
// activity. The one table to edit when wording changes; the hub's own
// messages ("baseVersion 9 is not the current version 10") never reach the
// screen. No DOM here, so it can be tested on its own.

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export const quoted = (s) => `“${s}”`;

/** "Ana", "Ana and Ben", "Ana and 3 others". */
export function namesPhrase(names) {
  if (names.length <= 1) return names[0] || 'Someone';
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  return `${names[0]} and ${plural(names.length - 1, 'other')}`;
}

// Why a change was refused, by the op that was tried and the error code.
// Sentences complete "Couldn't <what>: …".
const REFUSED = {
  add: {
    not_found: 'that track is no longer in the catalog.',
    invalid: 'the queue changed at the same moment. Try again.',
    too_large: 'the queue is full (10,000 tracks).',
    forbidden: "the host isn't letting guests add tracks right now.",
  },
  remove: {
    not_found: 'it was already removed.',
    forbidden: 'only the host, or whoever added a track, can remove it.',
  },
  reorder: {
    conflict: 'someone changed the queue at the same moment. Try again.',
    invalid: 'the queue changed at the same moment. Try again.',
    not_found: "it's no longer in the queue.",
    forbidden: 'only the host can change the order.',
  },
  interaction: {
    not_found: 'that track is no longer in the catalog.',
  },
  play: { conflict: "it's already playing, or the queue is empty.", forbidden: 'only a host can start or pause.' },
  pause: { conflict: 'nothing is playing.', forbidden: 'only a host can start or pause.' },
  seek: { conflict: 'nothing is playing.', invalid: "that's past the end of the track.", forbidden: 'only a host can seek.' },
  next: { conflict: 'nothing is playing or queued.', forbidden: "the host isn't letting guests skip." },
  vote: { conflict: 'your vote was already counted.', not_found: "it's no longer in the queue." },
  skipVote: { conflict: 'your skip vote was already counted.' },
  pin: { not_found: "it's no longer in the queue.", forbidden: 'only a host can pin a track.' },
  settings: { forbidden: 'only a host can change the settings.' },
  role: { forbidden: 'only the host can change roles.' },
  kick: { forbidden: "you can't remove this person." },

  any: {
    rate_limited: "you're going a bit fast. Wait a moment and try again.",
    unavailable: "the hub can't save changes right now. Try again in a moment.",
    too_large: 'the queue is full.',
    forbidden: "you're not allowed to do that.",
    not_found: 'it no longer exists.',
    conflict: 'someone changed the queue at the same moment. Try again.',
    invalid: "the hub didn't accept it. Reload the page and try again.",
    unauthorized: 'your sign-in has expired. Sign in again.',
  },
};

/** "Couldn't remove “Heart of Glass”: it was already removed." */
export function refused(op, code) {
  const why = (REFUSED[op.type] && REFUSED[op.type][code]) || REFUSED.any[code] || 'something went wrong. Try again.';
  return `Couldn't ${op.what}: ${why}`;
}

// What the sign-up and other forms said wrong, by the problem's `field`.
const FIELDS = {
  email: 'Enter an email address, like name@example.com.',
  password: 'Use a password of at least 8 characters.',
  name: 'Enter a name of at most 200 characters.',
  q: 'Search for at most 200 characters.',
};

/** A REST failure in words (no prefix; callers say what failed). */
export function problem(e) {
  if (!e || typeof e.status !== 'number') return 'Something went wrong on this page. Reload it and try again.';
  switch (e.code) {
    case 'network':
      return "Can't reach the hub. Check your connection and try again.";
    case 'timeout':
      return 'The hub took too long to answer. Try again.';
    case 'rate_limited':
      return e.retryAfter
        ? `Too many attempts. Try again in ${plural(Math.ceil(e.retryAfter), 'second')}.`
        : 'Too many attempts. Wait a moment and try again.';
    case 'unauthorized':
      return 'Your sign-in has expired. Sign in again.';
    case 'forbidden':
      return "You're not allowed to do that.";
    case 'not_found':
      return 'That no longer exists.';
    case 'conflict':
      return 'An account with this email already exists. Sign in instead.';
    case 'invalid':
      return FIELDS[e.field] || 'Check what you entered and try again.';
    default:
      return "The hub is having trouble right now. Try again in a moment.";
  }
}

// The connection, as the badge and the notice say it.
export const CONNECTION = {
  connecting: { badge: 'Connecting…', text: '' },
  live: { badge: 'Live', text: '' },
  unreachable: { badge: 'Reconnecting…', text: "Can't reach the hub. Reconnecting…" },
  stalled: { badge: 'Reconnecting…', text: 'The connection stopped answering. Reconnecting…' },
  busy: { badge: 'Reconnecting…', text: "The hub can't open the session right now. Trying again…" },
  offline: { badge: 'Offline', text: "You're offline. The queue catches up by itself when you're back." },
  ended: { badge: 'Ended', text: '' },
  missing: { badge: 'Not found', text: "This session doesn't exist. Check the link you were given." },
  // The session page's banner says it in full (session-view.js).
  removed: { badge: 'Removed', text: '' },
  banned: { badge: 'Banned', text: '' },
};

/** The changes still waiting for the connection, in a sentence. */
export function waitingSentence(whats) {
  if (!whats.length) return '';
  if (whats.length === 1) return `Your change will be sent when the connection is back: ${whats[0]}.`;
  return `${plural(whats.length, 'change')} will be sent when the connection is back: ${whats.slice(0, 2).join(', ')}${whats.length > 2 ? ', …' : ''}.`;
}

// Reactions as the feed and the toasts say them.
const VERBS = {
  like: ['liked', 'liked'],
  skip: ['wants to skip', 'want to skip'],
  dislike: ['disliked', 'disliked'],
  play: ['played', 'played'],
  save: ['saved', 'saved'],
  share: ['shared', 'shared'],
  add_to_playlist: ['saved', 'saved'],
};

/** "Gus liked “X”" / "You want to skip “X”". */
export function reactionSentence(who, self, kind, trackName) {
  const [third, second] = VERBS[kind] || ['reacted to', 'reacted to'];
  return `${self ? 'You' : who} ${self ? second : third} ${quoted(trackName)}`;
}

/**
 * One line for a burst of others' activity: `events` are
 * {kind: 'add', who, track} or {kind: 'react', who, reaction, track}.
 * "Ana added “X”", "Ana and 3 others added 6 tracks · 2 likes".
 */
export function summarize(events) {
  const parts = [];
  const adds = events.filter((e) => e.kind === 'add');
  if (adds.length) {
    const names = [...new Set(adds.map((e) => e.who))];
    parts.push(adds.length === 1
      ? `${names[0]} added ${quoted(adds[0].track)}`
      : `${namesPhrase(names)} added ${plural(adds.length, 'track')}`);
  }
  const reacts = events.filter((e) => e.kind === 'react');
  if (reacts.length === 1 && !adds.length) {
    const r = reacts[0];
    parts.push(reactionSentence(r.who, false, r.reaction, r.track));
  } else if (reacts.length) {
    const likes = reacts.filter((e) => e.reaction === 'like').length;
    const skips = reacts.filter((e) => e.reaction === 'skip').length;
    const other = reacts.length - likes - skips;
    if (likes) parts.push(plural(likes, 'like'));
    if (skips) parts.push(plural(skips, 'skip vote'));
    if (other) parts.push(plural(other, 'reaction'));
  }
  return parts.join(' · ');
}
