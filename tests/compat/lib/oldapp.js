// The old Audotics app's database reads and writes, as our own Prisma calls.
// Each function does what the named function of the old app does to these
// tables (same Prisma operations: create/connect/set/disconnect/upsert/delete
// and the same reads), written for this suite; the old app's code itself is
// not copied. Paths are in the old app's repository (backend/...).

import bcrypt from 'bcryptjs';

/** Cost factor the old app hashes passwords with. */
export const BCRYPT_ROUNDS = 10;

/**
 * Mirrors `UserService.create` (backend/src/services/user.service.ts): hash the
 * password with bcrypt at cost 10, then `user.create` with it.
 */
export async function createUser(prisma, { email, name, password, spotifyId }) {
  const hashed = password ? await bcrypt.hash(password, BCRYPT_ROUNDS) : undefined;
  return prisma.user.create({
    data: { email, name, password: hashed, spotifyId: spotifyId ?? '' },
  });
}

/**
 * Mirrors `UserService.validateCredentials` (backend/src/services/user.service.ts):
 * read the stored hash by email and check it with `bcrypt.compare`. Returns
 * the user id, or null when the password does not match (or there is none).
 */
export async function validateCredentials(prisma, email, password) {
  const row = await prisma.user.findUnique({ where: { email }, select: { id: true, password: true } });
  if (!row?.password) return null;
  return (await bcrypt.compare(password, row.password)) ? row.id : null;
}

/**
 * Mirrors `DatabaseService.createUser` (backend/src/services/database.service.ts):
 * a (Spotify) user with an empty preference row created in the same call.
 */
export async function createUserWithPreferences(prisma, { email, name, spotifyId }) {
  return prisma.$transaction(async (tx) => {
    const clash = await tx.user.findFirst({ where: { OR: [{ email }, { spotifyId }] } });
    if (clash) throw new Error(`user ${email} exists`);
    return tx.user.create({
      data: {
        email, name, spotifyId,
        preferences: { create: { genres: [], topArtists: [], topTracks: [], features: {}, lastUpdated: new Date() } },
      },
      include: { preferences: true },
    });
  });
}

/**
 * Mirrors `DatabaseService.updateUserPreferences`
 * (backend/src/services/database.service.ts): `userPreference.upsert` by userId.
 */
export async function updateUserPreferences(prisma, userId, { genres, artists, tracks, audioFeatures }) {
  const data = {
    genres: genres || [], topArtists: artists || [], topTracks: tracks || [],
    features: audioFeatures, lastUpdated: new Date(),
  };
  return prisma.userPreference.upsert({ where: { userId }, update: data, create: { ...data, userId } });
}

/**
 * A catalog row with its audio features, as the old app's seed
 * (backend/database/prisma/seed.ts: `track.create` then `trackFeatures.create`)
 * and `MLDataService.updateTrackAudioFeatures`
 * (backend/src/aiml/services/ml-data.service.ts: `trackFeatures.upsert`) write them.
 */
export async function createTrack(prisma, { spotifyId, name, artists, album, popularity }, features) {
  const track = await prisma.track.create({ data: { spotifyId, name, artists, album, popularity } });
  if (features) {
    await prisma.trackFeatures.upsert({
      where: { trackId: track.id }, create: { trackId: track.id, ...features }, update: features,
    });
  }
  return track;
}

/**
 * Mirrors `DatabaseService.createGroupSession` (backend/src/services/database.service.ts):
 * in one transaction, a GroupSession whose members `connect` the creator and
 * whose playlist is created with the creator `connect`ed.
 */
export async function createGroupSession(prisma, { name, creatorId }) {
  return prisma.$transaction(async (tx) => {
    const creator = await tx.user.findUnique({ where: { id: creatorId } });
    if (!creator) throw new Error('creator not found');
    return tx.groupSession.create({
      data: {
        name,
        users: { connect: [{ id: creatorId }] },
        playlist: { create: { name: `${name} Playlist`, creator: { connect: { id: creatorId } } } },
      },
      include: { users: true, playlist: { include: { tracks: true } } },
    });
  });
}

/**
 * Mirrors `DatabaseService.updateSessionPlaylist` (backend/src/services/database.service.ts):
 * the session's playlist tracks are `set` to exactly `trackIds`.
 */
export async function updateSessionPlaylist(prisma, sessionId, trackIds) {
  return prisma.$transaction(async (tx) => {
    const session = await tx.groupSession.findUnique({
      where: { id: sessionId }, include: { playlist: { include: { tracks: true } }, users: true },
    });
    if (!session) throw new Error('session not found');
    if (!session.playlist) throw new Error('session has no playlist');
    return tx.playlist.update({
      where: { id: session.playlist.id },
      data: { tracks: { set: trackIds.map((id) => ({ id })) } },
      include: { tracks: true },
    });
  });
}

/**
 * Mirrors `GroupService.addTracksToPlaylist` (backend/src/services/group.service.ts):
 * the tracks are `connect`ed to the session's playlist.
 */
export async function addTracksToPlaylist(prisma, sessionId, trackIds) {
  const session = await prisma.groupSession.findUnique({ where: { id: sessionId }, include: { playlist: true, users: true } });
  if (!session?.playlist) throw new Error('session or playlist not found');
  return prisma.playlist.update({
    where: { id: session.playlist.id },
    data: { tracks: { connect: trackIds.map((id) => ({ id })) } },
    include: { tracks: { include: { audioFeatures: true } } },
  });
}

