-- The hub's own change log, beside "PlaylistUpdate" (issue 15). One version
-- sequence per session covers every change, but "PlaylistUpdate" keeps what
-- the old app expects there (add/remove/reorder a member made through the
-- hub); every other versioned change — made outside the hub (the old app
-- linking tracks, adding members), and the party's ops to come — is logged
-- here. A resume replays both logs in version order.
CREATE TABLE hub_event (
    session_id TEXT NOT NULL REFERENCES "GroupSession"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    entry_id TEXT,
    -- No foreign key: the log must not keep the old app from deleting a
    -- track; a replay that cannot show one falls back to a snapshot.
    track_id TEXT,
    -- The member who made it; NULL for a change made outside the hub.
    user_id TEXT,
    from_index INTEGER,
    to_index INTEGER,
    detail JSONB,
    req TEXT,
    at TIMESTAMP(3) NOT NULL,
    CONSTRAINT hub_event_pkey PRIMARY KEY (session_id, version)
);
CREATE UNIQUE INDEX hub_event_req_key ON hub_event (session_id, user_id, req) WHERE req IS NOT NULL;

-- The old app's changes to a session, announced to every hub so a live
-- session reflects them within a second: its members, its playlist's
-- tracks, `active`, and the session's deletion. Writes by a hub (its
-- connections say application_name 'audotics-hub') are not announced: the
-- hub made them itself. The payload is the session id.
CREATE OR REPLACE FUNCTION hub.session_changed() RETURNS trigger AS $$
DECLARE
    sid text;
BEGIN
    IF current_setting('application_name', true) = 'audotics-hub' THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = '_PlaylistToTrack' THEN
        SELECT "sessionId" INTO sid FROM "Playlist"
         WHERE "id" = CASE WHEN TG_OP = 'DELETE' THEN OLD."A" ELSE NEW."A" END;
    ELSIF TG_TABLE_NAME = '_GroupSessionToUser' THEN
        sid := CASE WHEN TG_OP = 'DELETE' THEN OLD."A" ELSE NEW."A" END;
    ELSIF TG_TABLE_NAME = 'GroupSession' THEN
        sid := CASE WHEN TG_OP = 'DELETE' THEN OLD."id" ELSE NEW."id" END;
    ELSIF TG_TABLE_NAME = 'Playlist' THEN
        -- Deleted, or moved off its session: the session it belonged to.
        sid := OLD."sessionId";
    END IF;
    IF sid IS NOT NULL THEN
        PERFORM pg_notify('hub_session_changed', sid);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS hub_session_changed ON "_PlaylistToTrack";
CREATE TRIGGER hub_session_changed AFTER INSERT OR DELETE ON "_PlaylistToTrack"
    FOR EACH ROW EXECUTE FUNCTION hub.session_changed();
DROP TRIGGER IF EXISTS hub_session_changed ON "_GroupSessionToUser";
CREATE TRIGGER hub_session_changed AFTER INSERT OR DELETE ON "_GroupSessionToUser"
    FOR EACH ROW EXECUTE FUNCTION hub.session_changed();
DROP TRIGGER IF EXISTS hub_session_changed ON "GroupSession";
CREATE TRIGGER hub_session_changed AFTER UPDATE OF "active" OR DELETE ON "GroupSession"
    FOR EACH ROW EXECUTE FUNCTION hub.session_changed();
DROP TRIGGER IF EXISTS hub_session_changed ON "Playlist";
CREATE TRIGGER hub_session_changed AFTER UPDATE OF "sessionId" OR DELETE ON "Playlist"
    FOR EACH ROW EXECUTE FUNCTION hub.session_changed();
