//! Group sessions over REST: create (caller becomes host), list, read the
//! snapshot, end (host only), and page the PlaylistUpdate log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ApiQuery, AuthUser};
use super::AppState;
use audotics_protocol::{IdError, SessionId, UserId};

use crate::db::{joins, log, sessions};
use crate::error::{Error, Result};
use audotics_protocol::model::{ListedSession, Session};
use audotics_protocol::rules;

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

/// `POST /v1/sessions` → 201 {session, playlist, joinCode}
pub async fn create(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(b): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>)> {
    st.limits.session(&user.id)?;
    let name = rules::text("name", &b.name, rules::NAME_MAX)?;
    let description = rules::optional_text(
        "description",
        b.description.as_deref(),
        rules::DESCRIPTION_MAX,
    )?;
    let (session, playlist) =
        sessions::create(&st.db, &user.id, &name, description.as_deref()).await?;
    let join_code = joins::code_of(&st.db, &session.id).await?;
    tracing::info!(session_id = %session.id, host = %user.id, "session created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "session": session, "playlist": playlist, "joinCode": join_code })),
    ))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /v1/sessions?active=&limit=` → {sessions}: the caller's own (the
/// ones it is a member of), each with its `joinCode` (null once ended). Session ids are invitations: listing others'
/// would hand them out.
pub async fn list(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Error::invalid("limit", "must be 1 to 500"));
    }
    let found = sessions::list_for(&st.db, &user.id, q.active, limit).await?;
    let ids: Vec<String> = found.iter().map(|s| s.id.clone()).collect();
    let mut codes = joins::active_codes(&st.db, &ids).await?;
    // Active sessions made by the old app (or before codes) get theirs now;
    // one without a playlist (no host) cannot be joined, so has none.
    let missing: Vec<&Session> = found
        .iter()
        .filter(|s| s.active && s.host_id.is_some() && !codes.contains_key(&s.id))
        .collect();
    if !missing.is_empty() {
        let mut conn = st.db.acquire().await?;
        for s in missing {
            codes.insert(s.id.clone(), joins::ensure(&mut conn, &s.id).await?);
        }
    }
    let listed: Vec<ListedSession> = found
        .into_iter()
        .map(|session| ListedSession {
            join_code: codes.remove(&session.id),
            session,
        })
        .collect();
    Ok(Json(json!({ "sessions": listed })))
}

/// `GET /v1/sessions/{id}` → the snapshot body, to members. Anyone else
/// holding the id joins first (the WebSocket `join` makes a member).
pub async fn get(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let id = session_id(&id)?;
    let snap = st.hub.snapshot(&id, &UserId::from_stored(user.id)).await?;
    if !snap.members.iter().any(|m| m.user_id == snap.you.user_id) {
        return Err(not_a_member());
    }
    Ok(Json(
        serde_json::to_value(snap).map_err(|e| Error::Internal(e.into()))?,
    ))
}

/// `GET /v1/sessions/{id}/suggestions` (members) → {version, items}: "up
/// next for this room", as the session's listeners last got them (computed
/// now when there are none yet).
pub async fn suggestions(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let id = session_id(&id)?;
    if !sessions::is_member(&st.db, id.as_str(), &user.id).await? {
        return Err(if sessions::get(&st.db, id.as_str()).await?.is_none() {
            Error::NotFound("session")
        } else {
            not_a_member()
        });
    }
    let (version, items) = st.hub.suggestions(&id).await?;
    Ok(Json(
        serde_json::json!({ "version": version, "items": items }),
    ))
}

/// `POST /v1/sessions/{id}/end` (host only) → {session}. Ending an ended
/// session is a no-op. A live session's listeners get `ended` and close 4010.
pub async fn end(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let id = session_id(&id)?;
    let (session, _) = sessions::get(&st.db, id.as_str())
        .await?
        .ok_or(Error::NotFound("session"))?;
    if session.host_id.as_deref() != Some(user.id.as_str()) {
        return Err(Error::Forbidden(
            "only the host may end this session".into(),
        ));
    }
    if session.active {
        st.hub.end(&id).await?;
    }
    let (session, _) = sessions::get(&st.db, id.as_str())
        .await?
        .ok_or(Error::NotFound("session"))?;
    Ok(Json(json!({ "session": session })))
}

#[derive(Deserialize)]
pub struct UpdatesQuery {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /v1/sessions/{id}/updates?after=&limit=` → {updates, next}; `next`
/// is the `after` of the following page, or null on the last one.
pub async fn updates(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UpdatesQuery>,
) -> Result<Json<Value>> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(Error::invalid("after", "must be 0 or more"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid("limit", "must be 1 to 1000"));
    }
    let id = session_id(&id)?;
    let (_, playlist) = sessions::get(&st.db, id.as_str())
        .await?
        .ok_or(Error::NotFound("session"))?;
    if !sessions::is_member(&st.db, id.as_str(), &user.id).await? {
        return Err(not_a_member());
    }
    let Some(playlist) = playlist else {
        return Ok(Json(json!({ "updates": [], "next": null })));
    };
    // One row more than asked tells whether another page follows, so the
    // last page (even a full one) says `next: null`.
    let mut records = log::after(&st.db, id.as_str(), &playlist.id, after, limit + 1).await?;
    let more = records.len() as i64 > limit;
    records.truncate(limit as usize);
    let next = more.then(|| records.last().map(|r| r.version)).flatten();
    let page: Vec<_> = records.iter().map(log::ChangeRecord::record).collect();
    Ok(Json(json!({ "updates": page, "next": next })))
}

/// A non-member asked for a session's contents.
pub(super) fn not_a_member() -> Error {
    Error::Forbidden("only members see a session: join it with its link or code first".into())
}

/// A session id from a URL: one that cannot exist is a 404, one with a
/// control character a 422 naming it (Postgres refuses NUL in text).
pub(super) fn session_id(id: &str) -> Result<SessionId> {
    SessionId::parse(id).map_err(|e| match e {
        IdError::ControlCharacter => Error::invalid("id", e.to_string()),
        _ => Error::NotFound("session"),
    })
}
