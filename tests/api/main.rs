//! Integration tests: the real hub over real sockets against a real Postgres.

mod accounts;
mod cluster;
mod hardening;
mod helpers;
mod hub;
mod hub_limits;
mod joining;
mod loading;
mod migrations;
mod nats;
mod outside;
mod party;
mod process;
mod rest;
mod restart;
mod upnext;
