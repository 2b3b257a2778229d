//! The hub's REST routes as typed methods: bodies and answers are the
//! protocol crate's model types, and a non-2xx answer is a [`RestError`]
//! carrying the problem+json `code`, `field` and `detail`, so a caller can
//! assert on a refusal as easily as on a success.

use std::fmt;

use audotics_protocol::model::{
    JoinCode, JoinTarget, ListedSession, Playlist, Preferences, Session, Snapshot, Track,
    TrackBody, TrackFeatures, UpdateRecord, User,
};
use audotics_protocol::ErrorCode;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A client of the hub's REST API at one base URL (`http://host:port`),
/// acting as one user when it holds a token. Cheap to clone: the underlying
/// `reqwest::Client` is shared.
#[derive(Clone, Debug)]
pub struct Rest {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

/// An RFC 9457 problem as the hub sends it for every refusal.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Problem {
    pub status: u16,
    pub code: ErrorCode,
    /// The offending field of a 422 `invalid`.
    #[serde(default)]
    pub field: Option<String>,
    pub detail: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.code.as_str())?;
        if let Some(field) = &self.field {
            write!(f, " ({field})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Why a typed call did not return its value.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The hub refused the request with a problem+json body.
    #[error("HTTP {0}")]
    Problem(Problem),
    /// A refusal without a problem body (not the hub's doing), or a success
    /// status the route does not answer with (200 where 201 is documented).
    #[error("unexpected HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// A 2xx answer whose body is not the shape the route promises.
    #[error("HTTP {status} with an unexpected body ({error}): {body}")]
    Decode {
        status: u16,
        body: String,
        #[source]
        error: serde_json::Error,
    },
    /// The request never got an answer.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

impl RestError {
    /// The problem the hub answered with, if it answered with one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            RestError::Problem(p) => Some(p),
            _ => None,
        }
    }

    /// The HTTP status, if the hub answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Problem(p) => Some(p.status),
            RestError::Status { status, .. } | RestError::Decode { status, .. } => Some(*status),
            RestError::Http(e) => e.status().map(|s| s.as_u16()),
        }
    }
}

pub type Result<T, E = RestError> = std::result::Result<T, E>;

/// A response read whole, undecoded: for tests of malformed input and of
/// exact wire shapes.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    /// The `Content-Type` header, or empty.
    pub content_type: String,
    pub text: String,
    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub body: Value,
}

impl RawResponse {
    /// Send `rb` and read the whole answer.
    pub async fn read(rb: RequestBuilder) -> Result<RawResponse, reqwest::Error> {
        let res = rb.send().await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = res.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(RawResponse {
            status,
            headers,
            content_type,
            text,
            body,
        })
    }

    /// The problem this response carries, if it is one.
    pub fn problem(&self) -> Option<Problem> {
        serde_json::from_value(self.body.clone()).ok()
    }

    /// The body decoded as `T`, or the error a typed call would give.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        if !(200..300).contains(&self.status) {
            return Err(match self.problem() {
                Some(p) => RestError::Problem(p),
                None => RestError::Status {
                    status: self.status,
                    body: self.text.clone(),
                },
            });
        }
        serde_json::from_str(&self.text).map_err(|error| RestError::Decode {
            status: self.status,
            body: self.text.clone(),
            error,
        })
    }
}

/// `POST /v1/users` → 201.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Registered {
    pub user: User,
    pub token: String,
}

/// `POST /v1/auth/token` → 200.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LoggedIn {
    pub token: String,
    pub user: User,
}

/// `GET /v1/me`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Me {
    pub user: User,
    pub preferences: Option<Preferences>,
    /// A guest account (joined with just a name, not claimed yet).
    #[serde(default)]
    pub guest: bool,
}

/// `POST /v1/auth/guest` → 201: a guest account and its first token.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GuestCreated {
    pub token: String,
    pub user: User,
    /// Always true.
    pub guest: bool,
}

/// `POST /v1/auth/claim` → 200: the claimed account (same id and tokens).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Claimed {
    pub user: User,
    /// Always false.
    pub guest: bool,
}

/// The body of `PUT /v1/me/preferences`; omitted lists are stored empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesBody {
    pub top_tracks: Vec<String>,
    pub top_artists: Vec<String>,
    pub genres: Vec<String>,
    /// Any JSON object up to 16 KiB, or none.
    pub features: Option<Value>,
}

