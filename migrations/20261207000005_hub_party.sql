-- The listening party (issue 17). Only additions: hub-owned tables and
-- columns; the old app reads what it always read ("TrackInteraction" play
-- and skip rows, "PlaylistUpdate" add/remove/reorder, "_PlaylistToTrack",
-- which now also holds what is playing and what was played).

-- What the hub knows of a track beyond the Prisma schema.
CREATE TABLE hub_track (
    track_id TEXT PRIMARY KEY REFERENCES "Track"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    duration_ms INTEGER CHECK (duration_ms > 0),
    cover_url TEXT
);

-- A queued entry's votes (user ids), its fair-order round, and when a host
-- pinned it to play next.
ALTER TABLE hub_queue_entry
    ADD COLUMN IF NOT EXISTS votes TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS round BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS pinned_at TIMESTAMP(3);

-- The party's state besides the queue: settings, host and co-hosts, bans,
-- what is playing, skip votes, fair-order rounds (JSON the hub writes; NULL:
-- a session that never had any).
ALTER TABLE hub_session ADD COLUMN IF NOT EXISTS party JSONB;

-- Every entry that was played, in the order they stopped.
CREATE TABLE hub_played (
    session_id TEXT NOT NULL REFERENCES "GroupSession"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    -- The session's version when it stopped playing.
    version BIGINT NOT NULL,
    entry_id TEXT NOT NULL,
    -- No foreign key: the log must not keep the old app from deleting a track.
    track_id TEXT NOT NULL,
    added_by TEXT,
    added_at TIMESTAMP(3) NOT NULL,
    started_at TIMESTAMP(3) NOT NULL,
    ended_at TIMESTAMP(3) NOT NULL,
    skipped BOOLEAN NOT NULL,
    CONSTRAINT hub_played_pkey PRIMARY KEY (session_id, version)
);
