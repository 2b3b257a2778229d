//! The hub's migrations against the real Prisma app's schema: on an empty
//! database they lay out Prisma's ten tables exactly (plus only hub-owned
//! additions), and on a database the Prisma app already made they adopt it
//! without touching a row.

use std::collections::{BTreeMap, BTreeSet};

use audotics_client::{LoginBody, RegisterBody};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::*;

/// The Prisma app's DDL, as its own migrations leave a database.
const PRISMA_BASELINE: &str = include_str!("../fixtures/prisma_baseline.sql");

const PRISMA_TABLES: [&str; 10] = [
    "User",
    "UserPreference",
    "GroupSession",
    "Playlist",
    "Track",
    "TrackFeatures",
    "TrackInteraction",
    "PlaylistUpdate",
    "_GroupSessionToUser",
    "_PlaylistToTrack",
];

/// sqlx's own bookkeeping table.
const SQLX_MIGRATIONS: &str = "_sqlx_migrations";

async fn pool(url: &str) -> PgPool {
    audotics_hub::db::connect(url, 2).await.expect("connect")
}

/// A fresh database laid out by the Prisma app's own DDL.
async fn prisma_database() -> (String, PgPool) {
    let url = fresh_database().await;
    let db = pool(&url).await;
    sqlx::raw_sql(PRISMA_BASELINE)
        .execute(&db)
        .await
        .expect("apply the Prisma baseline fixture");
    (url, db)
}

/// A fresh database laid out by our migrations.
async fn migrated_database() -> (String, PgPool) {
    let url = fresh_database().await;
    let db = pool(&url).await;
    audotics_hub::db::migrate(&db).await.expect("migrate");
    (url, db)
}

/// One schema fact: (kind, table, object name) → description.
type Facts = BTreeMap<(String, String, String), String>;

/// (table, column, position, type, not null, default, collation)
type ColumnRow = (
    String,
    String,
    i16,
    String,
    bool,
    Option<String>,
    Option<String>,
);
/// (table, index, access method, unique, primary, columns, predicate, definition)
type IndexRow = (
    String,
    String,
    String,
    bool,
    bool,
    Vec<String>,
    Option<String>,
    String,
);
/// (table, constraint, kind, columns, referenced table, referenced columns,
/// on delete, on update, definition)
type ConstraintRow = (
    String,
    String,
    String,
    Vec<String>,
    Option<String>,
    Vec<String>,
    String,
    String,
    String,
);

