-- Prisma's layout, exactly, on every database the hub migrates (issue 15).
-- Append-only: a database made by an earlier hub, or adopted from the old
-- app, is brought to the same end state.

-- 1. Prisma makes these indexes btree (its default, even on array columns).
-- Earlier hubs made them GIN; only a GIN (or other non-btree) one is
-- replaced, so a database Prisma made is untouched.
DO $$
DECLARE
    idx text;
BEGIN
    FOREACH idx IN ARRAY ARRAY['Track_artists_idx', 'UserPreference_topArtists_idx', 'UserPreference_genres_idx'] LOOP
        IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                   WHERE c.relname = idx AND c.relkind = 'i' AND a.amname <> 'btree'
                     AND c.relnamespace = current_schema()::regnamespace) THEN
            EXECUTE format('DROP INDEX %I', idx);
        END IF;
    END LOOP;
END $$;
CREATE INDEX IF NOT EXISTS "Track_artists_idx" ON "Track"("artists");
CREATE INDEX IF NOT EXISTS "UserPreference_topArtists_idx" ON "UserPreference"("topArtists");
CREATE INDEX IF NOT EXISTS "UserPreference_genres_idx" ON "UserPreference"("genres");

-- 2. No default Prisma does not set: `lastUpdated` is `@updatedAt` (the
-- client sets it), so Prisma gives it none.
ALTER TABLE "UserPreference" ALTER COLUMN "lastUpdated" DROP DEFAULT;

-- 3. The hub's own indexes on Prisma's tables carry `hub_` names.
ALTER INDEX IF EXISTS "PlaylistUpdate_hub_version_key" RENAME TO hub_playlist_update_version_key;
ALTER INDEX IF EXISTS "PlaylistUpdate_hub_req_key" RENAME TO hub_playlist_update_req_key;
ALTER INDEX IF EXISTS "TrackInteraction_hub_req_key" RENAME TO hub_track_interaction_req_key;

-- 4. A database without `_prisma_migrations` (the hub made Prisma's tables)
-- records the old app's six migrations as applied, the way
-- `prisma migrate deploy` records them (checksum: SHA-256 of each
-- migration.sql), so the old app's deploy finds nothing pending instead of
-- refusing a non-empty schema (P3005). A database Prisma made keeps its own.
DO $$
BEGIN
    IF to_regclass('_prisma_migrations') IS NULL THEN
        CREATE TABLE "_prisma_migrations" (
            "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
            "checksum"              VARCHAR(64) NOT NULL,
            "finished_at"           TIMESTAMPTZ,
            "migration_name"        VARCHAR(255) NOT NULL,
            "logs"                  TEXT,
            "rolled_back_at"        TIMESTAMPTZ,
            "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
            "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO "_prisma_migrations"
            ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at", "applied_steps_count")
        SELECT gen_random_uuid()::text, m.checksum, now(), m.name, NULL, NULL, now(), 1
        FROM (VALUES
            ('20241216100433_initial', '16abe1862e0784273977574e1074de78e5298bcf44dd038b5e4b74ff2ae8520a'),
            ('20250217194937_add_ml_models', '81a93f4c2fb74fc0c5e9be7c0973640778ea1c7d6ef61661f5d66fddeefa1b21'),
            ('20250217202614_update_ml_schema', '2f471c2ebc01828bb19eaf2998449f9efb943ffca76acbf4e53a86bd20936380'),
            ('20250218135259_add_playlist_update_tracking', '8e93ac04ae580ee7f28c5f6f525abfafadf5ba7b486ab5d3cb11adadf0f9b124'),
            ('20250303194437_add_spotify_auth_fields', '0cfc696087145fb21e35ff55e2ceb2196cccead571867f5a0f657bc71fbfad36'),
            ('20250303195032_mig1', 'd7d2a0b0c70ef4d4615e58b665f97e0a5122d640b6a130fb2e35fa565fe62fb1')
        ) AS m(name, checksum);
    END IF;
END $$;
