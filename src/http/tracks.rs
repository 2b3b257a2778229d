//! The catalog over REST: upsert a track (with optional audio features) and
//! search by name, artist or album.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ApiQuery, AuthUser};
use super::AppState;
use crate::db::tracks;
use crate::error::{Error, Result};
use audotics_protocol::model::{TrackBody, TrackFeatures};
use audotics_protocol::rules;

/// The REST body: a `TrackBody` plus optional features. Spelled out rather
/// than `#[serde(flatten)]`, which buffers the fields and so loses the path
/// of a wrongly typed one (the 422 could not name it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertBody {
    spotify_id: String,
    name: String,
    artists: Vec<String>,
    album: String,
    #[serde(default)]
    popularity: Option<i32>,
    #[serde(default)]
    duration_ms: Option<i64>,
    #[serde(default)]
    cover_url: Option<String>,
    #[serde(default)]
    features: Option<TrackFeatures>,
}

impl UpsertBody {
    fn track(&self) -> TrackBody {
        TrackBody {
            spotify_id: self.spotify_id.clone(),
            name: self.name.clone(),
            artists: self.artists.clone(),
            album: self.album.clone(),
            popularity: self.popularity,
            duration_ms: self.duration_ms,
            cover_url: self.cover_url.clone(),
        }
    }
}

fn check_features(f: &TrackFeatures) -> Result<()> {
    let unit = [
        ("features.danceability", f.danceability),
        ("features.energy", f.energy),
        ("features.speechiness", f.speechiness),
        ("features.acousticness", f.acousticness),
        ("features.instrumentalness", f.instrumentalness),
        ("features.liveness", f.liveness),
        ("features.valence", f.valence),
    ];
    for (field, v) in unit {
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::invalid(field, "must be 0.0 to 1.0"));
        }
    }
    if !(-1..=11).contains(&f.key) {
        return Err(Error::invalid("features.key", "must be -1 to 11"));
    }
    if !(0..=1).contains(&f.mode) {
        return Err(Error::invalid("features.mode", "must be 0 or 1"));
    }
    if !(-100.0..=10.0).contains(&f.loudness) {
        return Err(Error::invalid("features.loudness", "must be -100 to 10 dB"));
    }
    if !(0.0..=400.0).contains(&f.tempo) {
        return Err(Error::invalid("features.tempo", "must be 0 to 400 BPM"));
    }
    Ok(())
}

/// `POST /v1/tracks` → 201 (new) or 200 (updated) {track, features}
pub async fn upsert(
    State(st): State<AppState>,
    AuthUser(_): AuthUser,
    ApiJson(b): ApiJson<UpsertBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let input = b.track().validate()?;
    if let Some(f) = &b.features {
        check_features(f)?;
    }
    let mut tx = st.db.begin().await?;
    let (track, inserted) = tracks::upsert(&mut tx, &input).await?;
    if let Some(f) = &b.features {
        tracks::set_features(&mut *tx, &track.id, f).await?;
    }
    tx.commit().await?;
    st.hub.tracks().put(std::sync::Arc::new(track.clone()));
    st.hub.catalog_changed();
    let features = tracks::features(&st.db, &track.id).await?;
    let status = if inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "track": track, "features": features })),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    spotify_id: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /v1/tracks?q=&limit=` → {tracks}: search by name, artist or album.
/// `GET /v1/tracks?spotifyId=` → {tracks}: the one track with that id, if
/// known (so a client can queue a pasted Spotify id without guessing its
/// metadata).
pub async fn search(
    State(st): State<AppState>,
    AuthUser(_): AuthUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<Value>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid("limit", "must be 1 to 100"));
    }
    let found = match (q.q, q.spotify_id) {
        (Some(text), None) => {
            let text = rules::text("q", &text, rules::NAME_MAX)?;
            tracks::search(&st.db, &text, limit).await?
        }
        (None, Some(id)) => {
            let id = rules::spotify_id(&id)?;
            tracks::by_spotify_id(&st.db, &id)
                .await?
                .into_iter()
                .collect()
        }
        (Some(_), Some(_)) => return Err(Error::invalid("q", "give q or spotifyId, not both")),
        (None, None) => return Err(Error::invalid("q", "missing field `q`")),
    };
    Ok(Json(json!({ "tracks": found })))
}
