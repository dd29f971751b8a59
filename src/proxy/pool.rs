//! The HTTP/2 connections to `https://` proxies: many tunnels, one stream
//! each, over one TLS connection (RFC 9113 §8.5).
//!
//! One pool per [`ProxyConnectLayer`](crate::ProxyConnectLayer), shared by
//! every clone of it and of the services it makes, keeps the proxy
//! connections, keyed by the proxy's authority and credentials (so a
//! matcher that builds a fresh `Proxy` for each call still shares them).
//! The connections are the `h2` crate's, not hyper's: hyper's client
//! neither shows the proxy's `SETTINGS_MAX_CONCURRENT_STREAMS` nor says
//! that a connection received `GOAWAY`, and it queues streams above the
//! limit where a tunnel would wait for another to close.
//!
//! - A connection takes a new tunnel while fewer are open on it (counted
//!   here: each tunnel's [`Lease`] gives its slot back when the tunnel is
//!   dropped) than the proxy's latest `SETTINGS_MAX_CONCURRENT_STREAMS`
//!   allow. When every connection is full, a new one is opened; one whose
//!   proxy lowered the limit below its open tunnels takes none until enough
//!   have closed. Until a new connection's `SETTINGS` are in (known by the
//!   answer to a `PING` sent after the first `CONNECT`), the tunnels of a
//!   burst wait for it instead of each opening one.
//! - A connection that failed, closed, or received `GOAWAY` takes no new
//!   tunnel and is dropped from the pool; the tunnels already open on it
//!   run until the proxy ends them. A `CONNECT` the proxy never processed
//!   (above the `GOAWAY`'s last stream id, or reset with `REFUSED_STREAM`)
//!   is sent again once, on a connection that has room (a fresh one after
//!   `GOAWAY`), and [`ConnectionInfo::is_h2_retried`](crate::ConnectionInfo::is_h2_retried)
//!   says so. With optimistic data the bytes written behind the first
//!   `CONNECT` go again behind the second (`proxy::optimistic_h2`).
//! - A connection on which a `CONNECT` got no answer within the connect
//!   timeout takes no new tunnel either, and is dropped from the pool: it
//!   may be dead without a FIN or RST ever coming (a NAT or firewall that
//!   forgot it, a proxy host gone), and every tunnel sent there would wait
//!   out the timeout in turn, until the kernel gives up on the socket
//!   (minutes). The tunnels open on it run on; when the proxy was only slow
//!   (its own dial to the target), the cost is one new proxy connection.
//! - With `ProxyConnectLayer::with_h2_keep_alive`, a connection whose proxy
//!   leaves a `PING` unanswered for an interval is closed: it leaves the
//!   pool, and the tunnels on it fail as below.
//! - A connection that dies fails the tunnels on it: a `CONNECT` in flight
//!   with [`ErrorKind::ProxyClosed`](crate::ErrorKind::ProxyClosed), an open
//!   tunnel's reads and writes with an `io::Error` carrying a
//!   [`crate::Error`] that names the proxy; the next tunnel opens a fresh
//!   connection.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::SendStream;
use http::uri::Authority;
use http::Request;

use crate::route::{Auth, Proxy};

/// Streams a new connection may open before the proxy's `SETTINGS` arrive
/// (hyper's default too). RFC 9113 §6.5.2 recommends a limit of at least
/// 100, and nghttpx and most proxies advertise 100. The pool holds other
/// tunnels back until the proxy's own value is known.
pub(crate) const INITIAL_MAX_STREAMS: usize = 100;

type Sender = SendRequest<Bytes>;

/// Which proxy connections a tunnel may share: same proxy, same
/// credentials.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    authority: Authority,
    auth: Auth,
}

impl Key {
    pub(crate) fn new(proxy: &Proxy) -> Self {
        Key {
            authority: proxy.authority().clone(),
            auth: proxy.auth().clone(),
        }
    }
}

