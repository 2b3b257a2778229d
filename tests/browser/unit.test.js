// Unit tests of the web client's pure modules (no browser): the session
// state's rules for applying frames, and the words the page shows.
//
// Run: node --test tests/browser/unit.test.js (run.sh runs it too).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionState } from '../../web/js/session-state.js';
import { namesPhrase, problem, refused, summarize, waitingSentence } from '../../web/js/messages.js';

const track = (id, name) => ({ id, spotifyId: `sp${id}`, name, artists: ['A'], album: 'B', popularity: 0 });

function snapshot(version, queue, { active = true } = {}) {
  return {
    version,
    session: { id: 's', name: 'Party', active, hostId: 'h' },
    playlist: { id: 'p', name: 'Party', description: null, spotifyId: null },
    queue: queue.map(([entryId, t]) => ({ entryId, track: t, addedBy: 'h', addedAt: '2026-01-01T00:00:00Z' })),
    members: [{ userId: 'h', name: 'Hana', avatar: null, online: true }, { userId: 'g', name: 'Gus', avatar: null, online: false }],
    you: { userId: 'g', role: 'member' },
  };
}

const update = (version, change) => ({
  type: 'update',
  version,
  at: '2026-01-01T00:00:01Z',
  change: { entryId: null, track: null, index: null, fromIndex: null, toIndex: null, by: 'h', detail: null, ...change },
});

describe('SessionState', () => {
  it('applies updates in version order, ignores replays, and reports gaps', () => {
    const s = new SessionState('s', 'g');
    assert.equal(s.applyUpdate(update(1, { op: 'add', entryId: 'e1', track: track('t1', 'One'), index: 0 })), 'early');
    s.applySnapshot(snapshot(3, [['e1', track('t1', 'One')], ['e2', track('t2', 'Two')]]));
    assert.equal(s.applyUpdate(update(3, { op: 'remove', entryId: 'e1', index: 0 })), 'old');
    assert.equal(s.applyUpdate(update(5, { op: 'remove', entryId: 'e1', index: 0 })), 'gap');
    assert.equal(s.applyUpdate(update(4, { op: 'reorder', entryId: 'e2', fromIndex: 1, toIndex: 0 })), 'applied');
    assert.deepEqual(s.queue.map((e) => e.entryId), ['e2', 'e1']);
    assert.equal(s.applyUpdate(update(5, { op: 'add', entryId: 'e3', track: track('t3', 'Three'), index: 1, by: null })), 'applied');
    assert.deepEqual(s.queue.map((e) => e.entryId), ['e2', 'e3', 'e1']);
    assert.equal(s.queue[1].addedBy, 'h', 'a track linked outside the hub counts as the host\'s');
    assert.equal(s.applyUpdate(update(6, { op: 'remove', entryId: 'e2', index: 0 })), 'applied');
    assert.deepEqual(s.queue.map((e) => e.entryId), ['e3', 'e1']);
    assert.equal(s.version, 6);
  });

  it('members change by presence and by member updates made outside the hub', () => {
    const s = new SessionState('s', 'g');
    s.applySnapshot(snapshot(0, []));
    assert.equal(s.onlineCount(), 1);
    s.applyPresence({ userId: 'g', name: 'Gus', online: true, listeners: 2 });
    assert.equal(s.onlineCount(), 2);
    s.applyUpdate(update(1, { op: 'member', by: null, detail: { kind: 'member', userId: 'x', name: 'Xena', avatar: null, member: true } }));
    assert.equal(s.nameOf('x'), 'Xena');
    s.applyUpdate(update(2, { op: 'member', by: null, detail: { kind: 'member', userId: 'x', name: 'Xena', avatar: null, member: false } }));
    assert.equal(s.nameOf('x'), 'someone');
    assert.equal(s.nameOf('g'), 'you');
  });

  it('an ended snapshot is ended; ending drops what waits and takes everyone offline', () => {
    const s = new SessionState('s', 'g');
    s.applySnapshot(snapshot(2, [['e1', track('t1', 'One')]], { active: false }));
    assert.equal(s.ended, true);
    assert.equal(s.open, false);
    const t = new SessionState('s', 'g');
    t.applySnapshot(snapshot(2, []));
    t.pending.set('r1', { type: 'add', what: 'add “One”' });
    const dropped = t.end();
    assert.equal(dropped.length, 1);
    assert.equal(t.pending.size, 0);
    assert.equal(t.onlineCount(), 0);
  });

  it('who may remove what', () => {
    const s = new SessionState('s', 'g');
    s.applySnapshot(snapshot(0, [['e1', track('t1', 'One')]]));
    assert.equal(s.canRemove(s.queue[0]), false, 'a guest, not the one who added it');
    s.queue[0].addedBy = 'g';
    assert.equal(s.canRemove(s.queue[0]), true, 'the one who added it');
  });
});

