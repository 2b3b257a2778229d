//! Audotics Hub: the real-time heart of Audotics group listening.
//!
//! Map of the crate:
//! - [`app`]: build and run the whole service (`App::build`, `App::run`), used
//!   by `main` and by the tests alike.
//! - [`config`]: one typed configuration.
//! - [`http`]: REST under `/v1`, operator endpoints, problem+json errors.
//! - [`hub`]: the session hub (registry of per-session actors, the pure queue
//!   model).
//! - [`db`]: Postgres — pool, embedded migrations (Prisma's tables exactly,
//!   plus the hub's own), the private cluster launcher, one module per
//!   aggregate.
//! - [`model`]: the shapes clients see; [`error`]: the one error type;
//!   [`validate`]: field rules; [`auth`]: passwords and tokens;
//!   [`metrics`]: Prometheus metrics.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod telemetry;
pub mod validate;

pub use app::App;
pub use config::Config;
