//! Integration tests: the real hub over real sockets against a real Postgres.

mod client;
mod helpers;
mod hub;
mod migrations;
mod rest;
mod hub_limits;
mod restart;