describe('SessionState: the party', () => {
  const np = (entryId, t, state, positionMs, at) => ({
    entryId, track: { ...t, durationMs: 200000 }, addedBy: 'h', addedAt: '2026-01-01T00:00:00Z', state, positionMs, at, startedAt: at,
  });
  const playback = (nowPlaying, played = null) => ({ kind: 'playback', nowPlaying, played, reason: 'op' });

  function party() {
    const s = new SessionState('s', 'g');
    s.applySnapshot(snapshot(1, [['e1', track('t1', 'One')], ['e2', track('t2', 'Two')], ['e3', track('t3', 'Three')]]));
    return s;
  }

  it('a snapshot without `party` has the defaults; play takes the entry out of the queue', () => {
    const s = party();
    assert.equal(s.party.settings.order, 'host');
    assert.equal(s.party.nowPlaying, null);
    const n = np('e1', track('t1', 'One'), 'playing', 0, '2026-01-01T00:00:10.000Z');
    assert.equal(s.applyUpdate(update(2, { op: 'play', entryId: 'e1', fromIndex: 0, detail: playback(n) })), 'applied');
    assert.equal(s.party.nowPlaying.entryId, 'e1');
    assert.deepEqual(s.queue.map((e) => e.entryId), ['e2', 'e3']);
  });

  it('the position follows positionMs at the hub time `at`, stops when paused, and stops at the end', () => {
    const s = party();
    const at = Date.parse('2026-01-01T00:00:10.000Z');
    s.applyUpdate(update(2, { op: 'play', entryId: 'e1', detail: playback(np('e1', track('t1', 'One'), 'playing', 5000, '2026-01-01T00:00:10.000Z')) }));
    assert.equal(s.positionAt(at + 2500), 7500);
    assert.equal(s.positionAt(at + 10_000_000), 200000, 'clamped to the length');
    s.applyUpdate(update(3, { op: 'pause', entryId: 'e1', detail: playback(np('e1', track('t1', 'One'), 'paused', 9000, '2026-01-01T00:00:14.000Z')) }));
    assert.equal(s.positionAt(at + 60_000), 9000);
  });

  it('votes move entries where the hub says, skip votes clear when the track changes', () => {
    const s = party();
    s.applyUpdate(update(2, { op: 'vote', entryId: 'e3', fromIndex: 2, toIndex: 0, by: 'g', detail: { kind: 'vote', userId: 'g', up: true, votes: ['g'] } }));
    assert.deepEqual(s.queue.map((e) => e.entryId), ['e3', 'e1', 'e2']);
    assert.deepEqual(s.queue[0].votes, ['g']);
    s.applyUpdate(update(3, { op: 'play', entryId: 'e3', detail: playback(np('e3', track('t3', 'Three'), 'playing', 0, '2026-01-01T00:00:10.000Z')) }));
    s.applyUpdate(update(4, { op: 'skipVote', entryId: 'e3', by: 'g', detail: { kind: 'skipVote', userId: 'g', up: true, votes: ['g'] } }));
    assert.deepEqual(s.party.skipVotes, ['g']);
    assert.equal(s.skipNeeded(), 1, 'half of one online member, at least one');
    s.applyUpdate(update(5, { op: 'next', entryId: 'e1', by: null, detail: playback(np('e1', track('t1', 'One'), 'playing', 0, '2026-01-01T00:00:20.000Z')) }));
    assert.deepEqual(s.party.skipVotes, []);
    assert.deepEqual(s.queue.map((e) => e.entryId), ['e2']);
  });

  it('settings re-sort the queue; roles, kicks and bans; unknown ops only move the version', () => {
    const s = party();
    s.applyUpdate(update(2, { op: 'settings', detail: { kind: 'settings', settings: { order: 'fair', guestsAdd: true, guestsReorder: false, guestsSkip: true, guestQueueCap: 2, skipThreshold: 1 }, queue: ['e2', 'e3', 'e1'] } }));
    assert.deepEqual(s.queue.map((e) => e.entryId), ['e2', 'e3', 'e1']);
    assert.equal(s.canSkip, true, 'guests may skip now');
    assert.equal(s.canReorder, false, 'no moving by hand in fair order');
    s.applyUpdate(update(3, { op: 'role', detail: { kind: 'role', hostId: 'h', cohosts: ['g'] } }));
    assert.equal(s.you.role, 'cohost');
    assert.equal(s.canControl, true);
    s.applyUpdate(update(4, { op: 'kick', detail: { kind: 'kick', userId: 'h', name: 'Hana', banned: true } }));
    assert.equal(s.members.has('h'), false);
    assert.deepEqual(s.party.banned, ['h']);
    s.applyPresence({ userId: 'h', name: 'Hana', online: false, listeners: 1 });
    assert.equal(s.members.has('h'), false, 'a removed member leaving is not listed again');
    assert.equal(s.applyUpdate(update(5, { op: 'somethingNew', detail: { kind: 'new' } })), 'applied');
    assert.equal(s.version, 5);
  });

  it('the latest suggestions replace the list', () => {
    const s = party();
    s.applySuggestions({ type: 'suggestions', version: 1, items: [{ track: track('t9', 'Nine'), score: 0.8, reason: 'because', fits: ['g'] }] });
    assert.equal(s.suggestions.length, 1);
    s.applySuggestions({ type: 'suggestions', version: 1, items: [] });
    assert.equal(s.suggestions.length, 0);
  });
});

