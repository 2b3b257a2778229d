//! Integration tests: the real hub over real sockets against a real Postgres.

mod helpers;
mod migrations;
mod rest;
