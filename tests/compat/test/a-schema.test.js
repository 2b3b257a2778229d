// a. A database the hub creates from empty is the database Prisma makes: the
//    old app's `prisma migrate deploy` accepts it, its indexes and defaults
//    are Prisma's, and the real Prisma client reads and writes every model.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connect, createDatabase, createPrismaDatabase, prismaFor, PRISMA_MIGRATIONS,
} from '../lib/db.js';
import { Hub, uid } from '../lib/hub.js';
import { loadPrismaSchema } from '../lib/schema.js';
import {
  columnProblems, foreignIndexProblems, prismaIndexProblems, prismaMigrationProblems,
} from '../lib/catalog.js';
import * as oldApp from '../lib/oldapp.js';

const expected = loadPrismaSchema();

/** One assertion naming every difference. */
function assertNone(problems, what) {
  assert.deepEqual(problems, [], `${what}:\n  - ${problems.join('\n  - ')}`);
}

describe('a. the schema Prisma reads from tests/fixtures/schema.prisma', () => {
  it('implies the seed\'s tables, index list and defaults (guards the checks below)', () => {
    assert.deepEqual([...expected.keys()].sort(), [
      'GroupSession', 'Playlist', 'PlaylistUpdate', 'Track', 'TrackFeatures', 'TrackInteraction',
      'User', 'UserPreference', '_GroupSessionToUser', '_PlaylistToTrack',
    ]);
    const names = [...expected.values()].flatMap((t) => t.indexes.map((i) => i.name));
    for (const n of [
      'User_email_idx', 'User_name_idx', 'User_spotifyId_idx', 'UserPreference_userId_idx',
      'UserPreference_topArtists_idx', 'UserPreference_genres_idx', 'GroupSession_active_idx',
      'GroupSession_createdAt_idx', 'GroupSession_updatedAt_idx', 'Playlist_creatorId_idx',
      'Playlist_sessionId_idx', 'Playlist_createdAt_idx', 'Track_spotifyId_idx', 'Track_artists_idx',
      'TrackFeatures_trackId_idx', 'PlaylistUpdate_playlistId_timestamp_idx', 'User_email_key',
      'UserPreference_userId_key', 'Playlist_spotifyId_key', 'Playlist_sessionId_key', 'Track_spotifyId_key',
      'TrackFeatures_trackId_key', 'TrackInteraction_userId_trackId_type_timestamp_key',
    ]) assert.ok(names.includes(n), `schema.prisma should imply index ${n}`);
    const defaults = [...expected].flatMap(([t, v]) => [...v.columns]
      .filter(([, c]) => c.default !== null).map(([c, d]) => `${t}.${c}=${d.default}`)).sort();
    assert.deepEqual(defaults, [
      'GroupSession.active=true', 'GroupSession.createdAt=CURRENT_TIMESTAMP', 'Playlist.createdAt=CURRENT_TIMESTAMP',
      'PlaylistUpdate.timestamp=CURRENT_TIMESTAMP', 'Track.createdAt=CURRENT_TIMESTAMP', 'Track.popularity=0',
      'TrackInteraction.timestamp=CURRENT_TIMESTAMP', 'User.createdAt=CURRENT_TIMESTAMP',
      'UserPreference.genres=ARRAY[]::text[]',
    ]);
  });
});