describe('messages', () => {
  it('refused ops read as sentences, never the hub\'s words', () => {
    assert.equal(refused({ type: 'reorder', what: 'move “One”' }, 'conflict'),
      "Couldn't move “One”: someone changed the queue at the same moment. Try again.");
    assert.equal(refused({ type: 'remove', what: 'remove “One”' }, 'not_found'), "Couldn't remove “One”: it was already removed.");
    assert.match(refused({ type: 'add', what: 'add “One”' }, 'rate_limited'), /going a bit fast/);
    assert.match(refused({ type: 'add', what: 'add “One”' }, 'something_new'), /^Couldn't add “One”: something went wrong/);
  });

  it('REST problems by code and field', () => {
    assert.match(problem({ status: 0, code: 'network' }), /Can't reach the hub/);
    assert.match(problem({ status: 422, code: 'invalid', field: 'password' }), /at least 8 characters/);
    assert.match(problem({ status: 429, code: 'rate_limited', retryAfter: 3 }), /in 3 seconds/);
    assert.match(problem({ status: 409, code: 'conflict' }), /already exists/);
  });

  it('activity is summed up in one line', () => {
    assert.equal(summarize([{ kind: 'add', who: 'Ana', track: 'One' }]), 'Ana added “One”');
    assert.equal(summarize([
      { kind: 'add', who: 'Ana', track: 'One' }, { kind: 'add', who: 'Ana', track: 'Two' },
      { kind: 'add', who: 'Ben', track: 'Three' }, { kind: 'add', who: 'Cy', track: 'Four' },
      { kind: 'add', who: 'Di', track: 'Five' },
    ]), 'Ana and 3 others added 5 tracks');
    assert.equal(summarize([{ kind: 'react', who: 'Ben', reaction: 'like', track: 'One' }]), 'Ben liked “One”');
    assert.equal(summarize([
      { kind: 'add', who: 'Ana', track: 'One' },
      { kind: 'react', who: 'Ben', reaction: 'like', track: 'One' },
      { kind: 'react', who: 'Cy', reaction: 'skip', track: 'One' },
    ]), 'Ana added “One” · 1 like · 1 skip vote');
    assert.equal(namesPhrase(['Ana', 'Ben']), 'Ana and Ben');
  });

  it('waiting changes are named', () => {
    assert.equal(waitingSentence([]), '');
    assert.equal(waitingSentence(['add “One”']), 'Your change will be sent when the connection is back: add “One”.');
    assert.match(waitingSentence(['a', 'b', 'c']), /^3 changes will be sent.*a, b, …\.$/);
  });
});
