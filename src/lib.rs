//! Audotics Hub: the real-time heart of Audotics group listening.
//!
//! Map of the crate:
//! - [`app`]: build and run the whole service (`App::build`, `App::run`), used
//!   by `main` and by the tests alike.
//! - [`config`]: one typed configuration.
//! - [`http`]: REST under `/v1`, operator endpoints, problem+json errors.
//! - [`hub`]: the session hub (registry of per-session actors, the pure queue
//!   model).
//! - [`suggest`]: group suggestions, "up next for this room" (pure engine).
//! - [`db`]: Postgres — pool, embedded migrations (Prisma's tables exactly,
//!   plus the hub's own), the private cluster launcher, one module per
//!   aggregate.
//! - [`error`]: the one error type, mapped once to HTTP and to protocol
//!   frames; [`auth`]: passwords and tokens; [`metrics`]: Prometheus
//!   metrics; [`clock`]: time as the database keeps it.
//!
//! The wire types (frames, REST bodies, field rules) are the
//! `audotics-protocol` crate in `protocol/`.

pub mod app;
pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod suggest;
pub mod telemetry;

pub use app::App;
pub use config::Config;
