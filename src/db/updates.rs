//! The `"PlaylistUpdate"` log as the protocol's change history: rows the hub
//! wrote carry `hubVersion`, so the log can be paged and replayed in order.

use chrono::NaiveDateTime;
use sqlx::PgExecutor;

use crate::clock::utc;
use crate::error::Result;
use audotics_protocol::model::UpdateRecord;

/// Updates of `playlist_id` with version > `after`, in version order.
pub async fn page(
    db: impl PgExecutor<'_>,
    playlist_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<UpdateRecord>> {
    #[derive(sqlx::FromRow)]
    #[sqlx(rename_all = "camelCase")]
    struct Row {
        hub_version: i64,
        #[sqlx(rename = "type")]
        kind: String,
        hub_entry_id: Option<String>,
        track_id: String,
        user_id: String,
        hub_from_index: Option<i32>,
        hub_to_index: Option<i32>,
        timestamp: NaiveDateTime,
    }
    let rows: Vec<Row> = sqlx::query_as(
        r#"SELECT "hubVersion", "type", "hubEntryId", "trackId", "userId", "hubFromIndex", "hubToIndex", "timestamp"
           FROM "PlaylistUpdate" WHERE "playlistId" = $1 AND "hubVersion" > $2
           ORDER BY "hubVersion" LIMIT $3"#,
    )
    .bind(playlist_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| UpdateRecord {
            version: r.hub_version,
            kind: r.kind,
            entry_id: r.hub_entry_id,
            track_id: r.track_id,
            user_id: r.user_id,
            from_index: r.hub_from_index,
            to_index: r.hub_to_index,
            timestamp: utc(r.timestamp),
        })
        .collect())
}
