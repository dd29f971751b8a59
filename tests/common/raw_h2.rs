//! An HTTP/2 proxy written frame by frame (RFC 9113 §4, §6), for what no HTTP/2 library
//! lets a server do on cue: lower `SETTINGS_MAX_CONCURRENT_STREAMS` in the middle of a
//! connection, send `GOAWAY` with a last stream id below a stream in flight, or refuse a
//! stream with `REFUSED_STREAM`. It answers `CONNECT` with `200` and carries no tunnel
//! data (the tests look at how the client opens tunnels), unless told to tunnel to a
//! fixed address; it logs every DATA frame's bytes per stream.

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
    /// `RST_STREAM` with `REFUSED_STREAM` once the stream's first DATA is in.
    RefuseAfterData,
    /// `RST_STREAM` with `INTERNAL_ERROR`: the stream may have been processed.
    Reset,
    /// No answer at all.
    Silence,
    /// `200`, then a tunnel to this address: DATA in goes to it, what it sends comes
    /// back as DATA (small tunnels only: no flow control beyond the initial windows).
    Tunnel(SocketAddr),
}

/// A loopback `https://` proxy (ALPN `h2`, the test certificate) that follows a script
/// per connection: the `n`th connection's `CONNECT` streams get `scripts[n]` in order,
/// and [`Action::Answer`] past its end or for connections past the scripts.
pub struct RawH2Proxy {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    streams: Arc<AtomicUsize>,
    data: Data,
    accept: JoinHandle<()>,
}

/// The DATA bytes each stream carried in: (connection index, stream id, bytes).
type Data = Arc<Mutex<Vec<(usize, u32, Vec<u8>)>>>;

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
        let data = Data::default();
        let acceptor = tower_tunnel::test_util::tls_acceptor(vec![b"h2".to_vec()]);
        let scripts = Arc::new(Mutex::new(scripts.into_iter()));
        let (conns, strs, logged) = (connections.clone(), streams.clone(), data.clone());
        let accept = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let script = scripts.lock().unwrap().next().unwrap_or_default();
                let index = conns.fetch_add(1, Ordering::SeqCst);
                let (acceptor, strs, logged) = (acceptor.clone(), strs.clone(), logged.clone());
                tasks.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // Bounded: a connection lives at most as long as a test.
                    let _ = tokio::time::timeout(
                        Duration::from_secs(30),
                        serve(tls, max_streams, script, strs, delay, (index, logged)),
                    )
                    .await;
                });
            }
        });
        RawH2Proxy {
            addr,
            connections,
            streams,
            data,
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

    /// The DATA bytes that came in on each stream that carried any, as (connection index,
    /// stream id, bytes), in the order the streams first carried some.
    pub fn data(&self) -> Vec<(usize, u32, Vec<u8>)> {
        self.data.lock().unwrap().clone()
    }
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const REFUSED_STREAM: u32 = 0x7;
const INTERNAL_ERROR: u32 = 0x2;

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
    io: IO,
    max_streams: u32,
    script: Vec<Action>,
    streams: Arc<AtomicUsize>,
    delay: Duration,
    (index, data): (usize, Data),
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut io, mut out) = tokio::io::split(io);
    // Every frame out goes through one writer: the answers, and what tunnels bring back.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if out.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let _writer = AbortOnDrop(writer);
    let mut preface = [0; 24];
    if io.read_exact(&mut preface).await.is_err() {
        return;
    }
    tokio::time::sleep(delay).await;
    // The server's preface: its SETTINGS first (RFC 9113 §3.4).
    if tx.send(max_streams_settings(max_streams)).is_err() {
        return;
    }
    let mut script = script.into_iter();
    let mut last_answered = 0u32;
    let mut tunnels = std::collections::HashMap::new();
    let mut upstreams = Vec::new();
    let mut refuse_after_data = Vec::new();
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
            DATA => {
                {
                    let mut data = data.lock().unwrap();
                    match data
                        .iter_mut()
                        .find(|(c, s, _)| *c == index && *s == stream)
                    {
                        Some((_, _, bytes)) => bytes.extend_from_slice(&payload),
                        None if !payload.is_empty() => data.push((index, stream, payload.clone())),
                        None => {}
                    }
                }
                if let Some(i) = refuse_after_data.iter().position(|s| *s == stream) {
                    refuse_after_data.remove(i);
                    let reset = frame(RST_STREAM, 0, stream, &REFUSED_STREAM.to_be_bytes());
                    if tx.send(reset).is_err() {
                        return;
                    }
                }
                if let Some(up) = tunnels.get_mut(&stream) {
                    let up: &mut tokio::net::tcp::OwnedWriteHalf = up;
                    if up.write_all(&payload).await.is_err() {
                        tunnels.remove(&stream);
                    }
                }
                continue;
            }
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
                    Action::Reset => {
                        last_answered = stream;
                        frame(RST_STREAM, 0, stream, &INTERNAL_ERROR.to_be_bytes())
                    }
                    Action::Silence => continue,
                    Action::RefuseAfterData => {
                        refuse_after_data.push(stream);
                        continue;
                    }
                    Action::Tunnel(to) => {
                        last_answered = stream;
                        let Ok(up) = tokio::net::TcpStream::connect(to).await else {
                            return;
                        };
                        let _ = up.set_nodelay(true);
                        let (mut r, w) = up.into_split();
                        tunnels.insert(stream, w);
                        let tx = tx.clone();
                        upstreams.push(AbortOnDrop(tokio::spawn(async move {
                            let mut buf = vec![0u8; 16 * 1024];
                            // Bounded by the upstream's life, within the test's.
                            loop {
                                match r.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => {
                                        if tx.send(frame(DATA, 0, stream, &buf[..n])).is_err() {
                                            return;
                                        }
                                    }
                                }
                            }
                        })));
                        ok
                    }
                }
            }
            // Window updates, resets: nothing to answer.
            _ => continue,
        };
        if tx.send(reply).is_err() {
            return;
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
