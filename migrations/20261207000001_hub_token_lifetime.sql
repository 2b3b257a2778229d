-- Token lifetime and revocation (hub-owned table only).
-- A token expires after a stretch of disuse (sliding expiry): the hub stamps
-- its last use at most once an hour.
ALTER TABLE hub_auth_token
    ADD COLUMN IF NOT EXISTS last_used_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- A token that goes (logout, revoke-all, its user deleted by either app:
-- the foreign key cascades) is announced to every hub, which closes the
-- WebSockets it opened with 4001. Prisma's schema diff does not look at
-- triggers, and the hub's trigger functions live in their own schema `hub`,
-- so the Prisma schema holds no function it did not make.
CREATE SCHEMA IF NOT EXISTS hub;

CREATE OR REPLACE FUNCTION hub.token_revoked() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('hub_token_revoked', OLD.token_hash);
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS hub_token_revoked ON hub_auth_token;
CREATE TRIGGER hub_token_revoked AFTER DELETE ON hub_auth_token
    FOR EACH ROW EXECUTE FUNCTION hub.token_revoked();
