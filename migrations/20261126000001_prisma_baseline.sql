-- The ten tables of the existing Audotics (Prisma) app, exactly as Prisma lays
-- them out. Every statement is idempotent so that the hub can ADOPT a database
-- the Prisma app already created: existing tables, indexes, constraints and
-- rows are left untouched; on an empty database this creates them.

CREATE TABLE IF NOT EXISTS "User" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "password" TEXT,
    "avatar" TEXT,
    "spotifyId" TEXT,
    "spotifyAccessToken" TEXT,
    "spotifyRefreshToken" TEXT,
    "spotifyTokenExpiry" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "UserPreference" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "topTracks" TEXT[],
    "topArtists" TEXT[],
    "genres" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "features" JSONB,
    "lastUpdated" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "UserPreference_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "GroupSession" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "active" BOOLEAN NOT NULL DEFAULT true,
    CONSTRAINT "GroupSession_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "Playlist" (
    "id" TEXT NOT NULL,
    "spotifyId" TEXT,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "creatorId" TEXT NOT NULL,
    "sessionId" TEXT,
    CONSTRAINT "Playlist_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "Track" (
    "id" TEXT NOT NULL,
    "spotifyId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "artists" TEXT[],
    "album" TEXT NOT NULL,
    "popularity" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Track_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "TrackFeatures" (
    "id" TEXT NOT NULL,
    "trackId" TEXT NOT NULL,
    "danceability" DOUBLE PRECISION NOT NULL,
    "energy" DOUBLE PRECISION NOT NULL,
    "key" INTEGER NOT NULL,
    "loudness" DOUBLE PRECISION NOT NULL,
    "mode" INTEGER NOT NULL,
    "speechiness" DOUBLE PRECISION NOT NULL,
    "acousticness" DOUBLE PRECISION NOT NULL,
    "instrumentalness" DOUBLE PRECISION NOT NULL,
    "liveness" DOUBLE PRECISION NOT NULL,
    "valence" DOUBLE PRECISION NOT NULL,
    "tempo" DOUBLE PRECISION NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "TrackFeatures_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "TrackInteraction" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "trackId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "timestamp" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "TrackInteraction_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "PlaylistUpdate" (
    "id" TEXT NOT NULL,
    "playlistId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "trackId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "timestamp" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "PlaylistUpdate_pkey" PRIMARY KEY ("id")
);

