// h. Interactions: the kinds the old app's recommenders weigh are stored as
//    TrackInteraction rows it reads; an unknown kind is refused.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sharedDatabase } from '../lib/setup.js';
import { uid } from '../lib/hub.js';
import * as oldApp from '../lib/oldapp.js';

const KINDS = ['like', 'play', 'skip', 'dislike'];

describe('h. interaction kinds', () => {
  let s;
  let listener;
  let track;
  let ws;
  before(async () => {
    s = await sharedDatabase('h-interactions');
    const host = await s.hub.register('Host Henrik');
    listener = await s.hub.register('Listener Lea');
    track = await oldApp.createTrack(s.prisma, { spotifyId: uid('int'), name: 'Liked', artists: ['Someone'], album: 'Reactions', popularity: 60 });
    const made = await s.hub.createSession(host.token);
    ws = await s.hub.socket('listener');
    await ws.join(made.session.id, listener.token);
  });
  after(async () => { ws?.close(); await s?.close(); });

  it(`kinds ${KINDS.join(', ')} are stored and read by the old app's recommenders`, async () => {
    for (const kind of KINDS) {
      const answer = await ws.op({ type: 'interaction', trackId: track.id, kind });
      assert.equal(answer.type, 'ack', `interaction kind "${kind}" should be acked; got ${JSON.stringify(answer)}`);
    }
    const rows = await s.prisma.trackInteraction.findMany({ where: { userId: listener.id, type: { in: KINDS } } });
    assert.deepEqual(rows.map((r) => r.type).sort(), [...KINDS].sort(),
      'TrackInteraction.findMany({where: {type: {in: kinds}}}) finds one row per kind');
    for (const r of rows) {
      assert.equal(r.trackId, track.id);
      assert.ok(r.timestamp instanceof Date);
    }
    const weighed = await oldApp.getUserInteractionTracks(s.prisma, listener.id);
    assert.deepEqual(weighed.map((r) => r.trackId), [track.id], 'the content filter\'s read sees the track');
    assert.equal((await oldApp.userInteractions(s.prisma, listener.id)).length, KINDS.length,
      'the collaborative filter\'s read sees every interaction');
  });

  it('an unknown kind ("wave") is refused with `error` `invalid` and stores nothing', async () => {
    const answer = await ws.op({ type: 'interaction', trackId: track.id, kind: 'wave' });
    assert.equal(answer.type, 'error', `interaction kind "wave" should be refused; got ${JSON.stringify(answer)}`);
    assert.equal(answer.code, 'invalid', `the refusal's code should be invalid; got ${answer.code}`);
    assert.match(answer.message, /^kind/, 'the message names the field (kind)');
    const rows = await s.prisma.trackInteraction.findMany({ where: { userId: listener.id, type: 'wave' } });
    assert.equal(rows.length, 0, 'no TrackInteraction row with type "wave"');
  });
});
