// c. The shared catalog: a guest adding a track by its metadata, or a REST
//    upsert, never rewrites an existing Track's name, artists, album or
//    popularity (the old app's recommendations read them).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sharedDatabase } from '../lib/setup.js';
import { uid } from '../lib/hub.js';
import * as oldApp from '../lib/oldapp.js';

const STORED = { name: 'Stored Name', artists: ['Stored Artist', 'Second Artist'], album: 'Stored Album', popularity: 42 };

function fields(t) {
  return { name: t.name, artists: t.artists, album: t.album, popularity: t.popularity };
}

describe('c. the hub never rewrites an existing Track', () => {
  let s;
  let host;
  let session;
  let ws;
  before(async () => {
    s = await sharedDatabase('c-catalog');
    host = await s.hub.register('Host Hal');
    session = await s.hub.createSession(host.token);
    ws = await s.hub.socket('host');
    await ws.join(session.session.id, host.token);
  });
  after(async () => { ws?.close(); await s?.close(); });

  it('an `add` by metadata with a known spotifyId leaves the stored Track as it was', async () => {
    const track = await oldApp.createTrack(s.prisma, { spotifyId: uid('cat'), ...STORED });
    const from = ws.frames.length;
    await ws.acked({
      type: 'add',
      track: { spotifyId: track.spotifyId, name: 'Guest Rename', artists: ['Somebody Else'], album: 'Guest Album', popularity: 3 },
    });
    const after = await s.prisma.track.findUnique({ where: { id: track.id } });
    assert.deepEqual(fields(after), STORED,
      `the Track with spotifyId ${track.spotifyId} must keep its name, artists, album and popularity after a guest's add by metadata`);
    assert.equal(await s.prisma.track.count({ where: { spotifyId: track.spotifyId } }), 1, 'still one Track for that spotifyId');
    const update = ws.updates(from).find((u) => u.change.op === 'add');
    assert.equal(update.change.track.id, track.id, 'the queued entry is the existing Track');
    assert.deepEqual(fields(update.change.track), STORED, 'the update shows the stored metadata, not the guest\'s');
  });

  it('POST /v1/tracks with a known spotifyId leaves the stored Track as it was', async () => {
    const track = await oldApp.createTrack(s.prisma, { spotifyId: uid('cat'), ...STORED });
    const res = await s.hub.api('POST', '/tracks', host.token, {
      spotifyId: track.spotifyId, name: 'REST Rename', artists: ['REST Artist'], album: 'REST Album', popularity: 99,
    });
    assert.ok([200, 201].includes(res.status), `POST /v1/tracks answered ${res.status} ${JSON.stringify(res.data)}`);
    const after = await s.prisma.track.findUnique({ where: { id: track.id } });
    assert.deepEqual(fields(after), STORED,
      `the Track with spotifyId ${track.spotifyId} must keep its name, artists, album and popularity after POST /v1/tracks`);
    assert.equal(res.data.track.id, track.id, 'the answer names the existing Track');
    assert.deepEqual(fields(res.data.track), STORED, 'the answer shows the stored metadata');
  });

  it('an `add` by metadata with a new spotifyId creates the Track the old app then reads', async () => {
    const spotifyId = uid('new');
    await ws.acked({ type: 'add', track: { spotifyId, name: 'Fresh', artists: ['New Artist'], album: 'New Album', popularity: 7 } });
    const row = await s.prisma.track.findUnique({ where: { spotifyId } });
    assert.ok(row, 'the new Track is there');
    assert.deepEqual(fields(row), { name: 'Fresh', artists: ['New Artist'], album: 'New Album', popularity: 7 });
    assert.ok(row.createdAt instanceof Date && row.updatedAt instanceof Date);
  });
});
