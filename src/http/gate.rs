//! Who may hold a connection. Every accepted TCP connection takes a
//! [`Ticket`]; the gate keeps the total under a cap derived from the open
//! files limit (so the hub refuses with 503 long before descriptors run
//! out) and caps, per peer address, the connections that have not proven
//! themselves (no joined WebSocket: a half-sent request, an idle keep-alive,
//! a socket that never sent a byte). At a cap, the oldest idle unproven
//! connection is closed to make room, so a flood of idle sockets can never
//! lock out a real request such as `/healthz`; only when nothing can be
//! closed is the newcomer refused.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use audotics_protocol::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::hub::outbox::Outbox;

/// An idle unproven connection younger than this is not closed to make
/// room: a client that just connected has had no chance to speak yet.
const MIN_IDLE: Duration = Duration::from_millis(500);

/// How to close a connection from outside its task.
pub enum Kill {
    /// An HTTP connection: its task stops serving it.
    Http(CancellationToken),
    /// An upgraded WebSocket that has not joined: closed with 1013.
    Ws(Outbox),
}

struct Conn {
    ip: IpAddr,
    /// Requests being served right now (an HTTP connection is idle at 0).
    busy: usize,
    /// When it last started or finished a request (or was accepted).
    active: Instant,
    /// A joined WebSocket: authenticated, never closed to make room.
    proven: bool,
    kill: Kill,
}

#[derive(Default)]
struct State {
    next: u64,
    conns: HashMap<u64, Conn>,
    /// Unproven connections, oldest first (ids grow with time).
    unproven: BTreeSet<u64>,
    /// Unproven connections per peer address.
    per_ip: HashMap<IpAddr, usize>,
}

/// The connection gate. Cheap to share.
pub struct Gate {
    state: Mutex<State>,
    total_cap: usize,
    per_ip_cap: usize,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// The hub holds as many connections as it can.
    Total,
    /// This address holds as many unproven connections as it may.
    PerIp,
}

impl Gate {
    /// `total_cap` connections in all; `per_ip_cap` unproven ones per
    /// address (0: no per-address cap, for a hub behind a load balancer that
    /// enforces one).
    pub fn new(total_cap: usize, per_ip_cap: usize) -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::new(State::default()),
            total_cap: total_cap.max(1),
            per_ip_cap,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections held now.
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Admit a connection from `ip`, closing the oldest idle unproven one
    /// (of that address, or of anyone at the total cap) when a cap is
    /// reached; refuse when none can be closed.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, kill: CancellationToken) -> Result<Ticket, Full> {
        let now = Instant::now();
        let mut st = self.lock();
        if self.per_ip_cap > 0 && st.per_ip.get(&ip).copied().unwrap_or(0) >= self.per_ip_cap {
            evict(&mut st, now, Some(ip)).ok_or(Full::PerIp)?;
        }
        if st.conns.len() >= self.total_cap {
            evict(&mut st, now, None).ok_or(Full::Total)?;
        }
        let id = st.next;
        st.next += 1;
        st.conns.insert(
            id,
            Conn {
                ip,
                busy: 0,
                active: now,
                proven: false,
                kill: Kill::Http(kill),
            },
        );
        st.unproven.insert(id);
        *st.per_ip.entry(ip).or_default() += 1;
        Ok(Ticket {
            id,
            gate: self.clone(),
        })
    }

    fn release(&self, id: u64) {
        let mut st = self.lock();
        if let Some(c) = st.conns.remove(&id) {
            if !c.proven {
                forget_unproven(&mut st, id, c.ip);
            }
        }
    }
}

fn forget_unproven(st: &mut State, id: u64, ip: IpAddr) {
    st.unproven.remove(&id);
    if let Some(n) = st.per_ip.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            st.per_ip.remove(&ip);
        }
    }
}

/// Close the oldest idle unproven connection (of `ip`, if given) that has
/// been idle for [`MIN_IDLE`]; it stops counting at once. `None`: there is
/// none.
fn evict(st: &mut State, now: Instant, ip: Option<IpAddr>) -> Option<()> {
    let id = st.unproven.iter().copied().find(|id| {
        let c = &st.conns[id];
        ip.is_none_or(|ip| c.ip == ip) && c.busy == 0 && now.duration_since(c.active) >= MIN_IDLE
    })?;
    let c = st.conns.remove(&id).expect("unproven ids are held");
    forget_unproven(st, id, c.ip);
    match c.kill {
        Kill::Http(token) => token.cancel(),
        Kill::Ws(outbox) => outbox.kill(CloseCode::TryAgainLater),
    }
    Some(())
}

