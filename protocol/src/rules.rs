//! Field rules shared by REST and the WebSocket protocol, so both refuse the
//! same input with the same words. Each check names the field it guards;
//! nothing that passes can be refused by Postgres (no NUL, no overlong text).

use std::fmt;

/// A field that breaks a rule: `field` names it (camelCase, dotted for
/// nested fields), `message` says which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

pub type Result<T, E = FieldError> = std::result::Result<T, E>;

pub const REQ_MAX: usize = 64;
pub const ID_MAX: usize = 64;
pub const TRACK_NAME_MAX: usize = 500;
pub const ARTIST_MAX: usize = 200;
pub const ARTISTS_MAX: usize = 50;
pub const SPOTIFY_ID_MAX: usize = 64;
pub const NAME_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 2000;
pub const EMAIL_MAX: usize = 320;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;
pub const LIST_MAX: usize = 500;
pub const KIND_MAX: usize = 32;

/// A trimmed, non-empty string of at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}

pub fn email(value: &str) -> Result<String> {
    let v = text("email", value, EMAIL_MAX)?.to_lowercase();
    let ok = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !v.contains(' ')
        }
        None => false,
    };
    if !ok {
        return Err(FieldError::new("email", "must be an email address"));
    }
    Ok(v)
}

pub fn password(value: &str) -> Result<()> {
    let n = value.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        return Err(FieldError::new(
            "password",
            format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

/// The client's request id: 1–64 characters, no NUL.
pub fn req(value: &str) -> Result<()> {
    if value.is_empty() || value.chars().count() > REQ_MAX {
        return Err(FieldError::new(
            "req",
            format!("must be 1 to {REQ_MAX} characters"),
        ));
    }
    if value.contains('\0') {
        return Err(FieldError::new("req", "must not contain NUL"));
    }
    Ok(())
}

pub fn spotify_id(value: &str) -> Result<String> {
    let v = text("spotifyId", value, SPOTIFY_ID_MAX)?;
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':')
    {
        return Err(FieldError::new(
            "spotifyId",
            "must be letters, digits, '_', '-' or ':'",
        ));
    }
    Ok(v)
}

pub fn artists(values: &[String]) -> Result<Vec<String>> {
    if values.is_empty() || values.len() > ARTISTS_MAX {
        return Err(FieldError::new(
            "artists",
            format!("must list 1 to {ARTISTS_MAX} names"),
        ));
    }
    values
        .iter()
        .map(|a| text("artists", a, ARTIST_MAX))
        .collect()
}

pub fn popularity(value: i32) -> Result<i32> {
    if !(0..=100).contains(&value) {
        return Err(FieldError::new("popularity", "must be 0 to 100"));
    }
    Ok(value)
}

/// A track's length: 1 s to 6 h, in milliseconds.
pub fn duration_ms(value: i64) -> Result<i64> {
    if !(1_000..=6 * 3_600_000).contains(&value) {
        return Err(FieldError::new(
            "durationMs",
            "must be 1000 to 21600000 (1 s to 6 h)",
        ));
    }
    Ok(value)
}

/// Longest cover URL.
pub const COVER_URL_MAX: usize = 1024;

/// A cover art URL: `https://`, printable, at most [`COVER_URL_MAX`] bytes.
pub fn cover_url(value: &str) -> Result<String> {
    let bad = |m: &str| Err(FieldError::new("coverUrl", m));
    if value.len() > COVER_URL_MAX {
        return bad("at most 1024 bytes");
    }
    if !value.starts_with("https://") || value.len() <= "https://".len() {
        return bad("must be an https:// URL");
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("must not contain spaces or control characters");
    }
    Ok(value.to_owned())
}

/// A share of online members in (0, 1].
pub fn share(field: &str, value: f64) -> Result<f64> {
    if !(value > 0.0 && value <= 1.0) {
        return Err(FieldError::new(field, "must be more than 0 and at most 1"));
    }
    Ok(value)
}

/// The interaction kinds the old app's recommendation code weighs (its
/// content filter reads exactly these; its collaborative filter weighs
/// like, play, skip and dislike): the only ones stored.
pub const INTERACTION_KINDS: [&str; 7] = [
    "play",
    "skip",
    "like",
    "dislike",
    "save",
    "share",
    "add_to_playlist",
];

/// An interaction kind: one of [`INTERACTION_KINDS`], after trimming.
pub fn kind(value: &str) -> Result<String> {
    let kind = text("kind", value, KIND_MAX)?;
    if !INTERACTION_KINDS.contains(&kind.as_str()) {
        return Err(FieldError::new(
            "kind",
            format!("must be one of {}", INTERACTION_KINDS.join(", ")),
        ));
    }
    Ok(kind)
}

/// A list of short strings (preferences), each 1–200 characters.
pub fn string_list(field: &str, values: &[String]) -> Result<Vec<String>> {
    if values.len() > LIST_MAX {
        return Err(FieldError::new(
            field,
            format!("must have at most {LIST_MAX} items"),
        ));
    }
    values.iter().map(|v| text(field, v, NAME_MAX)).collect()
}

/// A JSON value with no NUL in any key or string: Postgres refuses `\u0000`
/// in `jsonb`.
pub fn json_without_nul(field: &str, value: &serde_json::Value) -> Result<()> {
    use serde_json::Value;
    let nul = |s: &str| s.contains('\0');
    let bad = match value {
        Value::String(s) => nul(s),
        Value::Array(items) => return items.iter().try_for_each(|v| json_without_nul(field, v)),
        Value::Object(m) => {
            if m.keys().any(|k| nul(k)) {
                true
            } else {
                return m.values().try_for_each(|v| json_without_nul(field, v));
            }
        }
        _ => false,
    };
    if bad {
        return Err(FieldError::new(field, "must not contain NUL"));
    }
    Ok(())
}

pub fn uuid(field: &str, value: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(value).map_err(|_| FieldError::new(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert_eq!(text("name", "  a b ", 10).unwrap(), "a b");
        assert!(text("name", "   ", 10).is_err());
        assert!(text("name", &"x".repeat(11), 10).is_err());
        assert!(text("name", "a\u{0}b", 10).is_err());
        let e = text("name", "", 3).unwrap_err();
        assert_eq!(e.field, "name");
    }

    #[test]
    fn email_rules() {
        assert_eq!(email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "@x", "ann@", "a@b@c", "a b@c"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn req_and_artists_rules() {
        assert!(req("r1").is_ok());
        assert!(req("").is_err());
        assert!(req("a\0b").is_err());
        assert!(req(&"r".repeat(65)).is_err());
        assert!(req(&"r".repeat(64)).is_ok());
        assert!(artists(&[]).is_err());
        assert!(artists(&vec!["a".into(); 51]).is_err());
        assert!(artists(&["a".repeat(201)]).is_err());
        assert_eq!(artists(&[" A ".into()]).unwrap(), vec!["A"]);
        assert!(spotify_id("4uLU6hMCjMI75M1A2tKUQC").is_ok());
        assert!(spotify_id("bad id").is_err());
        assert!(popularity(101).is_err());
        assert_eq!(kind(" like ").unwrap(), "like");
        let nul_key = serde_json::json!({"energy": 1, "a\u{0}": 2});
        assert!(json_without_nul("features", &nul_key).is_err());
        let nul_deep = serde_json::json!({"x": ["ok", {"y": "b\u{0}"}]});
        assert!(json_without_nul("features", &nul_deep).is_err());
        assert!(json_without_nul("features", &serde_json::json!({"x": [1, "ok"]})).is_ok());
        assert!(kind("Like").is_err());
        assert!(kind("wave")
            .unwrap_err()
            .message
            .contains("add_to_playlist"));
        assert_eq!(kind("add_to_playlist").unwrap(), "add_to_playlist");
    }
}
