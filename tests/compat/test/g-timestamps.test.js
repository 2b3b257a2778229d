// g. PlaylistUpdate timestamps strictly increase within a playlist, also for
//    ops committed together, so the old app's newest-first read (ORDER BY
//    timestamp DESC) is the hub's order (hubVersion) reversed.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sharedDatabase } from '../lib/setup.js';
import { uid } from '../lib/hub.js';
import * as oldApp from '../lib/oldapp.js';

const BURST = 12;

describe('g. PlaylistUpdate timestamps follow the hub\'s order', () => {
  let s;
  let host;
  let live;
  let tracks;
  before(async () => {
    s = await sharedDatabase('g-timestamps');
    host = await s.hub.register('Host Harriet');
    tracks = [];
    for (let i = 0; i < 3; i++) {
      tracks.push(await oldApp.createTrack(s.prisma, {
        spotifyId: uid('ts'), name: `Burst ${i}`, artists: ['Burst'], album: 'Burst', popularity: 1,
      }));
    }
    const made = await s.hub.createSession(host.token);
    const ws = await s.hub.socket('host');
    await ws.join(made.session.id, host.token);
    live = { id: made.session.id, playlistId: made.playlist.id, ws };
    // All sent before any answer arrives, so the hub commits several of them
    // in one transaction (group commit).
    const reqs = [];
    for (let i = 0; i < BURST; i++) {
      const req = `burst-${i}`;
      reqs.push(req);
      ws.send({ type: 'add', req, trackId: tracks[i % tracks.length].id });
    }
    for (const req of reqs) {
      const answer = await ws.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.req === req, {
        timeout: 10_000, what: `the ack of ${req}`,
      });
      assert.equal(answer.type, 'ack', `add ${req} was refused: ${JSON.stringify(answer)}`);
    }
  });
  after(async () => { live?.ws.close(); await s?.close(); });

  /** PlaylistUpdate id → hubVersion (a hub column Prisma's schema does not know). */
  async function versions() {
    const rows = await s.prisma.$queryRaw`SELECT "id", "hubVersion" FROM "PlaylistUpdate" WHERE "playlistId" = ${live.playlistId}`;
    return new Map(rows.map((r) => [r.id, Number(r.hubVersion)]));
  }

  it('timestamps strictly increase with the version, even within one commit', async () => {
    const rows = await s.prisma.playlistUpdate.findMany({ where: { playlistId: live.playlistId } });
    assert.equal(rows.length, BURST, `one PlaylistUpdate per add (${BURST})`);
    const version = await versions();
    const byVersion = [...rows].sort((a, b) => version.get(a.id) - version.get(b.id));
    const stamps = byVersion.map((r) => `v${version.get(r.id)}@${r.timestamp.toISOString()}`);
    const ties = byVersion.filter((r, i) => i > 0 && r.timestamp.getTime() <= byVersion[i - 1].timestamp.getTime());
    assert.equal(ties.length, 0,
      `each PlaylistUpdate.timestamp must be later than the previous version's (TIMESTAMP(3): at least 1 ms apart); ${ties.length} are not: ${stamps.join(', ')}`);
  });

  it('the old app\'s newest-first reads return the updates in reverse version order', async () => {
    const version = await versions();
    const want = [...version.values()].sort((a, b) => b - a);
    const newestFirst = await oldApp.playlistUpdatesNewestFirst(s.prisma, live.playlistId);
    // Rows that share a timestamp come back in whatever order Postgres finds
    // them: the read is only the hub's order if no two rows tie.
    const distinct = new Set(newestFirst.map((r) => r.timestamp.getTime())).size;
    assert.equal(distinct, newestFirst.length,
      `ORDER BY timestamp DESC can only give the hub's order if no two of the playlist's updates share a timestamp; ${newestFirst.length} rows have ${distinct} distinct timestamps`);
    const viaOrderBy = newestFirst.map((r) => version.get(r.id));
    assert.deepEqual(viaOrderBy, want, 'playlistUpdate.findMany({orderBy: {timestamp: \'desc\'}}) lists hubVersion descending');
    const viaRaw = (await oldApp.getPlaylistHistory(s.prisma, live.id)).map((r) => version.get(r.id));
    assert.deepEqual(viaRaw, want, 'getPlaylistHistory (ORDER BY timestamp DESC) lists hubVersion descending');
  });

  it('rows the hub writes are what the old app expects: type add/remove/reorder, trackId a Track id', async () => {
    const rows = await s.prisma.playlistUpdate.findMany({ where: { playlistId: live.playlistId }, include: { user: true } });
    const ids = new Set(tracks.map((t) => t.id));
    for (const r of rows) {
      assert.ok(['add', 'remove', 'reorder'].includes(r.type), `PlaylistUpdate.type ${r.type}`);
      assert.ok(ids.has(r.trackId), `PlaylistUpdate.trackId ${r.trackId} is a Track id`);
      assert.equal(r.userId, host.id);
    }
  });
});