describe('a. a database the hub created from empty, as Prisma sees it', () => {
  let hub;
  let db;
  let prisma;

  before(async () => {
    const url = await createDatabase('compat_a_hub_made');
    hub = await Hub.start('a-hub-made', url); // migrates the empty database
    db = await connect(url);
    prisma = prismaFor(url);
  });
  after(async () => {
    await prisma?.$disconnect();
    await db?.end();
    await hub?.stop();
  });

  it('every index on Prisma\'s list exists with Prisma\'s columns, as btree', async () => {
    assertNone(await prismaIndexProblems(db, expected), 'indexes differ from what Prisma\'s migrations make');
  });

  it('any other index on Prisma\'s tables is the hub\'s own (GIN ones named hub_…)', async () => {
    assertNone(await foreignIndexProblems(db, expected), 'indexes on Prisma\'s tables that are not the hub\'s');
  });

  it('every column has Prisma\'s type, nullability and default, and no default Prisma does not set', async () => {
    assertNone(await columnProblems(db, expected), 'columns differ from what Prisma\'s schema implies');
  });

  it('_prisma_migrations records the six migrations as applied, so `prisma migrate deploy` has nothing pending', async () => {
    assertNone(await prismaMigrationProblems(db, PRISMA_MIGRATIONS),
      'prisma migrate deploy would not accept this database as one it made');
  });

  it('the real Prisma client writes and reads every model (findMany)', async () => {
    const spotifyUser = await oldApp.createUserWithPreferences(prisma, {
      email: `${uid('a-')}@example.com`, name: 'Spotify user', spotifyId: uid('sp-'),
    });
    const user = await oldApp.createUser(prisma, { email: `${uid('a-')}@example.com`, name: 'Password user', password: 'hunter2hunter2' });
    await oldApp.updateUserPreferences(prisma, spotifyUser.id, {
      genres: ['pop', 'house'], artists: ['a1', 'a2'], tracks: ['t1'], audioFeatures: { energy: 0.8 },
    });
    const track = await oldApp.createTrack(prisma, {
      spotifyId: uid('trk'), name: 'Round trip', artists: ['One', 'Two'], album: 'Tests', popularity: 17,
    }, {
      danceability: 0.5, energy: 0.6, key: 5, loudness: -7.5, mode: 1, speechiness: 0.05,
      acousticness: 0.1, instrumentalness: 0, liveness: 0.2, valence: 0.7, tempo: 120.5,
    });
    const session = await oldApp.createGroupSession(prisma, { name: 'Prisma party', creatorId: user.id });
    await oldApp.addParticipantToSession(prisma, session.id, spotifyUser.id);
    await oldApp.updateSessionPlaylist(prisma, session.id, [track.id]);
    // Rows the old app's seed and services write directly.
    await prisma.trackInteraction.create({ data: { userId: user.id, trackId: track.id, type: 'play' } });
    await prisma.playlistUpdate.create({
      data: { playlistId: session.playlist.id, type: 'add', trackId: track.id, userId: user.id },
    });

    const read = {
      user: await prisma.user.findMany({ include: { preferences: true, groupSessions: true, playlists: true, interactions: true, playlistUpdates: true } }),
      userPreference: await prisma.userPreference.findMany({ include: { user: true } }),
      groupSession: await prisma.groupSession.findMany({ include: { users: true, playlist: true } }),
      playlist: await prisma.playlist.findMany({ include: { tracks: true, updates: true, creator: true, groupSession: true } }),
      track: await prisma.track.findMany({ include: { audioFeatures: true, playlists: true, interactions: true } }),
      trackFeatures: await prisma.trackFeatures.findMany({ include: { track: true } }),
      trackInteraction: await prisma.trackInteraction.findMany({ include: { user: true, track: true } }),
      playlistUpdate: await prisma.playlistUpdate.findMany({ include: { user: true, playlist: true } }),
    };
    for (const [model, rows] of Object.entries(read)) {
      assert.ok(rows.length > 0, `prisma.${model}.findMany() returned no rows after the old app wrote some`);
    }
    const pref = read.userPreference.find((p) => p.userId === spotifyUser.id);
    assert.deepEqual({ genres: pref.genres, topArtists: pref.topArtists, features: pref.features },
      { genres: ['pop', 'house'], topArtists: ['a1', 'a2'], features: { energy: 0.8 } });
    assert.ok(pref.lastUpdated instanceof Date, 'UserPreference.lastUpdated reads back as a date');
    const t = read.track.find((x) => x.id === track.id);
    assert.deepEqual([t.name, t.artists, t.album, t.popularity, t.audioFeatures.tempo], ['Round trip', ['One', 'Two'], 'Tests', 17, 120.5]);
    const s = await oldApp.findGroupSession(prisma, session.id);
    assert.deepEqual(s.users.map((u) => u.id).sort(), [user.id, spotifyUser.id].sort());
    assert.deepEqual(s.playlist.tracks.map((x) => x.id), [track.id]);
    assert.equal(s.active, true, 'GroupSession.active defaults to true');
    const listed = await oldApp.findPublicSessions(prisma);
    assert.ok(listed.some((x) => x.id === session.id), 'findPublicSessions lists the new session');
  });
});

describe('a. a database the old app made, after the hub adopted it', () => {
  let hub;
  let db;
  before(async () => {
    const url = await createPrismaDatabase('compat_a_adopted');
    hub = await Hub.start('a-adopted', url);
    db = await connect(url);
  });
  after(async () => {
    await db?.end();
    await hub?.stop();
  });

  it('still has exactly the six migrations in _prisma_migrations', async () => {
    assertNone(await prismaMigrationProblems(db, PRISMA_MIGRATIONS),
      'after adopting it, prisma migrate deploy would not accept the old app\'s database');
  });

  it('gained only the hub\'s own indexes on Prisma\'s tables', async () => {
    assertNone(await foreignIndexProblems(db, expected), 'indexes on Prisma\'s tables that are not the hub\'s');
  });
});

describe('a. the suite\'s stand-in for a Prisma-made database (tests/fixtures/prisma_baseline.sql)', () => {
  // Scenarios b–h run the hub on a database laid out by this fixture, as the
  // old app's `prisma migrate deploy` leaves one. It must itself be what
  // Prisma makes, or those scenarios adopt the wrong database.
  let db;
  before(async () => {
    const url = await createDatabase('compat_a_fixture');
    db = await connect(url);
    const { default: fs } = await import('node:fs');
    const { default: path } = await import('node:path');
    const { ROOT } = await import('../lib/db.js');
    await db.query(fs.readFileSync(path.join(ROOT, 'tests', 'fixtures', 'prisma_baseline.sql'), 'utf8'));
  });
  after(async () => { await db?.end(); });

  it('has Prisma\'s indexes (btree) and column defaults', async () => {
    const problems = [
      ...await prismaIndexProblems(db, expected),
      ...await foreignIndexProblems(db, expected),
      ...await columnProblems(db, expected),
    ].map((p) => `tests/fixtures/prisma_baseline.sql: ${p}`);
    assertNone(problems, 'the fixture differs from what the old app\'s migrations make');
  });
});
