//! Typed ids. Each is parsed once, where it enters (a frame, a URL, a
//! database row the hub wrote), so code past the edge never handles an id
//! that Postgres could refuse or that names nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdError {
    Empty,
    TooLong,
    /// NUL or another control character: Postgres refuses NUL in text, and
    /// no id the hub or the old app makes has one.
    ControlCharacter,
    NotUuid,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::Empty => "must not be empty",
            IdError::TooLong => "must be at most 64 characters",
            IdError::ControlCharacter => "must not contain control characters",
            IdError::NotUuid => "must be a UUID",
        })
    }
}

impl std::error::Error for IdError {}

fn check_text_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        Err(IdError::Empty)
    } else if s.len() > crate::rules::ID_MAX {
        Err(IdError::TooLong)
    } else if s.chars().any(char::is_control) {
        Err(IdError::ControlCharacter)
    } else {
        Ok(())
    }
}

/// A TEXT primary key of Prisma's tables: 1–64 characters, no control
/// characters (the hub and the old app both make UUID strings).
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parse an id that came from outside.
            pub fn parse(s: &str) -> Result<$name, IdError> {
                check_text_id(s)?;
                Ok($name(s.to_owned()))
            }

            /// An id read back from the database or made by the hub:
            /// already known to be well formed.
            pub fn from_stored(s: String) -> $name {
                debug_assert!(check_text_id(&s).is_ok(), "malformed stored id {s:?}");
                $name(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<$name, IdError> {
                check_text_id(&s)?;
                Ok($name(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id!(
    /// A GroupSession's id.
    SessionId
);
text_id!(
    /// A User's id.
    UserId
);
text_id!(
    /// A Track's id (not its Spotify id).
    TrackId
);

/// A queue entry's id: a UUID the hub made when the entry was added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntryId(uuid::Uuid);

impl EntryId {
    pub fn parse(s: &str) -> Result<EntryId, IdError> {
        uuid::Uuid::parse_str(s)
            .map(EntryId)
            .map_err(|_| IdError::NotUuid)
    }

    /// A new entry id, time-ordered (UUID v7) like the hub's other row ids.
    pub fn new() -> EntryId {
        EntryId(uuid::Uuid::now_v7())
    }

    pub fn uuid(self) -> uuid::Uuid {
        self.0
    }
}

impl Default for EntryId {
    fn default() -> Self {
        EntryId::new()
    }
}

impl From<uuid::Uuid> for EntryId {
    fn from(u: uuid::Uuid) -> EntryId {
        EntryId(u)
    }
}

impl TryFrom<String> for EntryId {
    type Error = IdError;
    fn try_from(s: String) -> Result<EntryId, IdError> {
        EntryId::parse(&s)
    }
}

impl From<EntryId> for String {
    fn from(id: EntryId) -> String {
        id.0.to_string()
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A client-chosen op id: 1–64 characters without NUL, unique per user per
/// session. The key of exactly-once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Req(String);

impl Req {
    pub fn parse(s: &str) -> Result<Req, crate::FieldError> {
        crate::rules::req(s)?;
        Ok(Req(s.to_owned()))
    }

    /// A req read back from the database: it passed `parse` when it arrived.
    pub fn from_stored(s: String) -> Req {
        Req(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Req {
    type Error = crate::FieldError;
    fn try_from(s: String) -> Result<Req, crate::FieldError> {
        crate::rules::req(&s)?;
        Ok(Req(s))
    }
}

impl From<Req> for String {
    fn from(r: Req) -> String {
        r.0
    }
}

impl fmt::Display for Req {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_ids_refuse_what_postgres_would() {
        assert!(SessionId::parse("5e55a000-0000-4000-8000-000000000001").is_ok());
        assert_eq!(SessionId::parse(""), Err(IdError::Empty));
        assert_eq!(SessionId::parse("a\0b"), Err(IdError::ControlCharacter));
        assert_eq!(TrackId::parse(&"x".repeat(65)), Err(IdError::TooLong));
        let id: Result<UserId, _> = serde_json::from_str("\"u\\u0000\"");
        assert!(id.is_err());
    }

    #[test]
    fn entry_ids_are_uuids() {
        assert_eq!(EntryId::parse("not-a-uuid"), Err(IdError::NotUuid));
        let e = EntryId::new();
        assert_eq!(EntryId::parse(&e.to_string()), Ok(e));
    }

    #[test]
    fn reqs_follow_the_req_rule() {
        assert!(Req::parse("r-1").is_ok());
        assert_eq!(Req::parse("").unwrap_err().field, "req");
        assert!(Req::parse("r\0").is_err());
        assert!(Req::parse(&"r".repeat(65)).is_err());
    }
}