/**
 * Mirrors `GroupService.removeTracksFromPlaylist` (backend/src/services/group.service.ts):
 * the tracks are `disconnect`ed from the session's playlist.
 */
export async function removeTracksFromPlaylist(prisma, sessionId, trackIds) {
  const session = await prisma.groupSession.findUnique({ where: { id: sessionId }, include: { playlist: true } });
  if (!session?.playlist) throw new Error('session or playlist not found');
  return prisma.playlist.update({
    where: { id: session.playlist.id },
    data: { tracks: { disconnect: trackIds.map((id) => ({ id })) } },
    include: { tracks: true },
  });
}

/**
 * Mirrors `DatabaseService.addParticipantToSession` (backend/src/services/database.service.ts):
 * the user is `connect`ed to the session's members.
 */
export async function addParticipantToSession(prisma, sessionId, userId) {
  return prisma.groupSession.update({
    where: { id: sessionId },
    data: { users: { connect: { id: userId } } },
    include: { users: true, playlist: { include: { tracks: true } } },
  });
}

/**
 * Mirrors `DatabaseService.removeParticipantFromSession`
 * (backend/src/services/database.service.ts): the user is `disconnect`ed.
 */
export async function removeParticipantFromSession(prisma, sessionId, userId) {
  return prisma.groupSession.update({
    where: { id: sessionId },
    data: { users: { disconnect: { id: userId } } },
    include: { users: true, playlist: { include: { tracks: true } } },
  });
}

/**
 * Mirrors `GroupService.updateSessionStatus` (backend/src/services/group.service.ts):
 * `groupSession.update` of `active`.
 */
export async function updateSessionStatus(prisma, sessionId, active) {
  return prisma.groupSession.update({
    where: { id: sessionId },
    data: { active },
    include: { users: true, playlist: { include: { tracks: true } } },
  });
}

/**
 * Mirrors `DatabaseService.deleteGroupSession` (backend/src/services/database.service.ts):
 * in one transaction, find the session, then `groupSession.delete` it (the
 * playlist stays, its sessionId set to NULL by the foreign key).
 */
export async function deleteGroupSession(prisma, sessionId) {
  return prisma.$transaction(async (tx) => {
    const session = await tx.groupSession.findUnique({ where: { id: sessionId }, include: { playlist: true } });
    if (!session) throw new Error('session not found');
    return tx.groupSession.delete({ where: { id: sessionId }, include: { playlist: true, users: true } });
  });
}

/**
 * Mirrors `DatabaseService.findGroupSession` (backend/src/services/database.service.ts):
 * the session with its members (and their preferences) and its playlist's tracks.
 */
export async function findGroupSession(prisma, sessionId) {
  return prisma.groupSession.findUnique({
    where: { id: sessionId },
    include: { users: { include: { preferences: true } }, playlist: { include: { tracks: true } } },
  });
}

/**
 * Mirrors `DatabaseService.findPublicSessions` (backend/src/services/database.service.ts):
 * the newest sessions with members and playlist tracks.
 */
export async function findPublicSessions(prisma, limit = 10) {
  return prisma.groupSession.findMany({
    take: limit,
    orderBy: { createdAt: 'desc' },
    include: { users: true, playlist: { include: { tracks: true } } },
  });
}

/** The interaction kinds the old app's recommenders read. */
export const RECOMMENDER_KINDS = ['like', 'play', 'add_to_playlist', 'skip', 'dislike', 'save', 'share'];

/**
 * Mirrors `ContentFilterService.getUserInteractions`
 * (backend/src/services/content-filter.service.ts): a user's interactions of
 * the kinds the recommenders weigh, one per track.
 */
export async function getUserInteractionTracks(prisma, userId) {
  return prisma.trackInteraction.findMany({
    where: { userId, type: { in: RECOMMENDER_KINDS } },
    select: { trackId: true },
    distinct: ['trackId'],
  });
}

/**
 * Mirrors the reads of `CollaborativeFilterService` and `RecommendationService`
 * (backend/src/services/collaborative-filter.service.ts,
 * recommendation.service.ts): every interaction of a user.
 */
export async function userInteractions(prisma, userId) {
  return prisma.trackInteraction.findMany({ where: { userId } });
}

/**
 * Mirrors `GroupService.getPlaylistHistory` (backend/src/services/group.service.ts):
 * a session playlist's PlaylistUpdate rows, newest first by `timestamp`. The
 * old app writes this read as raw SQL (`ORDER BY timestamp DESC`); here both
 * that form and Prisma's `orderBy: {timestamp: 'desc'}` are offered.
 */
export async function getPlaylistHistory(prisma, sessionId, limit = 50) {
  const session = await prisma.groupSession.findUnique({ where: { id: sessionId }, include: { playlist: true } });
  if (!session?.playlist) throw new Error('session or playlist not found');
  return prisma.$queryRaw`
    SELECT "id", "type", "trackId", "userId", "timestamp" FROM "PlaylistUpdate"
    WHERE "playlistId" = ${session.playlist.id}
    ORDER BY "timestamp" DESC
    LIMIT ${limit}`;
}

export async function playlistUpdatesNewestFirst(prisma, playlistId) {
  return prisma.playlistUpdate.findMany({ where: { playlistId }, orderBy: { timestamp: 'desc' } });
}