/// `POST /v1/tracks` → 201 (a new track) or 200 (an updated one).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TrackUpserted {
    pub track: Track,
    pub features: Option<TrackFeatures>,
    /// True when the answer was 201: no track had this `spotifyId` before.
    #[serde(skip)]
    pub created: bool,
}

/// `POST /v1/sessions` → 201; the caller is the host.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SessionCreated {
    pub session: Session,
    pub playlist: Playlist,
    /// The session's join code (`GET /v1/join/{code}`, `/j/{code}`).
    #[serde(rename = "joinCode")]
    pub join_code: String,
}

/// One page of `GET /v1/sessions/{id}/updates`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UpdatesPage {
    pub updates: Vec<UpdateRecord>,
    /// The `after` of the next page; `None` on the last one.
    pub next: Option<i64>,
}

/// The body of `POST /v1/users`. The request bodies are public so a test
/// that reads an answer raw still sends the one definition of the body.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RegisterBody<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a str,
}

/// The body of `POST /v1/auth/token`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LoginBody<'a> {
    pub email: &'a str,
    pub password: &'a str,
}

/// The body of `POST /v1/auth/guest`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct GuestBody<'a> {
    pub name: &'a str,
}

/// The body of `POST /v1/auth/claim`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ClaimBody<'a> {
    pub email: &'a str,
    pub password: &'a str,
}

/// The body of `POST /v1/sessions`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SessionBody<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

/// The body of `POST /v1/tracks`: the track's fields, and `features` if any.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TrackUpsertBody<'a> {
    #[serde(flatten)]
    pub track: &'a TrackBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<&'a TrackFeatures>,
}

#[derive(Deserialize)]
struct PreferencesAnswer {
    preferences: Preferences,
}

#[derive(Deserialize)]
struct TracksAnswer {
    tracks: Vec<Track>,
}

#[derive(Deserialize)]
struct SessionsAnswer<S> {
    sessions: Vec<S>,
}

#[derive(Deserialize)]
struct SessionAnswer {
    session: Session,
}

/// No body, for the typed calls that send none.
const NO_BODY: Option<&()> = None;

impl Rest {
    /// A client of the hub at `base` (`http://host:port`, no trailing `/`).
    pub fn new(base: impl Into<String>) -> Rest {
        Rest::with_client(base, reqwest::Client::new())
    }

    /// Like [`Rest::new`], with a configured `reqwest::Client` (timeouts…).
    pub fn with_client(base: impl Into<String>, http: reqwest::Client) -> Rest {
        Rest {
            base: base.into().trim_end_matches('/').to_owned(),
            http,
            token: None,
        }
    }

