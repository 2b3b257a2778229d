-- Joining (issue 17): short join codes for sessions and guest accounts.
-- Hub-owned tables only; the Prisma app's tables are not touched.

-- One join code per session: six characters of the alphabet in
-- `db::joins::ALPHABET` (no look-alikes, no vowels). Made with every session
-- the hub creates, and on first request for a session the old app made.
-- Codes are never reused: an ended session keeps its code (which no longer
-- resolves), a deleted one takes it along.
CREATE TABLE IF NOT EXISTS hub_join_code (
    code TEXT COLLATE "C" PRIMARY KEY CHECK (code ~ '^[34679CDFGHJKMNPQRTVWXY]{6}$'),
    session_id TEXT NOT NULL UNIQUE REFERENCES "GroupSession"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Users who joined with just a name: a normal "User" row (no password, a
-- synthetic email under `guest.audotics.invalid`), marked here until the
-- guest claims the account with an email and password.
CREATE TABLE IF NOT EXISTS hub_guest (
    user_id TEXT PRIMARY KEY REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
