//! The accept loop shared by the fixtures, and the registry of connections a proxy made.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A spawned task that is aborted when this handle is dropped.
#[derive(Debug)]
pub(super) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Accepts connections on `listener` and runs `handle` for each in its own task.
///
/// The connection tasks live in a `JoinSet` owned by the accept task, so aborting the
/// accept task (dropping the returned handle) aborts every connection with it.
pub(super) fn spawn_accept_loop<F, Fut>(listener: TcpListener, handle: F) -> AbortOnDrop
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    AbortOnDrop(tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Small writes (SlowDrip, interim responses) must leave at once.
                        let _ = stream.set_nodelay(true);
                        connections.spawn(handle(stream, peer));
                    }
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }))
}

/// The sockets test proxies opened towards their targets, keyed by the connection's
/// address pair (the proxy's local address, the target's address), with the
/// registration's number.
///
/// A proxied connection's local address is the peer address the target sees, which is how
/// [`TestOrigin`](super::TestOrigin) tells proxied connections from direct ones. The pair,
/// not the port alone, is the key, and a guard removes only its own registration: a port
/// that the system hands to a new connection while an old guard is still alive cannot be
/// unregistered by that old guard.
static PROXIED: Mutex<BTreeMap<(SocketAddr, SocketAddr), u64>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

fn proxied() -> MutexGuard<'static, BTreeMap<(SocketAddr, SocketAddr), u64>> {
    PROXIED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks the connection `local -> remote` as a proxy's outbound socket until the returned
/// guard is dropped.
pub(super) fn register_proxied(local: SocketAddr, remote: SocketAddr) -> ProxiedGuard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    proxied().insert((local, remote), id);
    ProxiedGuard((local, remote), id)
}

/// Whether the connection from `peer` to `local` is a proxy's outbound socket; forgets it,
/// since each connection is asked once.
pub(super) fn take_proxied(peer: SocketAddr, local: SocketAddr) -> bool {
    proxied().remove(&(peer, local)).is_some()
}

/// Removes its registration when the proxied connection ends, so a later direct connection
/// that reuses the port is not mistaken for a proxied one.
#[derive(Debug)]
pub(super) struct ProxiedGuard((SocketAddr, SocketAddr), u64);

impl Drop for ProxiedGuard {
    fn drop(&mut self) {
        let mut map = proxied();
        if map.get(&self.0) == Some(&self.1) {
            map.remove(&self.0);
        }
    }
}
