//! Audotics session protocol v1: the one definition of what crosses the wire
//! between the hub and its clients. The hub, the typed client, the load
//! generator and the JSON Schemas under `protocol/schemas/` all come from
//! these types, so they cannot drift apart.
//!
//! Map of the crate:
//! - [`frames`]: WebSocket frames, client → server ([`ClientMsg`]) and
//!   server → client ([`ServerMsg`]), and the frame parser that names a bad
//!   field.
//! - [`model`]: the shapes both REST and frames show (a track, a snapshot,
//!   a user, …). None has a field for a secret.
//! - [`party`]: the listening party's shapes (now playing, history,
//!   settings, roles).
//! - [`ids`]: typed ids, parsed at the edge so a bad one never travels on.
//! - [`codes`]: error words and WebSocket close codes.
//! - [`rules`]: field rules (lengths, alphabets), shared by REST and frames.
//! - [`schema`]: JSON Schema generation for `protocol/schemas/`.

pub mod codes;
pub mod frames;
pub mod ids;
pub mod model;
pub mod party;
pub mod rules;
pub mod schema;

pub use codes::{CloseCode, ErrorCode};
pub use frames::*;
pub use ids::{EntryId, IdError, Req, SessionId, TrackId, UserId};
pub use rules::FieldError;
pub use schema::schemas;
