// d. A session the old app made (members in _GroupSessionToUser, tracks in
//    _PlaylistToTrack, no hub queue) opens in the hub with those tracks as
//    its queue, in an order that stays the same.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sharedDatabase } from '../lib/setup.js';
import { queueTrackIds, sorted, uid } from '../lib/hub.js';
import * as oldApp from '../lib/oldapp.js';

describe('d. a session the old app made opens in the hub with its tracks queued', () => {
  let s;
  let host;
  let guest;
  let tracks;
  let made;
  let firstOrder;
  before(async () => {
    s = await sharedDatabase('d-old-sessions');
    // Accounts made through the hub, so that getting a token does not depend
    // on scenario b; the session itself is all the old app's.
    host = await s.hub.register('Host Hedda');
    guest = await s.hub.register('Guest Gil');
    tracks = [];
    for (const n of [1, 2, 3]) {
      tracks.push(await oldApp.createTrack(s.prisma, {
        spotifyId: uid('old'), name: `Old app track ${n}`, artists: [`Artist ${n}`], album: 'Old album', popularity: 10 * n,
      }));
    }
    made = await oldApp.createGroupSession(s.prisma, { name: 'Made by the old app', creatorId: host.id });
    await oldApp.addParticipantToSession(s.prisma, made.id, guest.id);
    await oldApp.updateSessionPlaylist(s.prisma, made.id, tracks.map((t) => t.id));
  });
  after(async () => { await s?.close(); });

  it('joining it gives a snapshot whose queue holds the tracks of its playlist', async () => {
    const ws = await s.hub.socket('host');
    try {
      const snap = await ws.join(made.id, host.token);
      assert.equal(snap.type, 'snapshot');
      assert.equal(snap.playlist.id, made.playlist.id, 'the snapshot is of the session\'s playlist');
      assert.equal(snap.session.hostId, host.id, 'the playlist\'s creator is the host');
      assert.deepEqual(sorted(queueTrackIds(snap)), sorted(tracks.map((t) => t.id)),
        `the queue should hold the ${tracks.length} tracks the old app put in _PlaylistToTrack; it holds ${snap.queue.length}: ${JSON.stringify(snap.queue.map((e) => e.track.name))}`);
      for (const e of snap.queue) {
        const t = tracks.find((x) => x.id === e.track.id);
        assert.equal(e.track.name, t.name, 'queued tracks carry their stored metadata');
      }
      assert.deepEqual(sorted(snap.members.map((m) => m.userId)), sorted([host.id, guest.id]),
        'the members are the old app\'s _GroupSessionToUser rows');
    } finally {
      ws.close();
    }
  });

  it('the queue order is stable: another member, REST and a restarted hub see the same order', async () => {
    const first = await s.hub.socket('host again');
    firstOrder = queueTrackIds(await first.join(made.id, host.token));
    first.close();
    assert.equal(firstOrder.length, tracks.length,
      `the queue should hold the old app's ${tracks.length} tracks before its order can be compared; it holds ${firstOrder.length}`);
    const ws = await s.hub.socket('guest');
    const snap = await ws.join(made.id, guest.token);
    ws.close();
    assert.deepEqual(queueTrackIds(snap), firstOrder, 'a second join sees the same order');
    const rest = await s.hub.snapshot(made.id, host.token);
    assert.deepEqual(queueTrackIds(rest), firstOrder, 'GET /v1/sessions/{id} shows the same order');
    await s.hub.stop();
    await s.hub.start();
    const again = await s.hub.socket('host after restart');
    const snap2 = await again.join(made.id, host.token);
    again.close();
    assert.deepEqual(queueTrackIds(snap2), firstOrder, 'after a hub restart the order is the same');
  });

  it('_PlaylistToTrack still holds the old app\'s tracks after the hub opened the session', async () => {
    const playlist = await s.prisma.playlist.findUnique({ where: { id: made.playlist.id }, include: { tracks: true } });
    assert.deepEqual(sorted(playlist.tracks.map((t) => t.id)), sorted(tracks.map((t) => t.id)),
      'opening the session in the hub must not unlink the old app\'s tracks');
  });
});
