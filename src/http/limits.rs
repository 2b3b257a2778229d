//! Rate limits on what one address or one account may do, with `governor`
//! (GCRA: a steady rate plus a burst). Refusals carry how long to wait,
//! which REST sends as `429` + `Retry-After` and the WebSocket as
//! `rate_limited`. Sign-in failures also back off per account: after
//! [`FREE_FAILURES`] wrong passwords in a row, each further attempt must
//! wait twice as long as the last (up to [`MAX_BACKOFF`]), whatever address
//! it comes from.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimits;
use crate::error::Error;

/// Wrong passwords in a row an account may have before sign-in backs off.
const FREE_FAILURES: u32 = 5;
/// The longest an account's sign-in is held back.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// One keyed limit: `per` events per `every`, all of them at once at most.
fn quota(per: u32, every: Duration) -> Quota {
    let n = NonZeroU32::new(per.max(1)).expect("at least one");
    Quota::with_period(every / n.get())
        .expect("a non-zero period")
        .allow_burst(n)
}

struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(per: u32, every: Duration) -> Keyed<K> {
        Keyed {
            limiter: DefaultKeyedRateLimiter::keyed(quota(per, every)),
        }
    }

    /// `Ok` to go ahead, or how long until the next event is allowed.
    fn check(&self, key: &K) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// A run of failed sign-ins of one account.
struct Failures {
    count: u32,
    /// No attempt is heard before this.
    until: Instant,
}

/// Every rate limit of one hub.
pub struct Limits {
    signups: Keyed<IpAddr>,
    signins: Keyed<IpAddr>,
    sessions: Keyed<String>,
    ops: Keyed<String>,
    lookups: Keyed<IpAddr>,
    failures: DashMap<String, Failures>,
}

/// The refusal for a wait of `d`.
pub fn too_many(d: Duration) -> Error {
    Error::TooManyRequests {
        retry_after: d.max(Duration::from_secs(1)),
    }
}

impl Limits {
    pub fn new(c: &RateLimits) -> Limits {
        let minute = Duration::from_secs(60);
        Limits {
            signups: Keyed::new(c.signups_per_minute, minute),
            signins: Keyed::new(c.signins_per_minute, minute),
            sessions: Keyed::new(c.sessions_per_hour, minute * 60),
            ops: Keyed::new(c.account_ops_per_sec, Duration::from_secs(1)),
            lookups: Keyed::new(c.join_lookups_per_minute, minute),
            failures: DashMap::new(),
        }
    }

    /// A registration, a guest account or a guest's claim from `ip`.
    pub fn signup(&self, ip: IpAddr) -> Result<(), Error> {
        self.signups.check(&ip).map_err(too_many)
    }

    /// A sign-in attempt from `ip` for the account `email`.
    pub fn signin(&self, ip: IpAddr, email: &str) -> Result<(), Error> {
        self.signins.check(&ip).map_err(too_many)?;
        if let Some(f) = self.failures.get(email) {
            let now = Instant::now();
            if f.until > now {
                return Err(too_many(f.until - now));
            }
        }
        Ok(())
    }

    /// The outcome of a sign-in of `email`: a success forgets its failures,
    /// a failure past the free ones doubles the wait.
    pub fn signed_in(&self, email: &str, ok: bool) {
        if ok {
            self.failures.remove(email);
            return;
        }
        let mut f = self.failures.entry(email.to_owned()).or_insert(Failures {
            count: 0,
            until: Instant::now(),
        });
        f.count += 1;
        if f.count >= FREE_FAILURES {
            let doublings = (f.count - FREE_FAILURES).min(16);
            let wait = Duration::from_secs(1 << doublings).min(MAX_BACKOFF);
            f.until = Instant::now() + wait;
        }
    }

    /// A session created by `user`.
    pub fn session(&self, user: &str) -> Result<(), Error> {
        self.sessions.check(&user.to_owned()).map_err(too_many)
    }

    /// A join-code lookup from `ip` (codes are short: this is what stops
    /// anyone from walking through them).
    pub fn join_lookup(&self, ip: IpAddr) -> Result<(), Error> {
        self.lookups.check(&ip).map_err(too_many)
    }

    /// An op by `user`, counted across all its connections (on this hub).
    pub fn op(&self, user: &str) -> bool {
        self.ops.check(&user.to_owned()).is_ok()
    }

    /// Forget keys that have been quiet long enough to be back at full
    /// allowance, so the maps do not grow without bound.
    pub fn prune(&self) {
        self.signups.limiter.retain_recent();
        self.signins.limiter.retain_recent();
        self.sessions.limiter.retain_recent();
        self.ops.limiter.retain_recent();
        self.lookups.limiter.retain_recent();
        let now = Instant::now();
        self.failures.retain(|_, f| f.until + MAX_BACKOFF > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::new(&RateLimits {
            signups_per_minute: 3,
            signins_per_minute: 100,
            sessions_per_hour: 2,
            account_ops_per_sec: 5,
            join_lookups_per_minute: 2,
        })
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_wait() {
        let l = limits();
        let ip = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..3 {
            l.signup(ip).unwrap();
        }
        match l.signup(ip) {
            Err(Error::TooManyRequests { retry_after }) => {
                assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}")
            }
            other => panic!("{other:?}"),
        }
        // Another address has its own allowance.
        l.signup(IpAddr::from([127, 0, 0, 2])).unwrap();
        l.session("u").unwrap();
        l.session("u").unwrap();
        assert!(l.session("u").is_err());
        assert!(l.session("v").is_ok());
        l.join_lookup(ip).unwrap();
        l.join_lookup(ip).unwrap();
        assert!(l.join_lookup(ip).is_err());
        assert!(l.join_lookup(IpAddr::from([127, 0, 0, 2])).is_ok());
    }

    #[test]
    fn failed_sign_ins_back_off_and_a_success_resets() {
        let l = limits();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..FREE_FAILURES - 1 {
            l.signin(ip, "a@x").unwrap();
            l.signed_in("a@x", false);
        }
        l.signin(ip, "a@x").unwrap();
        l.signed_in("a@x", false);
        assert!(
            l.signin(ip, "a@x").is_err(),
            "backs off after the free failures"
        );
        assert!(
            l.signin(ip, "b@x").is_ok(),
            "other accounts are not affected"
        );
        l.signed_in("a@x", true);
        assert!(l.signin(ip, "a@x").is_ok());
    }
}