/// A connection's place at the gate; dropping it frees the place.
pub struct Ticket {
    id: u64,
    gate: Arc<Gate>,
}

impl Ticket {
    fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> T) -> T {
        f(&mut self.gate.lock(), self.id)
    }

    /// A request started being served.
    pub fn busy(&self) {
        self.with(|st, id| {
            if let Some(c) = st.conns.get_mut(&id) {
                c.busy += 1;
                c.active = Instant::now();
            }
        })
    }

    /// A request finished.
    pub fn idle(&self) {
        self.with(|st, id| {
            if let Some(c) = st.conns.get_mut(&id) {
                c.busy = c.busy.saturating_sub(1);
                c.active = Instant::now();
            }
        })
    }

    /// The connection is now a WebSocket waiting for its `join`: closing it
    /// to make room goes through its outbox.
    pub fn upgraded(&self, outbox: Outbox) {
        self.with(|st, id| {
            if let Some(c) = st.conns.get_mut(&id) {
                c.kill = Kill::Ws(outbox);
                c.busy = 0;
                c.active = Instant::now();
            }
        })
    }

    /// The WebSocket joined a session: it is authenticated and no longer
    /// counts against its address's unproven connections.
    pub fn prove(&self) {
        self.with(|st, id| {
            let ip = match st.conns.get_mut(&id) {
                Some(c) if !c.proven => {
                    c.proven = true;
                    c.ip
                }
                _ => return,
            };
            forget_unproven(st, id, ip);
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn at_the_per_ip_cap_the_oldest_idle_connection_makes_room() {
        let gate = Gate::new(100, 2);
        let (k1, k2) = (CancellationToken::new(), CancellationToken::new());
        let t1 = gate.admit(ip(1), k1.clone()).unwrap();
        let _t2 = gate.admit(ip(1), k2.clone()).unwrap();
        // Young connections are not closed to make room.
        assert!(matches!(
            gate.admit(ip(1), CancellationToken::new()),
            Err(Full::PerIp)
        ));
        // Other addresses are not affected.
        let _other = gate.admit(ip(2), CancellationToken::new()).unwrap();
        // Once idle long enough, the oldest goes.
        gate.lock().conns.get_mut(&t1.id).unwrap().active -= MIN_IDLE;
        gate.lock().conns.get_mut(&_t2.id).unwrap().active -= MIN_IDLE;
        let _t3 = gate.admit(ip(1), CancellationToken::new()).unwrap();
        assert!(k1.is_cancelled() && !k2.is_cancelled());
        assert_eq!(gate.len(), 3);
        drop(t1); // its place was already freed
        assert_eq!(gate.len(), 3);
    }

    #[test]
    fn busy_and_proven_connections_are_never_closed_to_make_room() {
        let gate = Gate::new(2, 0);
        let busy = gate.admit(ip(1), CancellationToken::new()).unwrap();
        busy.busy();
        let joined = gate.admit(ip(1), CancellationToken::new()).unwrap();
        joined.prove();
        for t in [&busy, &joined] {
            gate.lock().conns.get_mut(&t.id).unwrap().active -= MIN_IDLE * 2;
        }
        assert_eq!(
            gate.admit(ip(3), CancellationToken::new()).err(),
            Some(Full::Total)
        );
        busy.idle();
        gate.lock().conns.get_mut(&busy.id).unwrap().active -= MIN_IDLE;
        assert!(gate.admit(ip(3), CancellationToken::new()).is_ok());
    }

    #[test]
    fn proven_connections_do_not_count_per_address() {
        let gate = Gate::new(100, 1);
        let a = gate.admit(ip(1), CancellationToken::new()).unwrap();
        a.prove();
        let _b = gate.admit(ip(1), CancellationToken::new()).unwrap();
        assert_eq!(gate.lock().per_ip.get(&ip(1)), Some(&1));
        drop(a);
        assert_eq!(gate.len(), 1);
    }
}
