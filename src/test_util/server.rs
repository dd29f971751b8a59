//! The accept loop shared by the fixtures, and the registry of connections a proxy made.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
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

/// Local addresses of the sockets test proxies opened towards their targets.
///
/// A proxied connection's local address is the peer address the target sees, which is how
/// [`TestOrigin`](super::TestOrigin) tells proxied connections from direct ones.
static PROXIED: Mutex<BTreeSet<SocketAddr>> = Mutex::new(BTreeSet::new());

fn proxied() -> MutexGuard<'static, BTreeSet<SocketAddr>> {
    PROXIED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks `local` as a proxy's outbound socket until the returned guard is dropped.
pub(super) fn register_proxied(local: SocketAddr) -> ProxiedGuard {
    proxied().insert(local);
    ProxiedGuard(local)
}

/// Whether `peer` is a proxy's outbound socket; forgets it, since each peer is asked once.
pub(super) fn take_proxied(peer: SocketAddr) -> bool {
    proxied().remove(&peer)
}

/// Removes a registration when the proxied connection ends, so a later direct connection
/// that reuses the port is not mistaken for a proxied one.
#[derive(Debug)]
pub(super) struct ProxiedGuard(SocketAddr);

impl Drop for ProxiedGuard {
    fn drop(&mut self) {
        proxied().remove(&self.0);
    }
}
