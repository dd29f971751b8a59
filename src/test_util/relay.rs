//! [`FaultRelay`]: a TCP relay on loopback that breaks connections at a chosen byte.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::server::{self, AbortOnDrop};

/// How long the relay waits to dial its upstream before it drops the client.
const UPSTREAM_DIAL: Duration = Duration::from_secs(5);
/// Most bytes one read moves.
const BUF: usize = 16 * 1024;

/// Which way bytes flow through a [`FaultRelay`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the side that connected to the relay) to the upstream server.
    Up,
    /// From the upstream server to the client.
    Down,
}

/// What a [`FaultRelay`] does to a connection; set with [`FaultRelay::set_fault`] or
/// [`FaultRelayBuilder::fault`].
///
/// A fault placed at byte `at` of a direction forwards the first `at` bytes of that
/// direction untouched, and hits before byte `at` (counting from 0) is forwarded: at `0`
/// it hits as soon as the upstream connection is made. Bytes the other way flow
/// normally until then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelayFault {
    /// Reset both connections (`SO_LINGER` 0, so each peer reads a TCP RST).
    Reset {
        /// The direction whose byte count triggers the fault.
        direction: Direction,
        /// The byte offset in that direction.
        at: u64,
    },
    /// Stop forwarding both ways and keep both sockets open until the relay is dropped.
    Stall {
        /// The direction whose byte count triggers the fault.
        direction: Direction,
        /// The byte offset in that direction.
        at: u64,
    },
    /// Shut down the write side towards the receiver of `direction` (it reads an end of
    /// stream) and stop forwarding that way; the other direction keeps flowing.
    HalfClose {
        /// The direction that is closed.
        direction: Direction,
        /// The byte offset in that direction.
        at: u64,
    },
    /// Close both connections normally (FIN both ways).
    Drop {
        /// The direction whose byte count triggers the fault.
        direction: Direction,
        /// The byte offset in that direction.
        at: u64,
    },
    /// Forward every byte, both ways, one byte per `interval`.
    Drip {
        /// The pause after each byte.
        interval: Duration,
    },
}

impl RelayFault {
    /// The direction and offset the fault is placed at, if it has one.
    fn point(&self) -> Option<(Direction, u64)> {
        match *self {
            RelayFault::Reset { direction, at }
            | RelayFault::Stall { direction, at }
            | RelayFault::HalfClose { direction, at }
            | RelayFault::Drop { direction, at } => Some((direction, at)),
            RelayFault::Drip { .. } => None,
        }
    }
}

/// One read the relay forwarded: the sender's writes, roughly, on loopback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Chunk {
    /// The connection, numbered from 0 in the order accepted.
    pub connection: usize,
    /// The way the bytes went.
    pub direction: Direction,
    /// The offset of the chunk's first byte in its connection and direction.
    pub offset: u64,
    /// How many bytes.
    pub len: usize,
}

/// A TCP relay on `127.0.0.1` in front of an upstream address, that injects one
/// [`RelayFault`] per connection, for tests of how a client fails.
///
/// Put it between a client and its first hop (a proxy, a server) and point the client at
/// [`addr`](FaultRelay::addr). Each accepted connection dials the upstream and takes the
/// fault set at that moment; with none it forwards both ways until either side closes.
/// The relay counts connections and bytes each way, and records each forwarded read as a
/// [`Chunk`], so a test can measure a clean exchange and then walk its byte offsets.
///
/// It never panics on I/O: a failed read, write or upstream dial ends that connection
/// alone. It stops when dropped: the listener closes and every connection, stalled ones
/// included, is closed.
///
/// # Example
///
/// A reset at byte 0 of the answer, between a client and a [`TestProxy`](super::TestProxy):
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tower_tunnel::test_util::{Direction, FaultRelay, RelayFault, TestProxy};
///
/// let proxy = TestProxy::start().await?;
/// let relay = FaultRelay::builder(proxy.addr())
///     .fault(RelayFault::Reset { direction: Direction::Down, at: 0 })
///     .start()
///     .await?;
///
/// let mut tcp = tokio::net::TcpStream::connect(relay.addr()).await?;
/// tcp.write_all(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n").await?;
/// let mut answer = Vec::new();
/// let read = tcp.read_to_end(&mut answer).await;
/// assert!(read.is_err() || answer.is_empty());
/// assert_eq!(relay.connections(), 1);
/// assert_eq!(relay.bytes(Direction::Down), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FaultRelay {
    addr: SocketAddr,
    state: Arc<State>,
    _accept: AbortOnDrop,
}