/// The HTTP/2 connections to proxies, shared by every clone of a
/// `ProxyConnectLayer` and of the services it makes.
#[derive(Clone, Default)]
pub(crate) struct Pool {
    inner: Arc<Mutex<HashMap<Key, Slot>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.lock();
        f.debug_map()
            .entries(map.iter().map(|(k, v)| (&k.authority, v.conns.len())))
            .finish()
    }
}

#[derive(Default)]
struct Slot {
    conns: Vec<Conn>,
    // Held while a new connection is dialed, so that a burst of tunnels
    // shares one connection instead of racing to open one each.
    opening: Arc<tokio::sync::Mutex<()>>,
    // The proxy last answered ALPN without `h2`: dial without queueing.
    h1_only: bool,
}

struct Conn {
    id: u64,
    send: Sender,
    in_flight: Arc<AtomicUsize>,
    // A `CONNECT` or a keep-alive `PING` on it went unanswered.
    silent: Silence,
    // The proxy's SETTINGS are in: until then the limit h2 reports is
    // `INITIAL_MAX_STREAMS`, not the proxy's, and only the tunnel that
    // opened the connection uses it.
    settled: bool,
}

/// Whether a connection takes a new stream.
#[derive(Debug, PartialEq, Eq)]
enum Room {
    Yes,
    /// At the proxy's `SETTINGS_MAX_CONCURRENT_STREAMS`, or h2 still
    /// holds a stream back.
    Full,
    /// Closed, failed, the proxy sent `GOAWAY`, or a `CONNECT` on it went
    /// unanswered: never again.
    Gone,
}

