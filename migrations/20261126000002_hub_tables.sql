-- The hub's own state. Only additions: hub-owned tables (hub_*) and nullable
-- columns on Prisma tables, so the Prisma app keeps working on this database.

-- Opaque bearer tokens, stored only as SHA-256 hashes.
CREATE TABLE hub_auth_token (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX hub_auth_token_user_idx ON hub_auth_token (user_id);

-- Per-session protocol version: the number of the last applied queue change.
CREATE TABLE hub_session (
    session_id TEXT PRIMARY KEY REFERENCES "GroupSession"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    version BIGINT NOT NULL DEFAULT 0 CHECK (version >= 0),
    -- Group commits so far: lets the hub learn whether a COMMIT whose reply
    -- was lost happened.
    commits BIGINT NOT NULL DEFAULT 0
);

-- The live queue. `position` is a fractional-index key (byte order = queue
-- order), so a move rewrites one row instead of renumbering the playlist.
CREATE TABLE hub_queue_entry (
    entry_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES "GroupSession"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    track_id TEXT NOT NULL REFERENCES "Track"("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    added_by TEXT NOT NULL REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    added_at TIMESTAMP(3) NOT NULL,
    position TEXT COLLATE "C" NOT NULL,
    -- Deferred: one commit may hand a key freed by one entry to another.
    CONSTRAINT hub_queue_entry_position_key UNIQUE (session_id, position) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX hub_queue_entry_track_idx ON hub_queue_entry (session_id, track_id);

-- The PlaylistUpdate log doubles as the protocol's change log: version, entry,
-- indices and the client's request id (exactly-once) live in nullable columns.
ALTER TABLE "PlaylistUpdate"
    ADD COLUMN IF NOT EXISTS "hubVersion" BIGINT,
    ADD COLUMN IF NOT EXISTS "hubEntryId" TEXT,
    ADD COLUMN IF NOT EXISTS "hubFromIndex" INTEGER,
    ADD COLUMN IF NOT EXISTS "hubToIndex" INTEGER,
    ADD COLUMN IF NOT EXISTS "hubReq" TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS "PlaylistUpdate_hub_version_key"
    ON "PlaylistUpdate" ("playlistId", "hubVersion") WHERE "hubVersion" IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS "PlaylistUpdate_hub_req_key"
    ON "PlaylistUpdate" ("playlistId", "userId", "hubReq") WHERE "hubReq" IS NOT NULL;

-- Reactions remember their request id and the session version they were acked at.
ALTER TABLE "TrackInteraction"
    ADD COLUMN IF NOT EXISTS "hubSessionId" TEXT,
    ADD COLUMN IF NOT EXISTS "hubReq" TEXT,
    ADD COLUMN IF NOT EXISTS "hubVersion" BIGINT;
CREATE UNIQUE INDEX IF NOT EXISTS "TrackInteraction_hub_req_key"
    ON "TrackInteraction" ("hubSessionId", "userId", "hubReq") WHERE "hubReq" IS NOT NULL;