CREATE TABLE IF NOT EXISTS "_GroupSessionToUser" (
    "A" TEXT NOT NULL,
    "B" TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS "_PlaylistToTrack" (
    "A" TEXT NOT NULL,
    "B" TEXT NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS "User_email_key" ON "User"("email");
CREATE INDEX IF NOT EXISTS "User_email_idx" ON "User"("email");
CREATE INDEX IF NOT EXISTS "User_name_idx" ON "User"("name");
CREATE INDEX IF NOT EXISTS "User_spotifyId_idx" ON "User"("spotifyId");
CREATE UNIQUE INDEX IF NOT EXISTS "UserPreference_userId_key" ON "UserPreference"("userId");
CREATE INDEX IF NOT EXISTS "UserPreference_userId_idx" ON "UserPreference"("userId");
CREATE INDEX IF NOT EXISTS "UserPreference_topArtists_idx" ON "UserPreference" USING GIN ("topArtists");
CREATE INDEX IF NOT EXISTS "UserPreference_genres_idx" ON "UserPreference" USING GIN ("genres");
CREATE INDEX IF NOT EXISTS "GroupSession_active_idx" ON "GroupSession"("active");
CREATE INDEX IF NOT EXISTS "GroupSession_createdAt_idx" ON "GroupSession"("createdAt");
CREATE INDEX IF NOT EXISTS "GroupSession_updatedAt_idx" ON "GroupSession"("updatedAt");
CREATE UNIQUE INDEX IF NOT EXISTS "Playlist_spotifyId_key" ON "Playlist"("spotifyId");
CREATE UNIQUE INDEX IF NOT EXISTS "Playlist_sessionId_key" ON "Playlist"("sessionId");
CREATE INDEX IF NOT EXISTS "Playlist_creatorId_idx" ON "Playlist"("creatorId");
CREATE INDEX IF NOT EXISTS "Playlist_sessionId_idx" ON "Playlist"("sessionId");
CREATE INDEX IF NOT EXISTS "Playlist_createdAt_idx" ON "Playlist"("createdAt");
CREATE UNIQUE INDEX IF NOT EXISTS "Track_spotifyId_key" ON "Track"("spotifyId");
CREATE INDEX IF NOT EXISTS "Track_spotifyId_idx" ON "Track"("spotifyId");
CREATE INDEX IF NOT EXISTS "Track_artists_idx" ON "Track" USING GIN ("artists");
CREATE UNIQUE INDEX IF NOT EXISTS "TrackFeatures_trackId_key" ON "TrackFeatures"("trackId");
CREATE INDEX IF NOT EXISTS "TrackFeatures_trackId_idx" ON "TrackFeatures"("trackId");
CREATE UNIQUE INDEX IF NOT EXISTS "TrackInteraction_userId_trackId_type_timestamp_key" ON "TrackInteraction"("userId", "trackId", "type", "timestamp");
CREATE INDEX IF NOT EXISTS "PlaylistUpdate_playlistId_timestamp_idx" ON "PlaylistUpdate"("playlistId", "timestamp");
CREATE UNIQUE INDEX IF NOT EXISTS "_GroupSessionToUser_AB_unique" ON "_GroupSessionToUser"("A", "B");
CREATE INDEX IF NOT EXISTS "_GroupSessionToUser_B_index" ON "_GroupSessionToUser"("B");
CREATE UNIQUE INDEX IF NOT EXISTS "_PlaylistToTrack_AB_unique" ON "_PlaylistToTrack"("A", "B");
CREATE INDEX IF NOT EXISTS "_PlaylistToTrack_B_index" ON "_PlaylistToTrack"("B");

-- Foreign keys: PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS, so each one is
-- added only when no constraint of that name exists on the table.
CREATE FUNCTION pg_temp.add_fk(tbl TEXT, con TEXT, ddl TEXT) RETURNS void AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.conname = con AND t.relname = tbl AND n.nspname = current_schema()
    ) THEN
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', tbl, con, ddl);
    END IF;
END $$ LANGUAGE plpgsql;

SELECT pg_temp.add_fk('UserPreference', 'UserPreference_userId_fkey', 'FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE');
SELECT pg_temp.add_fk('Playlist', 'Playlist_creatorId_fkey', 'FOREIGN KEY ("creatorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE');
SELECT pg_temp.add_fk('Playlist', 'Playlist_sessionId_fkey', 'FOREIGN KEY ("sessionId") REFERENCES "GroupSession"("id") ON DELETE SET NULL ON UPDATE CASCADE');
SELECT pg_temp.add_fk('TrackFeatures', 'TrackFeatures_trackId_fkey', 'FOREIGN KEY ("trackId") REFERENCES "Track"("id") ON DELETE RESTRICT ON UPDATE CASCADE');
SELECT pg_temp.add_fk('TrackInteraction', 'TrackInteraction_userId_fkey', 'FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE');
SELECT pg_temp.add_fk('TrackInteraction', 'TrackInteraction_trackId_fkey', 'FOREIGN KEY ("trackId") REFERENCES "Track"("id") ON DELETE RESTRICT ON UPDATE CASCADE');
SELECT pg_temp.add_fk('PlaylistUpdate', 'PlaylistUpdate_playlistId_fkey', 'FOREIGN KEY ("playlistId") REFERENCES "Playlist"("id") ON DELETE RESTRICT ON UPDATE CASCADE');
SELECT pg_temp.add_fk('PlaylistUpdate', 'PlaylistUpdate_userId_fkey', 'FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE');
SELECT pg_temp.add_fk('_GroupSessionToUser', '_GroupSessionToUser_A_fkey', 'FOREIGN KEY ("A") REFERENCES "GroupSession"("id") ON DELETE CASCADE ON UPDATE CASCADE');
SELECT pg_temp.add_fk('_GroupSessionToUser', '_GroupSessionToUser_B_fkey', 'FOREIGN KEY ("B") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE');
SELECT pg_temp.add_fk('_PlaylistToTrack', '_PlaylistToTrack_A_fkey', 'FOREIGN KEY ("A") REFERENCES "Playlist"("id") ON DELETE CASCADE ON UPDATE CASCADE');
SELECT pg_temp.add_fk('_PlaylistToTrack', '_PlaylistToTrack_B_fkey', 'FOREIGN KEY ("B") REFERENCES "Track"("id") ON DELETE CASCADE ON UPDATE CASCADE');

DROP FUNCTION pg_temp.add_fk(TEXT, TEXT, TEXT);
