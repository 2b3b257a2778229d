//! A typed client of the Audotics hub, so tests and the load generator say
//! `register`, `join`, `add` instead of writing URLs and JSON by hand. Every
//! body and frame it sends or reads is a type of `audotics-protocol` (or a
//! small response struct here), so it cannot drift from what the hub speaks.
//!
//! Map of the crate:
//! - [`rest`]: [`Rest`], one typed method per REST route, problem+json
//!   errors as [`RestError`], and a raw escape hatch for malformed requests.
//! - [`msg`]: `ClientMsg` values from plain arguments.
//! - [`ws`]: [`Ws`], a WebSocket connection that sends [`ClientMsg`]s and
//!   reads [`ServerMsg`]s, with one helper per op and the waits tests need.
//!
//! [`ClientMsg`]: audotics_protocol::ClientMsg
//! [`ServerMsg`]: audotics_protocol::ServerMsg

pub mod msg;
pub mod rest;
pub mod ws;

pub use rest::{
    ClaimBody, Claimed, GuestBody, GuestCreated, LoggedIn, LoginBody, Me, PreferencesBody, Problem,
    RawResponse, RegisterBody, Registered, Rest, RestError, SessionBody, SessionCreated,
    TrackUpsertBody, TrackUpserted, UpdatesPage,
};
pub use ws::{Closed, Ws, QUIET, WAIT};