/// Columns, indexes (all and unique), primary keys, foreign keys and every
/// other constraint of the Prisma tables, read from the catalogs.
async fn schema_facts(db: &PgPool) -> Facts {
    let tables: Vec<String> = PRISMA_TABLES.iter().map(|s| s.to_string()).collect();
    let mut facts = Facts::new();

    let cols: Vec<ColumnRow> = sqlx::query_as(
        r#"SELECT c.relname::text, a.attname::text, a.attnum, format_type(a.atttypid, a.atttypmod),
                      a.attnotnull, pg_get_expr(d.adbin, d.adrelid), co.collname::text
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               LEFT JOIN pg_collation co ON co.oid = a.attcollation
               WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0
                 AND NOT a.attisdropped AND c.relname = ANY($1)"#,
    )
    .bind(&tables)
    .fetch_all(db)
    .await
    .unwrap();
    for (table, col, _pos, ty, notnull, default, coll) in cols {
        facts.insert(
            ("column".into(), table, col),
            format!(
                "type={ty} nullable={} default={} collation={}",
                !notnull,
                default.unwrap_or_else(|| "-".into()),
                coll.unwrap_or_else(|| "-".into())
            ),
        );
    }

    let idx: Vec<IndexRow> =
        sqlx::query_as(
            r#"SELECT t.relname::text, i.relname::text, am.amname::text, ix.indisunique, ix.indisprimary,
                      ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true)
                            FROM generate_series(1, ix.indnatts) k ORDER BY k),
                      pg_get_expr(ix.indpred, ix.indrelid), pg_get_indexdef(ix.indexrelid)
               FROM pg_index ix
               JOIN pg_class i ON i.oid = ix.indexrelid
               JOIN pg_class t ON t.oid = ix.indrelid
               JOIN pg_am am ON am.oid = i.relam
               JOIN pg_namespace n ON n.oid = t.relnamespace
               WHERE n.nspname = current_schema() AND t.relname = ANY($1)"#,
        )
        .bind(&tables)
        .fetch_all(db)
        .await
        .unwrap();
    for (table, name, method, unique, primary, cols, pred, def) in idx {
        if unique {
            facts.insert(
                ("unique".into(), table.clone(), name.clone()),
                format!(
                    "columns={cols:?} where={}",
                    pred.clone().unwrap_or_default()
                ),
            );
        }
        facts.insert(
            ("index".into(), table, name),
            format!(
                "method={method} unique={unique} primary={primary} columns={cols:?} where={} def={def}",
                pred.unwrap_or_default()
            ),
        );
    }

    let cons: Vec<ConstraintRow> =
        sqlx::query_as(
            r#"SELECT t.relname::text, c.conname::text, c.contype::text,
                      ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
                            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.ord),
                      rt.relname::text,
                      ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, ord)
                            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.ord),
                      CASE c.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'
                           WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE '-' END,
                      CASE c.confupdtype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'
                           WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE '-' END,
                      pg_get_constraintdef(c.oid)
               FROM pg_constraint c
               JOIN pg_class t ON t.oid = c.conrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
               LEFT JOIN pg_class rt ON rt.oid = c.confrelid
               WHERE n.nspname = current_schema() AND t.relname = ANY($1)"#,
        )
        .bind(&tables)
        .fetch_all(db)
        .await
        .unwrap();
    for (table, name, kind, cols, ref_table, ref_cols, on_delete, on_update, def) in cons {
        let fact = match kind.as_str() {
            "f" => (
                "foreign_key",
                format!(
                    "columns={cols:?} references={}{ref_cols:?} on_delete={on_delete} on_update={on_update}",
                    ref_table.unwrap_or_default()
                ),
            ),
            "p" => ("primary_key", format!("columns={cols:?}")),
            other => ("constraint", format!("kind={other} columns={cols:?} def={def}")),
        };
        facts.insert((fact.0.into(), table, name), fact.1);
    }
    facts
}

fn fact<'a>(facts: &'a Facts, kind: &str, table: &str, name: &str) -> &'a str {
    facts
        .get(&(kind.into(), table.into(), name.into()))
        .unwrap_or_else(|| panic!("no {kind} {table}.{name}"))
}

