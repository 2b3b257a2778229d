//! Accounts: register, log in (token), the caller's profile and preferences.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, AuthUser, BearerToken, ClientIp};
use super::AppState;
use crate::auth;
use crate::db::{guests, tokens, users};
use crate::error::{Error, Result};
use audotics_protocol::rules;

#[derive(Deserialize)]
pub struct Register {
    email: String,
    name: String,
    password: String,
}

/// `POST /v1/users` → 201 {user, token}
pub async fn register(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<Register>,
) -> Result<(StatusCode, Json<Value>)> {
    st.limits.signup(ip)?;
    let email = rules::email(&b.email)?;
    super::joining::refuse_guest_email(&email)?;
    let name = rules::text("name", &b.name, rules::NAME_MAX)?;
    rules::password(&b.password)?;
    let hash = auth::hash_password_as(b.password, st.config.password_hash).await?;
    let user = users::create(&st.db, &email, &name, &hash).await?;
    let token = tokens::issue(&st.db, &user.id).await?;
    tracing::info!(user_id = %user.id, "registered");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": user, "token": token })),
    ))
}

#[derive(Deserialize)]
pub struct Login {
    email: String,
    password: String,
}

/// `POST /v1/auth/token` → {token, user}. Accepts bcrypt (the old app's)
/// and argon2 hashes; a hash that is not of the policy's kind is rewritten
/// on success when `auth::needs_rehash` says so.
pub async fn login(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<Login>,
) -> Result<Json<Value>> {
    let email = rules::email(&b.email)?;
    st.limits.signin(ip, &email)?;
    let policy = st.config.password_hash;
    let found = users::credentials(&st.db, &email).await?;
    let (user_id, stored) = match found {
        Some((id, Some(hash))) => (Some(id), hash),
        // Unknown email (or no password: a Spotify-only account): check a
        // dummy, so that every failure takes as long.
        _ => (None, auth::dummy_hash(policy).to_owned()),
    };
    let rehash = user_id.is_some() && auth::needs_rehash(&stored, policy);
    let password = rehash.then(|| b.password.clone());
    let ok = auth::verify_password(b.password, stored.clone()).await?;
    st.limits.signed_in(&email, ok && user_id.is_some());
    let user_id = user_id.filter(|_| ok).ok_or(Error::Unauthorized)?;
    if let Some(password) = password {
        rehash_password(&st, &user_id, &stored, password).await;
    }
    let user = users::get(&st.db, &user_id)
        .await?
        .ok_or(Error::Unauthorized)?;
    let token = tokens::issue(&st.db, &user.id).await?;
    Ok(Json(json!({ "token": token, "user": user })))
}

/// Store a fresh hash of the policy's kind for a password that has just
/// verified against `stored`. A failure is logged, not answered: the user
/// did prove the password, and the old hash still works.
async fn rehash_password(st: &AppState, user_id: &str, stored: &str, password: String) {
    let policy = st.config.password_hash;
    let result = async {
        let new = auth::hash_password_as(password, policy).await?;
        users::replace_password_hash(&st.db, user_id, stored, &new).await
    }
    .await;
    match result {
        Ok(true) => tracing::info!(%user_id, ?policy, "password re-hashed"),
        Ok(false) => tracing::info!(%user_id, "password changed meanwhile; not re-hashed"),
        Err(e) => tracing::warn!(%user_id, error = %e, "password re-hash failed"),
    }
}

/// `POST /v1/auth/logout` → 204: the presented token stops working, and
/// the sockets it opened close with 4001 (on every hub).
pub async fn logout(
    State(st): State<AppState>,
    BearerToken(token): BearerToken,
) -> Result<StatusCode> {
    tokens::revoke(&st.db, &auth::token_hash(&token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/logout-all` → {revoked}: every token of the caller's
/// account stops working (signed out everywhere).
pub async fn logout_all(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Value>> {
    let revoked = tokens::revoke_all(&st.db, &user.id).await?;
    tracing::info!(user_id = %user.id, revoked, "signed out everywhere");
    Ok(Json(json!({ "revoked": revoked })))
}

/// `GET /v1/me` → {user, preferences, guest}; `guest`: a guest account
/// (joined with just a name, not claimed yet).
pub async fn me(State(st): State<AppState>, AuthUser(user): AuthUser) -> Result<Json<Value>> {
    let prefs = users::preferences(&st.db, &user.id).await?;
    let guest = guests::is_guest(&st.db, &user.id).await?;
    Ok(Json(
        json!({ "user": user, "preferences": prefs, "guest": guest }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesBody {
    #[serde(default)]
    top_tracks: Vec<String>,
    #[serde(default)]
    top_artists: Vec<String>,
    #[serde(default)]
    genres: Vec<String>,
    #[serde(default)]
    features: Option<Value>,
}

/// `PUT /v1/me/preferences` → {preferences}
pub async fn put_preferences(
    State(st): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(b): ApiJson<PreferencesBody>,
) -> Result<Json<Value>> {
    let top_tracks = rules::string_list("topTracks", &b.top_tracks)?;
    let top_artists = rules::string_list("topArtists", &b.top_artists)?;
    let genres = rules::string_list("genres", &b.genres)?;
    if let Some(f) = &b.features {
        rules::json_without_nul("features", f)?;
    }
    let features = match b.features {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) if v.to_string().len() <= 16 * 1024 => Some(v),
        Some(Value::Object(_)) => return Err(Error::invalid("features", "must be at most 16 KiB")),
        Some(_) => return Err(Error::invalid("features", "must be an object or null")),
    };
    let prefs = users::set_preferences(
        &st.db,
        &user.id,
        &top_tracks,
        &top_artists,
        &genres,
        features.as_ref(),
    )
    .await?;
    Ok(Json(json!({ "preferences": prefs })))
}
