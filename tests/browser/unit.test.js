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