/// Names of the ordinary tables in the current schema.
async fn table_names(db: &PgPool) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(
        r#"SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"#,
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn is_hub_name(name: &str) -> bool {
    name.starts_with("hub_")
}

/// The fixture is what the brief says the Prisma app has: spot-check the
/// facts that matter, so a broken fixture cannot make the comparison vacuous.
fn assert_prisma_facts(a: &Facts) {
    let tables: BTreeSet<&str> = a.keys().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(tables, PRISMA_TABLES.iter().copied().collect());
    assert_eq!(
        fact(a, "column", "User", "createdAt"),
        "type=timestamp(3) without time zone nullable=false default=CURRENT_TIMESTAMP collation=-"
    );
    assert_eq!(
        fact(a, "column", "User", "updatedAt"),
        "type=timestamp(3) without time zone nullable=false default=- collation=-"
    );
    assert_eq!(
        fact(a, "column", "User", "password"),
        "type=text nullable=true default=- collation=default"
    );
    assert_eq!(
        fact(a, "column", "User", "id"),
        "type=text nullable=false default=- collation=default"
    );
    assert_eq!(
        fact(a, "column", "UserPreference", "genres"),
        "type=text[] nullable=true default=ARRAY[]::text[] collation=default"
    );
    assert_eq!(
        fact(a, "column", "UserPreference", "features"),
        "type=jsonb nullable=true default=- collation=-"
    );
    assert_eq!(
        fact(a, "column", "TrackFeatures", "danceability"),
        "type=double precision nullable=false default=- collation=-"
    );
    assert_eq!(
        fact(a, "column", "Track", "popularity"),
        "type=integer nullable=false default=0 collation=-"
    );
    assert_eq!(
        fact(a, "column", "GroupSession", "active"),
        "type=boolean nullable=false default=true collation=-"
    );
    let columns = a.keys().filter(|(k, _, _)| k == "column").count();
    assert_eq!(columns, 11 + 7 + 5 + 8 + 8 + 14 + 5 + 6 + 2 + 2);

    // Prisma makes every index btree, array columns included (issue 15:
    // earlier hubs made these three GIN).
    assert!(fact(a, "index", "Track", "Track_artists_idx").starts_with("method=btree "));
    assert!(
        fact(a, "index", "UserPreference", "UserPreference_genres_idx")
            .starts_with("method=btree ")
    );
    assert!(fact(
        a,
        "index",
        "UserPreference",
        "UserPreference_topArtists_idx"
    )
    .starts_with("method=btree "));
    assert_eq!(
        fact(a, "column", "UserPreference", "lastUpdated"),
        "type=timestamp(3) without time zone nullable=false default=- collation=-"
    );
    assert_eq!(
        fact(
            a,
            "unique",
            "TrackInteraction",
            "TrackInteraction_userId_trackId_type_timestamp_key"
        ),
        r#"columns=["\"userId\"", "\"trackId\"", "type", "\"timestamp\""] where="#
    );
    for m2m in ["_GroupSessionToUser", "_PlaylistToTrack"] {
        assert_eq!(
            fact(a, "unique", m2m, &format!("{m2m}_AB_unique")),
            r#"columns=["\"A\"", "\"B\""] where="#
        );
        assert!(fact(a, "index", m2m, &format!("{m2m}_B_index"))
            .starts_with("method=btree unique=false"));
        assert!(
            !a.contains_key(&("primary_key".into(), m2m.into(), format!("{m2m}_AB_pkey"))),
            "the real app's m2m tables have no primary key"
        );
    }
    let uniques: BTreeSet<&str> = a
        .iter()
        .filter(|((k, _, _), _)| k == "unique")
        .map(|((_, _, n), _)| n.as_str())
        .filter(|n| !n.ends_with("_pkey"))
        .collect();
    assert_eq!(
        uniques,
        [
            "User_email_key",
            "UserPreference_userId_key",
            "Playlist_spotifyId_key",
            "Playlist_sessionId_key",
            "Track_spotifyId_key",
            "TrackFeatures_trackId_key",
            "TrackInteraction_userId_trackId_type_timestamp_key",
            "_GroupSessionToUser_AB_unique",
            "_PlaylistToTrack_AB_unique",
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(a.keys().filter(|(k, _, _)| k == "index").count(), 8 + 27);
    assert_eq!(a.keys().filter(|(k, _, _)| k == "primary_key").count(), 8);
    assert_eq!(
        fact(a, "foreign_key", "Playlist", "Playlist_sessionId_fkey"),
        r#"columns=["sessionId"] references=GroupSession["id"] on_delete=SET NULL on_update=CASCADE"#
    );
    assert_eq!(
        fact(a, "foreign_key", "Playlist", "Playlist_creatorId_fkey"),
        r#"columns=["creatorId"] references=User["id"] on_delete=RESTRICT on_update=CASCADE"#
    );
    assert_eq!(
        fact(
            a,
            "foreign_key",
            "_PlaylistToTrack",
            "_PlaylistToTrack_B_fkey"
        ),
        r#"columns=["B"] references=Track["id"] on_delete=CASCADE on_update=CASCADE"#
    );
    assert_eq!(a.keys().filter(|(k, _, _)| k == "foreign_key").count(), 12);
    assert_eq!(a.keys().filter(|(k, _, _)| k == "constraint").count(), 0);
}

#[tokio::test]
async fn migrations_match_the_prisma_schema_fact_by_fact() {
    let ((_, a_db), (_, b_db)) = tokio::join!(prisma_database(), migrated_database());
    let a = schema_facts(&a_db).await;
    let b = schema_facts(&b_db).await;
    assert_prisma_facts(&a);

    let mut problems = Vec::new();
    for (key, want) in &a {
        match b.get(key) {
            None => problems.push(format!("missing {key:?}: {want}")),
            Some(got) if got != want => {
                problems.push(format!("differs {key:?}: prisma `{want}`, ours `{got}`"))
            }
            Some(_) => {}
        }
    }
    let mut extras = Vec::new();
    for (key, got) in &b {
        if a.contains_key(key) {
            continue;
        }
        let (kind, table, name) = key;
        let allowed = match kind.as_str() {
            "column" => name.starts_with("hub") && got.contains(" nullable=true "),
            "index" | "unique" => is_hub_name(name),
            _ => false,
        };
        if allowed {
            extras.push(format!("{kind} {table}.{name}"));
        } else {
            problems.push(format!(
                "extra {key:?}: {got} (not a nullable hub* addition)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "schema differs from Prisma's:\n{}",
        problems.join("\n")
    );

    // The hub's additions that the protocol relies on are there, nullable.
    for (table, col, ty) in [
        ("PlaylistUpdate", "hubVersion", "bigint"),
        ("PlaylistUpdate", "hubEntryId", "text"),
        ("PlaylistUpdate", "hubReq", "text"),
        ("TrackInteraction", "hubReq", "text"),
    ] {
        let f = fact(&b, "column", table, col);
        assert!(
            f.starts_with(&format!("type={ty} nullable=true default=- ")),
            "{table}.{col}: {f}"
        );
    }
    assert!(
        extras
            .iter()
            .any(|e| e == "index PlaylistUpdate.hub_playlist_update_version_key"),
        "{extras:?}"
    );
    assert!(
        fact(
            &b,
            "unique",
            "PlaylistUpdate",
            "hub_playlist_update_version_key"
        )
        .contains("\"hubVersion\" IS NOT NULL"),
        "the version index must be partial so Prisma's own rows (NULL) never collide"
    );
}

#[tokio::test]
async fn migrating_an_empty_database_creates_exactly_prisma_and_hub_tables() {
    let (_, db) = migrated_database().await;
    let tables = table_names(&db).await;
    let mut expected: BTreeSet<String> = PRISMA_TABLES.iter().map(|s| s.to_string()).collect();
    expected.insert(SQLX_MIGRATIONS.into());
    // Recorded the way `prisma migrate deploy` would have, so the old app's
    // deploy finds the schema up to date (issue 15).
    expected.insert("_prisma_migrations".into());
    for t in ["hub_auth_token", "hub_session", "hub_queue_entry"] {
        assert!(tables.contains(t), "missing hub table {t}: {tables:?}");
    }
    let unexpected: Vec<&String> = tables
        .iter()
        .filter(|t| !expected.contains(*t) && !t.starts_with("hub_"))
        .collect();
    assert!(unexpected.is_empty(), "unexpected tables: {unexpected:?}");
    for t in &expected {
        assert!(tables.contains(t), "missing {t}");
    }
    // Nothing else of ours lands in the schema either: no views, sequences,
    // types or functions a Prisma `migrate diff` would flag.
    let others: i64 = sqlx::query_scalar(
        r#"SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm', 'S')
                     AND c.relname NOT LIKE '%sqlx%')
               + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = current_schema())"#,
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(others, 0);
}

/// A database an earlier hub made (GIN indexes, a default on
/// `lastUpdated`, hub indexes under Prisma-style names, no
/// `_prisma_migrations`) is brought to Prisma's layout by the append-only
/// migration, keeping its rows.
#[tokio::test]
async fn a_database_an_earlier_hub_made_is_fixed_in_place() {
    let (_, db) = migrated_database().await;
    // Undo what 20261207000002 did, as an earlier hub left it.
    sqlx::raw_sql(
        r#"DROP INDEX "Track_artists_idx";
           CREATE INDEX "Track_artists_idx" ON "Track" USING GIN ("artists");
           DROP INDEX "UserPreference_genres_idx";
           CREATE INDEX "UserPreference_genres_idx" ON "UserPreference" USING GIN ("genres");
           ALTER TABLE "UserPreference" ALTER COLUMN "lastUpdated" SET DEFAULT CURRENT_TIMESTAMP;
           ALTER INDEX hub_playlist_update_version_key RENAME TO "PlaylistUpdate_hub_version_key";
           DROP TABLE "_prisma_migrations";
           INSERT INTO "User" ("id", "email", "name", "updatedAt") VALUES ('keep-me', 'k@e.ep', 'Keep', now());
           DELETE FROM _sqlx_migrations WHERE version = 20261207000002;"#,
    )
    .execute(&db)
    .await
    .unwrap();
    audotics_hub::db::migrate(&db).await.expect("migrate again");
    let facts = schema_facts(&db).await;
    assert!(fact(&facts, "index", "Track", "Track_artists_idx").starts_with("method=btree "));
    assert!(fact(
        &facts,
        "index",
        "UserPreference",
        "UserPreference_genres_idx"
    )
    .starts_with("method=btree "));
    assert!(fact(&facts, "column", "UserPreference", "lastUpdated").contains(" default=- "));
    assert!(facts.contains_key(&(
        "index".into(),
        "PlaylistUpdate".into(),
        "hub_playlist_update_version_key".into()
    )));
    let recorded: Vec<(String, String)> = sqlx::query_as(
        r#"SELECT migration_name, checksum FROM "_prisma_migrations"
           WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name"#,
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(recorded.len(), 6, "{recorded:?}");
    assert_eq!(recorded[0].0, "20241216100433_initial");
    assert!(recorded.iter().all(|(_, c)| c.len() == 64));
    let kept: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "User" WHERE "id" = 'keep-me'"#)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(kept, 1);
}

// ---------------------------------------------------------------- adoption

const OLD_HOST: &str = "8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0001";
const OLD_GUEST: &str = "8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0002";
const OLD_SESSION: &str = "5e55e55e-0000-4000-8000-000000000001";
const OLD_PLAYLIST: &str = "91a11157-0000-4000-8000-000000000001";
const OLD_TRACK_1: &str = "7ac7ac7a-0000-4000-8000-000000000001";
const OLD_TRACK_2: &str = "7ac7ac7a-0000-4000-8000-000000000002";

/// What the Prisma app leaves behind after some use: a row in every table.
const OLD_ROWS: &str = r#"
INSERT INTO "User" ("id", "email", "name", "password", "avatar", "spotifyId", "spotifyAccessToken",
    "spotifyRefreshToken", "spotifyTokenExpiry", "createdAt", "updatedAt") VALUES
 ('8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0001', 'Hosta@Example.com', 'Hosta',
  '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy', 'https://i.example/a.png',
  'spotify-hosta', 'BQD-old-access', 'AQC-old-refresh', '2025-01-02 03:04:05.678',
  '2024-12-01 10:00:00.123', '2024-12-02 11:00:00.456'),
 ('8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0002', 'guest@example.com', 'Guest', NULL, NULL, NULL, NULL, NULL, NULL,
  '2024-12-03 10:00:00.001', '2024-12-03 10:00:00.001');
INSERT INTO "UserPreference" ("id", "userId", "topTracks", "topArtists", "genres", "features", "lastUpdated") VALUES
 ('pref-1', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0001', ARRAY['4uLU6hMCjMI75M1A2tKUQC', '7ouMYWpwJ422jRcDASZB7P'],
  ARRAY['Rick Astley', 'Muse'], ARRAY['pop', 'rock'],
  '{"danceability": 0.7, "energy": {"min": 0.2, "max": 0.9}, "tags": ["x", "y"]}', '2024-12-05 09:08:07.006'),
 ('pref-2', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0002', NULL, '{}', DEFAULT, NULL, '2024-12-05 09:08:08.000');
INSERT INTO "GroupSession" ("id", "name", "createdAt", "updatedAt", "active") VALUES
 ('5e55e55e-0000-4000-8000-000000000001', 'Friday night', '2024-12-06 20:00:00.000', '2024-12-06 21:00:00.000', true),
 ('5e55e55e-0000-4000-8000-000000000002', 'Old party', '2024-11-01 20:00:00.000', '2024-11-01 23:00:00.000', false);
INSERT INTO "Playlist" ("id", "spotifyId", "name", "description", "createdAt", "updatedAt", "creatorId", "sessionId") VALUES
 ('91a11157-0000-4000-8000-000000000001', '37i9dQZF1DXcBWIGoYBM5M', 'Friday night', 'Bangers only',
  '2024-12-06 20:00:00.000', '2024-12-06 20:30:00.000', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0001',
  '5e55e55e-0000-4000-8000-000000000001'),
 ('91a11157-0000-4000-8000-000000000002', NULL, 'Old party', NULL,
  '2024-11-01 20:00:00.000', '2024-11-01 20:00:00.000', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0002',
  '5e55e55e-0000-4000-8000-000000000002');
INSERT INTO "_GroupSessionToUser" ("A", "B") VALUES
 ('5e55e55e-0000-4000-8000-000000000001', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0001'),
 ('5e55e55e-0000-4000-8000-000000000001', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0002'),
 ('5e55e55e-0000-4000-8000-000000000002', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0002');
INSERT INTO "Track" ("id", "spotifyId", "name", "artists", "album", "popularity", "createdAt", "updatedAt") VALUES
 ('7ac7ac7a-0000-4000-8000-000000000001', '4uLU6hMCjMI75M1A2tKUQC', 'Never Gonna Give You Up', ARRAY['Rick Astley'],
  'Whenever You Need Somebody', 87, '2024-12-06 20:01:00.000', '2024-12-06 20:01:00.000'),
 ('7ac7ac7a-0000-4000-8000-000000000002', '7ouMYWpwJ422jRcDASZB7P', 'Knights of Cydonia', ARRAY['Muse', 'Guest'],
  'Black Holes and Revelations', DEFAULT, '2024-12-06 20:02:00.000', '2024-12-06 20:02:00.000');
INSERT INTO "TrackFeatures" ("id", "trackId", "danceability", "energy", "key", "loudness", "mode", "speechiness",
    "acousticness", "instrumentalness", "liveness", "valence", "tempo", "updatedAt") VALUES
 ('feat-1', '7ac7ac7a-0000-4000-8000-000000000001', 0.727, 0.939, 8, -11.855, 1, 0.0369, 0.135, 0.000026,
  0.151, 0.916, 113.309, '2024-12-06 20:01:00.000');
INSERT INTO "_PlaylistToTrack" ("A", "B") VALUES
 ('91a11157-0000-4000-8000-000000000001', '7ac7ac7a-0000-4000-8000-000000000001'),
 ('91a11157-0000-4000-8000-000000000001', '7ac7ac7a-0000-4000-8000-000000000002');
INSERT INTO "TrackInteraction" ("id", "userId", "trackId", "type", "timestamp") VALUES
 ('ti-1', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0002', '7ac7ac7a-0000-4000-8000-000000000001', 'like', '2024-12-06 20:05:00.001'),
 ('ti-2', '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0001', '7ac7ac7a-0000-4000-8000-000000000002', 'skip', '2024-12-06 20:06:00.002');
INSERT INTO "PlaylistUpdate" ("id", "playlistId", "type", "trackId", "userId", "timestamp") VALUES
 ('pu-1', '91a11157-0000-4000-8000-000000000001', 'add', '7ac7ac7a-0000-4000-8000-000000000001',
  '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0001', '2024-12-06 20:01:00.000'),
 ('pu-2', '91a11157-0000-4000-8000-000000000001', 'add', '7ac7ac7a-0000-4000-8000-000000000002',
  '8d0c5b7e-1f4e-4a35-9d3c-5c3f5a1f0002', '2024-12-06 20:02:00.000');
"#;

/// Every row of every Prisma table, as JSON, in a stable order.
async fn dump(db: &PgPool) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for t in PRISMA_TABLES {
        let order = if t.starts_with('_') {
            r#""A", "B""#
        } else {
            r#""id""#
        };
        let rows: Vec<Value> = sqlx::query_scalar(&format!(
            r#"SELECT to_jsonb(t) FROM "{t}" t ORDER BY {order}"#
        ))
        .fetch_all(db)
        .await
        .unwrap();
        out.insert(t.to_owned(), rows);
    }
    out
}

/// `rows` without the hub's added columns, which must all be null on rows
/// the Prisma app wrote.
fn without_hub_columns(rows: &BTreeMap<String, Vec<Value>>) -> BTreeMap<String, Vec<Value>> {
    rows.iter()
        .map(|(t, rows)| {
            let rows = rows
                .iter()
                .map(|r| {
                    let mut r = r.as_object().unwrap().clone();
                    r.retain(|k, v| {
                        if k.starts_with("hub") {
                            assert!(v.is_null(), "{t}.{k} set on an old row: {v}");
                            false
                        } else {
                            true
                        }
                    });
                    Value::Object(r)
                })
                .collect();
            (t.clone(), rows)
        })
        .collect()
}

#[tokio::test]
async fn migrations_adopt_an_existing_prisma_database_without_touching_rows() {
    let (url, db) = prisma_database().await;
    sqlx::raw_sql(OLD_ROWS)
        .execute(&db)
        .await
        .expect("seed old rows");
    let before = dump(&db).await;
    for (t, rows) in &before {
        assert!(!rows.is_empty(), "fixture has no {t} rows");
    }
    assert_eq!(before["User"][0]["email"], "Hosta@Example.com");
    let facts_before = schema_facts(&db).await;

    audotics_hub::db::migrate(&db)
        .await
        .expect("first migration run adopts");
    let after_first = dump(&db).await;
    let facts_first = schema_facts(&db).await;
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(
        applied.len() >= 2 && applied.iter().all(|(_, ok)| *ok),
        "{applied:?}"
    );

    audotics_hub::db::migrate(&db)
        .await
        .expect("second migration run is a no-op");
    let applied_again: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(applied, applied_again);
    assert_eq!(
        schema_facts(&db).await,
        facts_first,
        "second run changed the schema"
    );
    assert_eq!(dump(&db).await, after_first, "second run changed rows");

    assert_eq!(
        without_hub_columns(&after_first),
        before,
        "adopting changed the Prisma app's rows"
    );
    // Every Prisma fact survived unchanged; only hub additions appeared.
    for (key, want) in &facts_before {
        assert_eq!(
            facts_first.get(key),
            Some(want),
            "{key:?} changed on adoption"
        );
    }
    for key in facts_first
        .keys()
        .filter(|k| !facts_before.contains_key(*k))
    {
        assert!(
            key.2.starts_with("hub") || key.2.contains("_hub_"),
            "non-hub addition {key:?}"
        );
    }
    let tables = table_names(&db).await;
    for t in ["hub_auth_token", "hub_session", "hub_queue_entry"] {
        assert!(tables.contains(t), "{t} missing after adoption");
    }
    db.close().await;

    // The hub serves the adopted database.
    let app = spawn_app_on(url, |_| {}).await;
    let newbie = app.register("Newbie").await;
    let auth = |rb: reqwest::RequestBuilder| rb.bearer_auth(&newbie.token);
    // Only members see a session: the old app adds Newbie to both parties,
    // the way it adds members (the implicit many-to-many table).
    sqlx::query(
        r#"INSERT INTO "_GroupSessionToUser" ("A", "B")
           VALUES ($1, $3), ($2, $3)"#,
    )
    .bind(OLD_SESSION)
    .bind("5e55e55e-0000-4000-8000-000000000002")
    .bind(&newbie.id)
    .execute(&app.db)
    .await
    .unwrap();

    let r = auth(app.http.get(app.url("/v1/sessions?active=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{body}");
    // The adopted session got its join code when first listed.
    let mut listed = sessions[0].clone();
    let code = listed.as_object_mut().unwrap().remove("joinCode").unwrap();
    assert_eq!(code.as_str().map(str::len), Some(6), "{code}");
    assert_eq!(
        listed,
        json!({
            "id": OLD_SESSION, "name": "Friday night", "active": true,
            "createdAt": "2024-12-06T20:00:00Z", "updatedAt": "2024-12-06T21:00:00Z",
            "hostId": OLD_HOST,
        })
    );
    let r = auth(app.http.get(app.url("/v1/sessions?active=false")))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sessions"][0]["name"], "Old party");
    assert_eq!(body["sessions"][0]["hostId"], OLD_GUEST);

    let r = auth(
        app.http
            .get(app.url(&format!("/v1/sessions/{OLD_SESSION}"))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let snap: Value = r.json().await.unwrap();
    assert_eq!(snap["version"], 0);
    assert_eq!(
        snap["session"],
        json!({ "id": OLD_SESSION, "name": "Friday night", "active": true, "hostId": OLD_HOST })
    );
    assert_eq!(
        snap["playlist"],
        json!({ "id": OLD_PLAYLIST, "name": "Friday night", "description": "Bangers only",
                "spotifyId": "37i9dQZF1DXcBWIGoYBM5M" })
    );
    assert!(snap["queue"].is_array());
    assert_eq!(
        snap["members"],
        json!([
            { "userId": OLD_GUEST, "name": "Guest", "avatar": null, "online": false, "role": "member" },
            { "userId": OLD_HOST, "name": "Hosta", "avatar": "https://i.example/a.png", "online": false, "role": "host" },
            { "userId": newbie.id, "name": "Newbie", "avatar": null, "online": false, "role": "member" },
        ])
    );
    assert_eq!(
        snap["you"],
        json!({ "userId": newbie.id, "role": "member" })
    );
    let text = snap.to_string();
    assert!(
        !text.contains("BQD-old-access") && !text.contains("$2b$"),
        "{text}"
    );

    // The old app's PlaylistUpdate rows have no hub version: not in the log.
    let r = auth(
        app.http
            .get(app.url(&format!("/v1/sessions/{OLD_SESSION}/updates"))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "updates": [], "next": null })
    );

    // Only the host (the playlist's creator) may end the old session.
    let r = auth(
        app.http
            .post(app.url(&format!("/v1/sessions/{OLD_SESSION}/end"))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 403);

    // Old tracks are found by the hub's search, and the old users still
    // cannot log in with a password the hub cannot verify (bcrypt): 401, not 500.
    let r = auth(app.http.get(app.url("/v1/tracks?q=cydonia")))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["tracks"][0]["id"], OLD_TRACK_2);
    assert_eq!(body["tracks"][0]["artists"], json!(["Muse", "Guest"]));
    let r = app
        .http
        .post(app.url("/v1/auth/token"))
        .json(&LoginBody {
            email: "hosta@example.com",
            password: "whatever-it-was",
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // An old account's email (any case) cannot be registered twice.
    let r = app
        .http
        .post(app.url("/v1/users"))
        .json(&RegisterBody {
            email: "hosta@example.com",
            name: "Impostor",
            password: "long enough pw",
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // Nothing the hub did touched the old rows (GET snapshot may add the
    // session's hub_session row, which is the hub's own table).
    let after_use = dump(&app.db).await;
    for t in [
        "GroupSession",
        "Playlist",
        "Track",
        "TrackFeatures",
        "TrackInteraction",
        "PlaylistUpdate",
        "_PlaylistToTrack",
        "UserPreference",
    ] {
        assert_eq!(without_hub_columns(&after_use)[t], before[t], "{t} changed");
    }
    assert_eq!(
        sqlx::query_scalar::<_, String>(
            r#"SELECT "B" FROM "_PlaylistToTrack" WHERE "A" = $1 ORDER BY "B" LIMIT 1"#
        )
        .bind(OLD_PLAYLIST)
        .fetch_one(&app.db)
        .await
        .unwrap(),
        OLD_TRACK_1
    );
    app.stop().await;
}
