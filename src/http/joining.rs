//! Joining a party without an account or a long link: look up a session by
//! its six-character join code (no token: the guest has none yet), a
//! session's code for its members, a guest account from just a name, and
//! the guest's claim of that account with an email and password.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, AuthUser, ClientIp};
use super::sessions::{not_a_member, session_id};
use super::AppState;
use crate::auth;
use crate::db::{guests, joins, sessions, tokens, users};
use crate::error::{Error, Result};
use audotics_protocol::model::{JoinCode, JoinHost, JoinTarget};
use audotics_protocol::rules;

/// `GET /v1/join/{code}` → the session the code stands for. Rate limited
/// per address; an unknown code, or an ended session's, is 404.
pub async fn lookup(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
) -> Result<Json<JoinTarget>> {
    st.limits.join_lookup(ip)?;
    let unknown = || Error::NotFound("join code");
    let code = joins::normalize(&code).ok_or_else(unknown)?;
    let session_id = joins::resolve(&st.db, &code).await?.ok_or_else(unknown)?;
    let (session, _) = sessions::refs(&st.db, &session_id)
        .await?
        .ok_or_else(unknown)?;
    let host = users::get(&st.db, &session.host_id)
        .await?
        .ok_or_else(unknown)?;
    let members = joins::member_count(&st.db, &session_id).await?;
    Ok(Json(JoinTarget {
        code,
        session_id,
        name: session.name,
        host: JoinHost {
            id: host.id,
            name: host.name,
        },
        members,
        active: session.active,
    }))
}

/// `GET /v1/sessions/{id}/code` (members) → {sessionId, code}, making the
/// code of a session the old app made. An ended session's code no longer
/// works: 409.
pub async fn session_code(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<JoinCode>> {
    let id = session_id(&id)?;
    // Without a playlist a session has no host and cannot be joined.
    let Some((session, Some(_))) = sessions::get(&st.db, id.as_str()).await? else {
        return Err(Error::NotFound("session"));
    };
    if !sessions::is_member(&st.db, id.as_str(), &user.id).await? {
        return Err(not_a_member());
    }
    if !session.active {
        return Err(Error::Conflict(
            "this session has ended: it has no join code any more".into(),
        ));
    }
    let mut conn = st.db.acquire().await?;
    let code = joins::ensure(&mut conn, id.as_str()).await?;
    Ok(Json(JoinCode {
        session_id: session.id,
        code,
    }))
}

#[derive(Deserialize)]
pub struct GuestBody {
    name: String,
}

/// `POST /v1/auth/guest` {name} → 201 {token, user, guest}: a guest
/// account (a `"User"` without a password) and its first token. Limited
/// per address like registrations.
pub async fn guest(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<GuestBody>,
) -> Result<(StatusCode, Json<Value>)> {
    st.limits.signup(ip)?;
    let name = rules::text("name", &b.name, rules::NAME_MAX)?;
    let user = guests::create(&st.db, &name).await?;
    let token = tokens::issue(&st.db, &user.id).await?;
    tracing::info!(user_id = %user.id, "guest account created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "user": user, "guest": true })),
    ))
}

#[derive(Deserialize)]
pub struct ClaimBody {
    email: String,
    password: String,
}

/// `POST /v1/auth/claim` {email, password}, with a guest's token → {user,
/// guest}: the guest account becomes an ordinary one (same id, same tokens)
/// that signs in with that email and password. Limited per address like
/// registrations; 403 for an account that is not a guest, 409 for an email
/// another account has.
pub async fn claim(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    AuthUser(user): AuthUser,
    ApiJson(b): ApiJson<ClaimBody>,
) -> Result<Json<Value>> {
    st.limits.signup(ip)?;
    let email = rules::email(&b.email)?;
    refuse_guest_email(&email)?;
    rules::password(&b.password)?;
    // Cheap refusals first: the hash below is slow on purpose.
    if !guests::is_guest(&st.db, &user.id).await? {
        return Err(guests::not_a_guest());
    }
    if users::credentials(&st.db, &email).await?.is_some() {
        return Err(users::duplicate_email());
    }
    let hash = auth::hash_password_as(b.password, st.config.password_hash).await?;
    let user = guests::claim(&st.db, &user.id, &email, &hash).await?;
    tracing::info!(user_id = %user.id, "guest account claimed");
    Ok(Json(json!({ "user": user, "guest": false })))
}

/// Guests' synthetic addresses are nobody's to register or claim.
pub fn refuse_guest_email(email: &str) -> Result<()> {
    if guests::is_guest_email(email) {
        return Err(Error::invalid(
            "email",
            format!("addresses @{} are reserved", guests::EMAIL_DOMAIN),
        ));
    }
    Ok(())
}
