// e. Changes the old app makes while a session is live reach its listeners
//    within 2 s as ordinary versioned updates (gap-free), and the hub's
//    snapshot agrees; a session it ends or deletes ends for every listener
//    (`ended`, close 4010) and is never answered `unavailable`.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sharedDatabase } from '../lib/setup.js';
import { applyUpdates, queueTrackIds, sleep, sorted, uid } from '../lib/hub.js';
import * as oldApp from '../lib/oldapp.js';

const WITHIN = 2000;

describe('e. the old app\'s changes to a live session reach its listeners', () => {
  let s;
  let host;
  const catalog = {};

  before(async () => {
    s = await sharedDatabase('e-live-changes');
    host = await s.hub.register('Host Hugo');
    for (const key of ['A', 'B', 'C', 'X']) {
      catalog[key] = await oldApp.createTrack(s.prisma, {
        spotifyId: uid(`live${key}`), name: `Track ${key}`, artists: [`Artist ${key}`], album: 'Live', popularity: 50,
      });
    }
  });
  after(async () => { await s?.close(); });

  const nameOf = (id) => Object.entries(catalog).find(([, t]) => t.id === id)?.[0] ?? id;
  const names = (ids) => `[${ids.map(nameOf).sort().join(', ')}]`;

  /** A hub session with the host listening and `initial` tracks queued by the hub. */
  async function liveSession(initial) {
    const made = await s.hub.createSession(host.token);
    const ws = await s.hub.socket('host listener');
    const snap = await ws.join(made.session.id, host.token);
    for (const key of initial) await ws.acked({ type: 'add', trackId: catalog[key].id });
    return { id: made.session.id, playlistId: made.playlist.id, ws, snap };
  }

  /** The listener's updates so far must be numbered v0+1, v0+2, … with no gap. */
  function assertGapFree(live) {
    const versions = live.ws.updates().map((u) => u.version);
    const want = versions.map((_, i) => live.snap.version + i + 1);
    assert.deepEqual(versions, want, `update versions must follow the snapshot's ${live.snap.version} without a gap or repeat`);
    return live.snap.version + versions.length;
  }

  /** Within 2 s the listener's queue (snapshot + updates) holds exactly `want` (track keys, any order). */
  async function expectQueue(live, want, what) {
    const wantIds = sorted(want.map((k) => catalog[k].id));
    const start = live.snap.queue.map((e) => ({ entryId: e.entryId, trackId: e.track.id }));
    const deadline = Date.now() + WITHIN;
    let queue;
    for (;;) {
      queue = applyUpdates(start, live.ws.updates()).map((e) => e.trackId);
      if (JSON.stringify(sorted(queue)) === JSON.stringify(wantIds)) break;
      if (Date.now() > deadline) {
        assert.fail(`${what}: within ${WITHIN} ms the listener should see the queue become ${names(wantIds)} through update frames; `
          + `it shows ${names(queue)} (updates received: ${JSON.stringify(live.ws.updates().map((u) => [u.version, u.change.op, nameOf(u.change.track?.id)]))})`);
      }
      await sleep(25);
    }
    const version = assertGapFree(live);
    const rest = await s.hub.snapshot(live.id, host.token);
    assert.deepEqual(queueTrackIds(rest), queue, `${what}: the hub's snapshot (GET /v1/sessions/{id}) shows the same queue as the listener`);
    assert.equal(rest.version, version, `${what}: the hub's snapshot is at the listener's last version`);
  }

  it('tracks the old app connects to the playlist (addTracksToPlaylist) are added to the queue', async () => {
    const live = await liveSession(['A']);
    try {
      await oldApp.addTracksToPlaylist(s.prisma, live.id, [catalog.X.id]);
      await expectQueue(live, ['A', 'X'], 'after the old app connected track X');
    } finally { live.ws.close(); }
  });

  it('the old app\'s `set` of the playlist\'s tracks (updateSessionPlaylist) becomes the queue', async () => {
    const live = await liveSession(['A', 'B']);
    try {
      await oldApp.updateSessionPlaylist(s.prisma, live.id, [catalog.B.id, catalog.C.id]);
      await expectQueue(live, ['B', 'C'], 'after the old app set the tracks to [B, C]');
    } finally { live.ws.close(); }
  });

  it('tracks the old app disconnects (removeTracksFromPlaylist) leave the queue', async () => {
    const live = await liveSession(['A', 'B']);
    try {
      await oldApp.removeTracksFromPlaylist(s.prisma, live.id, [catalog.A.id]);
      await expectQueue(live, ['B'], 'after the old app disconnected track A');
    } finally { live.ws.close(); }
  });

  it('a member the old app adds (addParticipantToSession) and removes is a member of the live session, and back', async () => {
    const live = await liveSession(['A']);
    const guest = await s.hub.register('Guest Greta');
    try {
      const before = await s.hub.api('GET', `/sessions/${live.id}`, guest.token);
      assert.equal(before.status, 403, `before the old app adds her, a non-member's read is 403 (got ${before.status})`);

      await oldApp.addParticipantToSession(s.prisma, live.id, guest.id);
      const deadline = Date.now() + WITHIN;
      let snap;
      let read;
      for (;;) {
        snap = await s.hub.snapshot(live.id, host.token);
        read = await s.hub.api('GET', `/sessions/${live.id}`, guest.token);
        if (snap.members.some((m) => m.userId === guest.id) && read.status === 200) break;
        if (Date.now() > deadline) {
          assert.fail(`within ${WITHIN} ms of the old app adding her to _GroupSessionToUser, the hub should treat ${guest.id} as a member: `
            + `the snapshot's members are ${JSON.stringify(snap.members.map((m) => m.name))} and her own GET /v1/sessions/{id} answers ${read.status}`);
        }
        await sleep(50);
      }
      const mine = await s.hub.ok('GET', '/sessions?active=true', guest.token);
      assert.ok(mine.sessions.some((x) => (x.id ?? x.session?.id) === live.id),
        `the session is listed to its new member (GET /v1/sessions): ${JSON.stringify(mine.sessions)}`);
      assertGapFree(live);

      await oldApp.removeParticipantFromSession(s.prisma, live.id, guest.id);
      const deadline2 = Date.now() + WITHIN;
      for (;;) {
        snap = await s.hub.snapshot(live.id, host.token);
        read = await s.hub.api('GET', `/sessions/${live.id}`, guest.token);
        if (!snap.members.some((m) => m.userId === guest.id) && read.status === 403) break;
        if (Date.now() > deadline2) {
          assert.fail(`within ${WITHIN} ms of the old app removing her from _GroupSessionToUser, the hub should no longer treat ${guest.id} as a member: `
            + `the snapshot's members are ${JSON.stringify(snap.members.map((m) => m.name))} and her own GET /v1/sessions/{id} answers ${read.status}`);
        }
        await sleep(50);
      }
      assertGapFree(live);
    } finally { live.ws.close(); }
  });

  /** Within 2 s: `ended`, then close 4010. */
  async function expectEnded(ws, what) {
    await ws.waitFor((f) => f.type === 'ended', { timeout: WITHIN, what: `an \`ended\` frame ${what}` });
    const closed = await Promise.race([ws.closed, sleep(WITHIN).then(() => null)]);
    assert.ok(closed, `${what}: the connection should close (4010) within ${WITHIN} ms of \`ended\``);
    assert.equal(closed.code, 4010, `${what}: close code 4010 "session ended" (got ${closed.code} "${closed.reason}")`);
  }

  /** A fresh `join`: resolves {frames, close} once the hub closes the connection (or 3 s pass). */
  async function joinAfterwards(sessionId, label) {
    const ws = await s.hub.socket(label);
    ws.send({ type: 'join', sessionId, token: host.token });
    const closed = await Promise.race([ws.closed, sleep(3000).then(() => null)]);
    ws.close();
    return { frames: ws.frames, closed };
  }

  it('a session the old app ends (updateSessionStatus active=false) ends for its listener: `ended`, close 4010', async () => {
    const live = await liveSession(['A']);
    try {
      await oldApp.updateSessionStatus(s.prisma, live.id, false);
      await expectEnded(live.ws, 'after the old app set GroupSession.active = false');
    } finally { live.ws.close(); }
    const again = await joinAfterwards(live.id, 'late joiner');
    assert.equal(again.closed?.code, 4010,
      `a join to the session the old app ended should be closed with 4010; got ${JSON.stringify(again.frames)} and close ${again.closed?.code}`);
  });

  it('a session the old app deletes (deleteGroupSession) ends for its listener and is then unknown, never `unavailable`', async () => {
    const live = await liveSession(['A']);
    try {
      await oldApp.deleteGroupSession(s.prisma, live.id);
      await expectEnded(live.ws, 'after the old app deleted the GroupSession');
    } finally { live.ws.close(); }
    const again = await joinAfterwards(live.id, 'joiner after delete');
    const errors = again.frames.filter((f) => f.type === 'error');
    assert.ok(!errors.some((e) => e.code === 'unavailable'),
      `a join to a deleted session must not be answered \`unavailable\` (retry forever); got ${JSON.stringify(again.frames)}`);
    assert.ok([4004, 4010].includes(again.closed?.code),
      `a join to a deleted session should end with close 4004 (not found) or 4010 (ended); got frames ${JSON.stringify(again.frames)} and close ${again.closed ? again.closed.code : 'none within 3 s'}`);
    const rest = await s.hub.api('GET', `/sessions/${live.id}`, host.token);
    assert.equal(rest.status, 404, `GET /v1/sessions/{id} of a deleted session should be 404; got ${rest.status} ${JSON.stringify(rest.data)}`);
  });

  it('a session the old app deletes while no one listens is unknown to the next join', async () => {
    const made = await s.hub.createSession(host.token);
    await oldApp.deleteGroupSession(s.prisma, made.session.id);
    const again = await joinAfterwards(made.session.id, 'joiner of a deleted idle session');
    assert.equal(again.closed?.code, 4004,
      `a join to a session deleted before anyone joined should be \`not_found\` + close 4004; got ${JSON.stringify(again.frames)} and close ${again.closed?.code}`);
  });
});
