// f. `_PlaylistToTrack` (what the old app reads as the playlist's tracks)
//    always equals the set of tracks in the hub's queue, whoever changed it.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sharedDatabase } from '../lib/setup.js';
import { queueTrackIds, sleep, sorted, uid } from '../lib/hub.js';
import * as oldApp from '../lib/oldapp.js';

const WITHIN = 2000;

describe('f. _PlaylistToTrack equals the queue\'s tracks', () => {
  let s;
  let host;
  const catalog = {};

  before(async () => {
    s = await sharedDatabase('f-playlist-links');
    host = await s.hub.register('Host Hilde');
    for (const key of ['A', 'B', 'C', 'X']) {
      catalog[key] = await oldApp.createTrack(s.prisma, {
        spotifyId: uid(`link${key}`), name: `Track ${key}`, artists: [`Artist ${key}`], album: 'Links', popularity: 20,
      });
    }
  });
  after(async () => { await s?.close(); });

  const nameOf = (id) => Object.entries(catalog).find(([, t]) => t.id === id)?.[0] ?? id;
  const names = (ids) => `[${sorted(ids.map(nameOf)).join(', ')}]`;

  /** The old app's view (Prisma: playlist.tracks) and the hub's (snapshot queue), as sets. */
  async function views(sessionId, playlistId) {
    const playlist = await s.prisma.playlist.findUnique({ where: { id: playlistId }, include: { tracks: true } });
    const snap = await s.hub.snapshot(sessionId, host.token);
    return {
      links: sorted(playlist.tracks.map((t) => t.id)),
      queue: sorted([...new Set(queueTrackIds(snap))]),
    };
  }

  /** Within 2 s both views hold exactly `want` (track keys). */
  async function expectBoth(sessionId, playlistId, want, what) {
    const wantIds = sorted(want.map((k) => catalog[k].id));
    const deadline = Date.now() + WITHIN;
    let v;
    for (;;) {
      v = await views(sessionId, playlistId);
      if (JSON.stringify(v.links) === JSON.stringify(wantIds) && JSON.stringify(v.queue) === JSON.stringify(wantIds)) return;
      if (Date.now() > deadline) {
        assert.fail(`${what}: within ${WITHIN} ms both _PlaylistToTrack and the hub's queue should hold ${names(wantIds)}; `
          + `_PlaylistToTrack (prisma playlist.tracks) holds ${names(v.links)}, the queue (GET /v1/sessions/{id}) holds ${names(v.queue)}`);
      }
      await sleep(50);
    }
  }

  async function hubSession() {
    const made = await s.hub.createSession(host.token);
    const ws = await s.hub.socket('host');
    await ws.join(made.session.id, host.token);
    return { id: made.session.id, playlistId: made.playlist.id, ws };
  }

  it('after the hub\'s adds and removes (a track queued twice stays linked while one entry is left)', async () => {
    const live = await hubSession();
    try {
      const add = async (k) => (await live.ws.acked({ type: 'add', trackId: catalog[k].id })).version;
      await add('A');
      await add('B');
      await add('B');
      await add('C');
      await expectBoth(live.id, live.playlistId, ['A', 'B', 'C'], 'after adding A, B, B, C');
      const snap = await s.hub.snapshot(live.id, host.token);
      const entryOf = (k) => snap.queue.find((e) => e.track.id === catalog[k].id).entryId;
      await live.ws.acked({ type: 'remove', entryId: entryOf('B') });
      await expectBoth(live.id, live.playlistId, ['A', 'B', 'C'], 'after removing one of the two B entries');
      await live.ws.acked({ type: 'remove', entryId: entryOf('C') });
      await expectBoth(live.id, live.playlistId, ['A', 'B'], 'after removing C');
    } finally { live.ws.close(); }
  });

  it('a track the old app linked is not unlinked by the hub\'s next change', async () => {
    const live = await hubSession();
    try {
      await live.ws.acked({ type: 'add', trackId: catalog.A.id });
      await live.ws.acked({ type: 'add', trackId: catalog.B.id });
      await oldApp.addTracksToPlaylist(s.prisma, live.id, [catalog.X.id]);
      const snap = await s.hub.snapshot(live.id, host.token);
      const a = snap.queue.find((e) => e.track.id === catalog.A.id);
      await live.ws.acked({ type: 'remove', entryId: a.entryId });
      const playlist = await s.prisma.playlist.findUnique({ where: { id: live.playlistId }, include: { tracks: true } });
      assert.ok(playlist.tracks.some((t) => t.id === catalog.X.id),
        `track X, which the old app connected, must still be in _PlaylistToTrack after the hub removed A; it holds ${names(playlist.tracks.map((t) => t.id))}`);
      await expectBoth(live.id, live.playlistId, ['B', 'X'], 'after the old app connected X and the hub removed A');
    } finally { live.ws.close(); }
  });

  it('after the old app\'s `set` (updateSessionPlaylist), and the hub\'s next add', async () => {
    const live = await hubSession();
    try {
      await live.ws.acked({ type: 'add', trackId: catalog.A.id });
      await live.ws.acked({ type: 'add', trackId: catalog.B.id });
      await oldApp.updateSessionPlaylist(s.prisma, live.id, [catalog.B.id, catalog.C.id]);
      await expectBoth(live.id, live.playlistId, ['B', 'C'], 'after the old app set the tracks to [B, C]');
      await live.ws.acked({ type: 'add', trackId: catalog.A.id });
      await expectBoth(live.id, live.playlistId, ['A', 'B', 'C'], 'after the old app\'s set and then a hub add of A');
    } finally { live.ws.close(); }
  });
});
