//! An HTTP/2 proxy written frame by frame (RFC 9113 §4, §6), for what no HTTP/2 library
//! lets a server do on cue: lower `SETTINGS_MAX_CONCURRENT_STREAMS` in the middle of a
//! connection, send `GOAWAY` with a last stream id below a stream in flight, or refuse a
//! stream with `REFUSED_STREAM`. It answers `CONNECT` with `200` and carries no tunnel
//! data: the tests look at how the client opens tunnels, not at what goes through them.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the proxy does with one `CONNECT` stream.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// `200`: the tunnel is open.
    Answer,
    /// `200`, then `SETTINGS` lowering `SETTINGS_MAX_CONCURRENT_STREAMS` to this.
    AnswerThenLower(u32),
    /// `GOAWAY` (`NO_ERROR`) naming the last stream answered: this one was never
    /// processed.
    GoAway,
    /// `RST_STREAM` with `REFUSED_STREAM`.
    Refuse,
}

/// A loopback `https://` proxy (ALPN `h2`, the test certificate) that follows a script
/// per connection: the `n`th connection's `CONNECT` streams get `scripts[n]` in order,
/// and [`Action::Answer`] past its end or for connections past the scripts.
pub struct RawH2Proxy {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    streams: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Drop for RawH2Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RawH2Proxy {
    /// Starts the proxy; every connection first advertises `max_streams`.
    pub async fn start(max_streams: u32, scripts: Vec<Vec<Action>>) -> RawH2Proxy {
        Self::start_with_settings_delay(max_streams, scripts, Duration::ZERO).await
    }

    /// The same, each connection sending its `SETTINGS` (and so answering anything)
    /// only `delay` after the client's preface, as a slow or distant proxy would.
    pub async fn start_with_settings_delay(
        max_streams: u32,
        scripts: Vec<Vec<Action>>,
        delay: Duration,
    ) -> RawH2Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let streams = Arc::new(AtomicUsize::new(0));
        let acceptor = tower_tunnel::test_util::tls_acceptor(vec![b"h2".to_vec()]);
        let scripts = Arc::new(Mutex::new(scripts.into_iter()));
        let (conns, strs) = (connections.clone(), streams.clone());
        let accept = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let script = scripts.lock().unwrap().next().unwrap_or_default();
                conns.fetch_add(1, Ordering::SeqCst);
                let (acceptor, strs) = (acceptor.clone(), strs.clone());
                tasks.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // Bounded: a connection lives at most as long as a test.
                    let _ = tokio::time::timeout(
                        Duration::from_secs(30),
                        serve(tls, max_streams, script, strs, delay),
                    )
                    .await;
                });
            }
        });
        RawH2Proxy {
            addr,
            connections,
            streams,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// TLS connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// `CONNECT` streams received, on every connection.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }
}

const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const REFUSED_STREAM: u32 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn max_streams_settings(max: u32) -> Vec<u8> {
    let mut payload = MAX_CONCURRENT_STREAMS.to_be_bytes().to_vec();
    payload.extend_from_slice(&max.to_be_bytes());
    frame(SETTINGS, 0, 0, &payload)
}

async fn serve<IO>(
    mut io: IO,
    max_streams: u32,
    script: Vec<Action>,
    streams: Arc<AtomicUsize>,
    delay: Duration,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut preface = [0; 24];
    if io.read_exact(&mut preface).await.is_err() {
        return;
    }
    tokio::time::sleep(delay).await;
    // The server's preface: its SETTINGS first (RFC 9113 §3.4).
    if io
        .write_all(&max_streams_settings(max_streams))
        .await
        .is_err()
    {
        return;
    }
    let mut script = script.into_iter();
    let mut last_answered = 0u32;
    loop {
        let mut head = [0; 9];
        if io.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; len];
        if io.read_exact(&mut payload).await.is_err() {
            return;
        }
        let reply = match kind {
            SETTINGS if flags & ACK == 0 => frame(SETTINGS, ACK, 0, &[]),
            PING if flags & ACK == 0 => frame(PING, ACK, 0, &payload),
            HEADERS => {
                streams.fetch_add(1, Ordering::SeqCst);
                // HPACK: index 8 of the static table is `:status: 200`.
                let ok = frame(HEADERS, END_HEADERS, stream, &[0x88]);
                match script.next().unwrap_or(Action::Answer) {
                    Action::Answer => {
                        last_answered = stream;
                        ok
                    }
                    Action::AnswerThenLower(max) => {
                        last_answered = stream;
                        [ok, max_streams_settings(max)].concat()
                    }
                    Action::GoAway => {
                        let mut payload = last_answered.to_be_bytes().to_vec();
                        payload.extend_from_slice(&0u32.to_be_bytes());
                        frame(GOAWAY, 0, 0, &payload)
                    }
                    Action::Refuse => frame(RST_STREAM, 0, stream, &REFUSED_STREAM.to_be_bytes()),
                }
            }
            // Tunnel bytes, window updates, resets: nothing to answer.
            _ => continue,
        };
        if io.write_all(&reply).await.is_err() {
            return;
        }
    }
}