#[derive(Debug)]
struct State {
    upstream: SocketAddr,
    fault: Mutex<Option<RelayFault>>,
    connections: AtomicUsize,
    up: AtomicU64,
    down: AtomicU64,
    chunks: Mutex<Vec<Chunk>>,
    /// Connections numbered below this are stalled ([`FaultRelay::stall_open`]).
    stall_below: AtomicUsize,
    stalled: tokio::sync::Notify,
}

impl State {
    /// Whether [`FaultRelay::stall_open`] stalled connection `id`.
    fn is_stalled(&self, id: usize) -> bool {
        id < self.stall_below.load(Ordering::SeqCst)
    }

    /// Resolves once connection `id` is stalled by [`FaultRelay::stall_open`].
    async fn stall(&self, id: usize) {
        loop {
            let notified = self.stalled.notified();
            tokio::pin!(notified);
            // Registered before the check, so a stall between the two is not missed.
            notified.as_mut().enable();
            if self.is_stalled(id) {
                return;
            }
            notified.await;
        }
    }
}

impl FaultRelay {
    /// Starts a relay to `upstream` with no fault.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultRelay> {
        Self::builder(upstream).start().await
    }

    /// Returns a builder for a relay to `upstream`.
    pub fn builder(upstream: SocketAddr) -> FaultRelayBuilder {
        FaultRelayBuilder {
            upstream,
            fault: None,
        }
    }

    /// The address the relay listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fault for connections accepted from now on (`None`: forward faithfully).
    pub fn set_fault(&self, fault: Option<RelayFault>) {
        *self
            .state
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// How many connections the relay has accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// How many bytes the relay has forwarded in `direction`, over all connections.
    pub fn bytes(&self, direction: Direction) -> u64 {
        match direction {
            Direction::Up => self.state.up.load(Ordering::SeqCst),
            Direction::Down => self.state.down.load(Ordering::SeqCst),
        }
    }

    /// Every read forwarded so far, in order.
    pub fn chunks(&self) -> Vec<Chunk> {
        self.state
            .chunks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stalls every connection accepted so far, at once and both ways: nothing more is
    /// forwarded and both sockets stay open, with no FIN or RST, until the relay is
    /// dropped; as a NAT or a firewall that forgot the connection, or a peer whose host
    /// is gone. Connections accepted later are relayed as usual (with the fault set).
    ///
    /// Bytes read but not yet written when the stall comes are dropped.
    pub fn stall_open(&self) {
        let accepted = self.state.connections.load(Ordering::SeqCst);
        self.state.stall_below.fetch_max(accepted, Ordering::SeqCst);
        self.state.stalled.notify_waiters();
    }
}

/// Configures a [`FaultRelay`]; made by [`FaultRelay::builder`].
#[derive(Debug)]
pub struct FaultRelayBuilder {
    upstream: SocketAddr,
    fault: Option<RelayFault>,
}

impl FaultRelayBuilder {
    /// Injects `fault` into every connection (until [`FaultRelay::set_fault`] changes it).
    pub fn fault(mut self, fault: RelayFault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Binds `127.0.0.1:0` and starts relaying on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound.
    pub async fn start(self) -> io::Result<FaultRelay> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: self.upstream,
            fault: Mutex::new(self.fault),
            connections: AtomicUsize::new(0),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            chunks: Mutex::default(),
            stall_below: AtomicUsize::new(0),
            stalled: tokio::sync::Notify::new(),
        });
        let shared = Arc::clone(&state);
        let accept = server::spawn_accept_loop(listener, move |client, _peer| {
            let id = shared.connections.fetch_add(1, Ordering::SeqCst);
            let fault = *shared.fault.lock().unwrap_or_else(PoisonError::into_inner);
            relay(client, id, fault, Arc::clone(&shared))
        });
        Ok(FaultRelay {
            addr,
            state,
            _accept: accept,
        })
    }
}