impl Conn {
    fn room(&mut self) -> Room {
        if self.silent.is_marked() {
            return Room::Gone;
        }
        // h2 turns every new stream away once the connection failed or
        // the proxy sent GOAWAY (RFC 9113 §6.8), and holds one back when
        // the last is still waiting for a free stream; a no-op waker
        // asks without registering interest.
        match self
            .send
            .poll_ready(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Err(_)) => Room::Gone,
            Poll::Pending => Room::Full,
            Poll::Ready(Ok(())) if !self.settled => Room::Full,
            // The proxy's limit, as its latest SETTINGS say: a connection
            // that lowered it below the tunnels open on it takes none
            // until enough have closed.
            Poll::Ready(Ok(()))
                if self.in_flight.load(Ordering::Acquire)
                    >= self.send.current_max_send_streams() =>
            {
                Room::Full
            }
            Poll::Ready(Ok(())) => Room::Yes,
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// One tunnel's claim on a slot of its proxy connection: dropping it frees
/// the slot.
pub(crate) struct Lease {
    in_flight: Arc<AtomicUsize>,
    silent: Silence,
}

/// Marks a proxy connection that stopped answering: it takes no new tunnel
/// and leaves the pool at the next look. Holds nothing of the pool, so a
/// task may keep it as long as the connection lives.
#[derive(Clone, Default)]
pub(crate) struct Silence(Arc<AtomicBool>);

impl Silence {
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_marked(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl Lease {
    /// How many tunnels are open on the connection right now.
    pub(crate) fn shared(&self) -> Arc<AtomicUsize> {
        self.in_flight.clone()
    }

    /// The `CONNECT` on this slot got no answer in time: its connection
    /// takes no new tunnel (see the module docs).
    pub(crate) fn mark_silent(&self) {
        self.silent.mark();
    }

    /// The connection's [`Silence`], for a task that outlives this tunnel.
    pub(crate) fn silence(&self) -> Silence {
        self.silent.clone()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("shared", &self.in_flight.load(Ordering::Relaxed))
            .finish()
    }
}

/// Opens a new connection to every tunnel when dropped; see
/// [`Pool::settle_on_drop`].
pub(crate) struct Settle {
    pool: Pool,
    proxy: Key,
    id: u64,
}

impl Drop for Settle {
    fn drop(&mut self) {
        if let Some(slot) = self.pool.lock().get_mut(&self.proxy) {
            if let Some(conn) = slot.conns.iter_mut().find(|c| c.id == self.id) {
                conn.settled = true;
            }
        }
    }
}

/// A `CONNECT` sent on a pooled connection.
pub(crate) struct Sent {
    pub(crate) conn: u64,
    pub(crate) stream: u32,
    pub(crate) lease: Lease,
    pub(crate) response: ResponseFuture,
    pub(crate) send: SendStream<Bytes>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Slot>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the request `make` builds on a live connection to `proxy`
    /// with room for it, if there is one; connections that went away are
    /// dropped on the way.
    pub(crate) fn send(
        &self,
        proxy: &Key,
        make: &(dyn Fn() -> Request<()> + Sync),
    ) -> Option<Sent> {
        let mut map = self.lock();
        let slot = map.get_mut(proxy)?;
        // Bounded: each turn drops a connection.
        loop {
            slot.conns.retain_mut(|c| c.room() != Room::Gone);
            let conn = slot
                .conns
                .iter_mut()
                .find_map(|c| (c.room() == Room::Yes).then_some(c))?;
            match Self::send_on(conn, make()) {
                Ok(sent) => return Some(sent),
                // It went away between the two looks: the next one, if any.
                Err(_) => {
                    let id = conn.id;
                    slot.conns.retain(|c| c.id != id);
                }
            }
        }
    }

    fn send_on(conn: &mut Conn, req: Request<()>) -> Result<Sent, h2::Error> {
        let (response, send) = conn.send.send_request(req, false)?;
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(Sent {
            conn: conn.id,
            stream: response.stream_id().as_u32(),
            lease: Lease {
                in_flight: conn.in_flight.clone(),
                silent: conn.silent.clone(),
            },
            response,
            send,
        })
    }

    /// Adds a new connection to `proxy` and sends `req` on it; other
    /// tunnels may use it once the guard of [`Pool::settle_on_drop`] is
    /// dropped.
    pub(crate) fn insert(
        &self,
        proxy: &Key,
        send: Sender,
        req: Request<()>,
    ) -> Result<Sent, h2::Error> {
        let mut map = self.lock();
        let slot = map.entry(proxy.clone()).or_default();
        slot.h1_only = false;
        slot.conns.retain_mut(|c| c.room() != Room::Gone);
        slot.conns.push(Conn {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            send,
            in_flight: Arc::new(AtomicUsize::new(0)),
            silent: Silence::default(),
            settled: false,
        });
        let last = slot.conns.len() - 1;
        Self::send_on(&mut slot.conns[last], req)
    }

    /// Opens connection `id` to every tunnel when the guard is dropped:
    /// the proxy's `SETTINGS` are in by then (or waiting for them failed,
    /// or was given up, and the connection stands on its own merits).
    pub(crate) fn settle_on_drop(&self, proxy: &Key, id: u64) -> Settle {
        Settle {
            pool: self.clone(),
            proxy: proxy.clone(),
            id,
        }
    }

    /// Forgets connection `id`: it failed, so no new tunnel may use it.
    pub(crate) fn evict(&self, proxy: &Key, id: u64) {
        if let Some(slot) = self.lock().get_mut(proxy) {
            slot.conns.retain(|c| c.id != id);
        }
    }

    /// The lock held while a new connection to `proxy` is opened.
    pub(crate) fn opener(&self, proxy: &Key) -> Arc<tokio::sync::Mutex<()>> {
        self.lock()
            .entry(proxy.clone())
            .or_default()
            .opening
            .clone()
    }

    /// Whether `proxy` last answered without `h2`.
    pub(crate) fn is_h1_only(&self, proxy: &Key) -> bool {
        self.lock().get(proxy).is_some_and(|s| s.h1_only)
    }

    pub(crate) fn set_h1_only(&self, proxy: &Key) {
        self.lock().entry(proxy.clone()).or_default().h1_only = true;
    }
}
