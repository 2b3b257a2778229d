//! Time as the database keeps it: Prisma stores `DateTime` as
//! `TIMESTAMP(3)` in UTC, so the hub works in UTC milliseconds and what it
//! sends equals what it stores.

use chrono::{DateTime, NaiveDateTime, Utc};

/// A stored `TIMESTAMP(3)` as UTC.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Now, truncated to the millisecond precision the database keeps.
pub fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