    /// The same client acting as the user holding `token`.
    pub fn as_user(&self, token: impl Into<String>) -> Rest {
        Rest {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The same client without a token.
    pub fn anonymous(&self) -> Rest {
        Rest {
            token: None,
            ..self.clone()
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The WebSocket endpoint of the same hub (`ws://host:port/v1/ws`).
    pub fn ws_url(&self) -> String {
        let rest = self
            .base
            .strip_prefix("https://")
            .map(|h| format!("wss://{h}"))
            .or_else(|| {
                self.base
                    .strip_prefix("http://")
                    .map(|h| format!("ws://{h}"))
            })
            .unwrap_or_else(|| self.base.clone());
        format!("{rest}/v1/ws")
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request to `path`, with this client's token if it has one; add a
    /// body or headers and read it with [`RawResponse::read`]. For requests
    /// no typed method makes (malformed bodies, odd headers).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, self.url(path));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Send `body` as is (labelled `application/json` unless `headers` set
    /// a content type) with `headers`, and read the whole answer.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse> {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                rb = rb.header(CONTENT_TYPE, "application/json");
            }
            rb = rb.body(b.to_owned());
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        Ok(RawResponse::read(rb).await?)
    }

    /// Send `body` as JSON and decode the answer, which must have one of
    /// the route's documented success statuses `ok`: a typed call that
    /// returns `Ok` has checked the status exactly, not just "2xx".
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        ok: &[u16],
    ) -> Result<(u16, T)> {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let raw = RawResponse::read(rb).await?;
        let value = raw.decode()?;
        if !ok.contains(&raw.status) {
            return Err(RestError::Status {
                status: raw.status,
                body: raw.text,
            });
        }
        Ok((raw.status, value))
    }

    /// `POST /v1/users`: a new account and its first token.
    pub async fn register(&self, email: &str, name: &str, password: &str) -> Result<Registered> {
        let body = RegisterBody {
            email,
            name,
            password,
        };
        Ok(self
            .call(Method::POST, "/v1/users", Some(&body), &[201])
            .await?
            .1)
    }

    /// `POST /v1/auth/token`: a new token for an existing account.
    pub async fn login(&self, email: &str, password: &str) -> Result<LoggedIn> {
        let body = LoginBody { email, password };
        Ok(self
            .call(Method::POST, "/v1/auth/token", Some(&body), &[200])
            .await?
            .1)
    }

    /// `GET /v1/me`.
    pub async fn me(&self) -> Result<Me> {
        Ok(self.call(Method::GET, "/v1/me", NO_BODY, &[200]).await?.1)
    }

    /// `PUT /v1/me/preferences`: replaces the caller's preferences.
    pub async fn put_preferences(&self, prefs: &PreferencesBody) -> Result<Preferences> {
        let (_, a): (_, PreferencesAnswer) = self
            .call(Method::PUT, "/v1/me/preferences", Some(prefs), &[200])
            .await?;
        Ok(a.preferences)
    }

    /// `POST /v1/tracks`: upsert by `spotifyId`, with audio features if given.
    pub async fn upsert_track(
        &self,
        track: &TrackBody,
        features: Option<&TrackFeatures>,
    ) -> Result<TrackUpserted> {
        let body = TrackUpsertBody { track, features };
        let (status, mut t): (_, TrackUpserted) = self
            .call(Method::POST, "/v1/tracks", Some(&body), &[200, 201])
            .await?;
        t.created = status == 201;
        Ok(t)
    }

    /// `GET /v1/tracks?q=&limit=`: search by name, artist or album.
    pub async fn search_tracks(&self, q: &str, limit: Option<i64>) -> Result<Vec<Track>> {
        let mut path = format!("/v1/tracks?q={}", encode(q));
        if let Some(l) = limit {
            path.push_str(&format!("&limit={l}"));
        }
        let (_, a): (_, TracksAnswer) = self.call(Method::GET, &path, NO_BODY, &[200]).await?;
        Ok(a.tracks)
    }

    /// `GET /v1/tracks?spotifyId=`: the track with that Spotify id, if known.
    pub async fn track_by_spotify_id(&self, spotify_id: &str) -> Result<Option<Track>> {
        let path = format!("/v1/tracks?spotifyId={}", encode(spotify_id));
        let (_, a): (_, TracksAnswer) = self.call(Method::GET, &path, NO_BODY, &[200]).await?;
        Ok(a.tracks.into_iter().next())
    }

    /// `POST /v1/sessions`: a new session hosted by the caller.
    pub async fn create_session(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<SessionCreated> {
        let body = SessionBody { name, description };
        Ok(self
            .call(Method::POST, "/v1/sessions", Some(&body), &[201])
            .await?
            .1)
    }

    /// `GET /v1/sessions?active=&limit=`, most recently updated first.
    pub async fn list_sessions(
        &self,
        active: Option<bool>,
        limit: Option<i64>,
    ) -> Result<Vec<Session>> {
        let path = sessions_path(active, limit);
        let (_, a): (_, SessionsAnswer<Session>) =
            self.call(Method::GET, &path, NO_BODY, &[200]).await?;
        Ok(a.sessions)
    }

    /// [`Rest::list_sessions`] with each session's join code.
    pub async fn list_sessions_with_codes(
        &self,
        active: Option<bool>,
        limit: Option<i64>,
    ) -> Result<Vec<ListedSession>> {
        let path = sessions_path(active, limit);
        let (_, a): (_, SessionsAnswer<ListedSession>) =
            self.call(Method::GET, &path, NO_BODY, &[200]).await?;
        Ok(a.sessions)
    }

    /// `GET /v1/sessions/{id}/code` (members): the session's join code.
    pub async fn session_code(&self, id: &str) -> Result<JoinCode> {
        let path = format!("/v1/sessions/{}/code", encode(id));
        Ok(self.call(Method::GET, &path, NO_BODY, &[200]).await?.1)
    }

    /// `GET /v1/join/{code}` (no token needed): the session a join code
    /// stands for.
    pub async fn join_lookup(&self, code: &str) -> Result<JoinTarget> {
        let path = format!("/v1/join/{}", encode(code));
        Ok(self.call(Method::GET, &path, NO_BODY, &[200]).await?.1)
    }

    /// `POST /v1/auth/guest`: a guest account named `name` and its token.
    pub async fn guest(&self, name: &str) -> Result<GuestCreated> {
        let body = GuestBody { name };
        Ok(self
            .call(Method::POST, "/v1/auth/guest", Some(&body), &[201])
            .await?
            .1)
    }

    /// `POST /v1/auth/claim` as a guest: the account signs in with `email`
    /// and `password` from now on.
    pub async fn claim(&self, email: &str, password: &str) -> Result<Claimed> {
        let body = ClaimBody { email, password };
        Ok(self
            .call(Method::POST, "/v1/auth/claim", Some(&body), &[200])
            .await?
            .1)
    }

    /// `GET /v1/sessions/{id}`: the session's snapshot, as the caller sees it.
    pub async fn session(&self, id: &str) -> Result<Snapshot> {
        let path = format!("/v1/sessions/{}", encode(id));
        Ok(self.call(Method::GET, &path, NO_BODY, &[200]).await?.1)
    }

    /// `GET /v1/sessions/{id}/suggestions`: (version, items).
    pub async fn suggestions(
        &self,
        id: &str,
    ) -> Result<(i64, Vec<audotics_protocol::party::Suggested>)> {
        #[derive(Deserialize)]
        struct Answer {
            version: i64,
            items: Vec<audotics_protocol::party::Suggested>,
        }
        let path = format!("/v1/sessions/{}/suggestions", encode(id));
        let a: Answer = self.call(Method::GET, &path, NO_BODY, &[200]).await?.1;
        Ok((a.version, a.items))
    }

    /// `POST /v1/sessions/{id}/end` (host only): the ended session.
    pub async fn end_session(&self, id: &str) -> Result<Session> {
        let path = format!("/v1/sessions/{}/end", encode(id));
        let (_, a): (_, SessionAnswer) = self.call(Method::POST, &path, NO_BODY, &[200]).await?;
        Ok(a.session)
    }

    /// `GET /v1/sessions/{id}/updates?after=&limit=`: one page of the log.
    pub async fn updates(
        &self,
        id: &str,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> Result<UpdatesPage> {
        let mut path = format!("/v1/sessions/{}/updates", encode(id));
        let query: Vec<String> = [("after", after), ("limit", limit)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect();
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        Ok(self.call(Method::GET, &path, NO_BODY, &[200]).await?.1)
    }
}

/// `/v1/sessions` with its optional query.
fn sessions_path(active: Option<bool>, limit: Option<i64>) -> String {
    let mut query = Vec::new();
    if let Some(a) = active {
        query.push(format!("active={a}"));
    }
    if let Some(l) = limit {
        query.push(format!("limit={l}"));
    }
    match query.is_empty() {
        true => "/v1/sessions".to_owned(),
        false => format!("/v1/sessions?{}", query.join("&")),
    }
}

/// Percent-encode everything but RFC 3986's unreserved characters, so an
/// id or a search text is one path segment or one query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_queries_are_encoded_as_one_segment() {
        assert_eq!(encode("a b/c%_~"), "a%20b%2Fc%25_~");
        assert_eq!(encode("ü"), "%C3%BC");
    }

    #[test]
    fn the_ws_url_follows_the_base() {
        assert_eq!(
            Rest::new("http://127.0.0.1:9/").ws_url(),
            "ws://127.0.0.1:9/v1/ws"
        );
        assert_eq!(Rest::new("https://h").ws_url(), "wss://h/v1/ws");
    }

    #[test]
    fn a_track_upsert_body_is_flat() {
        let t = TrackBody {
            spotify_id: "s".into(),
            name: "n".into(),
            artists: vec!["a".into()],
            album: "b".into(),
            popularity: None,
            duration_ms: None,
            cover_url: None,
        };
        let v = serde_json::to_value(TrackUpsertBody {
            track: &t,
            features: None,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"spotifyId": "s", "name": "n", "artists": ["a"], "album": "b", "popularity": null, "durationMs": null, "coverUrl": null})
        );
    }
}
