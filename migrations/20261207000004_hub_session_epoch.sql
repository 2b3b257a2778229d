-- Ownership epochs (issue 16). Whoever loads a session to serve it — a
-- single hub, or the node of a cluster that holds the session's lease —
-- bumps its epoch first, and every group commit names the epoch it was made
-- under. A commit whose epoch has moved on (a deposed owner's) changes
-- nothing: `hub.fence` fails the whole statement with SQLSTATE HB409.
ALTER TABLE hub_session ADD COLUMN IF NOT EXISTS epoch BIGINT NOT NULL DEFAULT 0;

-- `got` sessions' counters were updated by a commit of `want` sessions.
CREATE OR REPLACE FUNCTION hub.fence(got BIGINT, want BIGINT) RETURNS INTEGER
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF got <> want THEN
        RAISE EXCEPTION 'deposed: the session''s epoch has moved on'
            USING ERRCODE = 'HB409';
    END IF;
    RETURN 1;
END
$$;