/// How one direction's pump ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The sender closed (or the direction was half-closed): the receiver got a FIN.
    Closed,
    /// A read or write failed.
    Failed,
    /// The fault point was reached.
    Fault,
    /// [`FaultRelay::stall_open`] stalled the connection.
    Stalled,
}

async fn relay(mut client: TcpStream, id: usize, fault: Option<RelayFault>, state: Arc<State>) {
    let upstream = tokio::time::timeout(UPSTREAM_DIAL, TcpStream::connect(state.upstream)).await;
    let Ok(Ok(mut server)) = upstream else {
        return;
    };
    let _ = server.set_nodelay(true);
    let end = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let up = pump(cr, sw, Direction::Up, id, fault, &state);
        let down = pump(sr, cw, Direction::Down, id, fault, &state);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let end = tokio::select! {
                end = &mut up, if !up_done => { up_done = true; end }
                end = &mut down, if !down_done => { down_done = true; end }
            };
            if end != End::Closed || (up_done && down_done) {
                break end;
            }
        }
    };
    match (end, fault) {
        (End::Fault, Some(RelayFault::Reset { .. })) => {
            // A zero linger never blocks the thread on close: the kernel drops the
            // socket's buffers and sends RST at once. (`set_zero_linger` needs a newer
            // tokio than the crate's minimum.)
            #[allow(deprecated)]
            {
                let _ = client.set_linger(Some(Duration::ZERO));
                let _ = server.set_linger(Some(Duration::ZERO));
            }
        }
        // Held open until the relay is dropped, which aborts this task.
        (End::Stalled, _) | (End::Fault, Some(RelayFault::Stall { .. })) => {
            std::future::pending::<()>().await;
        }
        _ => {}
    }
}

/// Forwards `from` to `to` until the sender closes, an error, or the fault point.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    direction: Direction,
    id: usize,
    fault: Option<RelayFault>,
    state: &State,
) -> End {
    let stop = fault.and_then(|f| f.point()).filter(|p| p.0 == direction);
    let drip = match fault {
        Some(RelayFault::Drip { interval }) => Some(interval),
        _ => None,
    };
    let counter = match direction {
        Direction::Up => &state.up,
        Direction::Down => &state.down,
    };
    let mut buf = vec![0; BUF];
    let mut sent: u64 = 0;
    // Each turn forwards at least one byte or ends, so the loop ends with the stream.
    loop {
        let mut room = BUF;
        if let Some((_, at)) = stop {
            let left = at.saturating_sub(sent);
            if left == 0 {
                return match fault {
                    Some(RelayFault::HalfClose { .. }) => {
                        let _ = to.shutdown().await;
                        End::Closed
                    }
                    _ => End::Fault,
                };
            }
            room = room.min(usize::try_from(left).unwrap_or(BUF));
        }
        let read = tokio::select! {
            read = from.read(&mut buf[..room]) => read,
            () = state.stall(id) => return End::Stalled,
        };
        if state.is_stalled(id) {
            return End::Stalled;
        }
        let n = match read {
            Ok(0) => {
                let _ = to.shutdown().await;
                return End::Closed;
            }
            Ok(n) => n,
            Err(_) => return End::Failed,
        };
        state
            .chunks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Chunk {
                connection: id,
                direction,
                offset: sent,
                len: n,
            });
        let written = match drip {
            Some(interval) => {
                let mut result = Ok(());
                for byte in &buf[..n] {
                    result = to.write_all(std::slice::from_ref(byte)).await;
                    if result.is_err() {
                        break;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(interval).await;
                }
                result
            }
            None => {
                let result = to.write_all(&buf[..n]).await;
                if result.is_ok() {
                    counter.fetch_add(n as u64, Ordering::SeqCst);
                }
                result
            }
        };
        if written.is_err() {
            return End::Failed;
        }
        sent += n as u64;
    }
}
