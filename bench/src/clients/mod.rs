//! The clients measured: this crate's stack, the hand-written floor, hyper-util's `Tunnel`
//! with hyper-rustls, reqwest, and this crate's stack through the https:// proxy; which is
//! which, and what they share.

mod floor;
mod hyper_tunnel;
mod ours;
mod reqwest_client;
mod via_https;

pub use floor::Floor;
pub use hyper_tunnel::HyperUtil;
pub use ours::Ours;
pub use reqwest_client::reqwest_client;
pub use via_https::ViaHttps;

use http::header::HOST;
use http::{HeaderValue, Request, Uri};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioExecutor;
use tower_tunnel::{Http2Mode, HttpConnection};

use crate::fixtures::Env;
use crate::tls::Proto;
use crate::util::{drain, Body, Result};

/// The clients through the http:// proxy, in the order of the tables' rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    TowerTunnel,
    Floor,
    HyperUtil,
    Reqwest,
}

impl ClientKind {
    pub const ALL: [ClientKind; 4] = [
        ClientKind::TowerTunnel,
        ClientKind::Floor,
        ClientKind::HyperUtil,
        ClientKind::Reqwest,
    ];

    /// Those whose connection splits into phases (TCP + CONNECT, TLS, HTTP handshake).
    pub const PHASED: [ClientKind; 3] = [
        ClientKind::TowerTunnel,
        ClientKind::Floor,
        ClientKind::HyperUtil,
    ];

    /// Its row in the tables: its place in `ALL` (the order of the variants).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            ClientKind::TowerTunnel => "tower-tunnel",
            ClientKind::Floor => "floor (hand-written)",
            ClientKind::HyperUtil => "hyper-util Tunnel + hyper-rustls",
            ClientKind::Reqwest => "reqwest 0.12 (rustls)",
        }
    }

    /// The name in the allocation traces.
    pub fn short_name(self) -> &'static str {
        match self {
            ClientKind::TowerTunnel => "tower-tunnel",
            ClientKind::Floor => "floor",
            ClientKind::HyperUtil => "hyper-util",
            ClientKind::Reqwest => "reqwest",
        }
    }
}

/// The routes from this crate's stack to the https:// proxy, in the order of its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViaRoute {
    /// Every tunnel a CONNECT stream on one pooled HTTP/2 connection to the proxy.
    H2Stream,
    /// Every tunnel a fresh TCP + TLS connection to the proxy (offering http/1.1 only) and
    /// an HTTP/1.1 CONNECT.
    FreshH1,
}

impl ViaRoute {
    pub const ALL: [ViaRoute; 2] = [ViaRoute::H2Stream, ViaRoute::FreshH1];

    /// Its row in the table: its place in `ALL` (the order of the variants).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            ViaRoute::H2Stream => {
                "tower-tunnel, tunnel over an existing HTTP/2 proxy connection (Http2Mode::Required)"
            }
            ViaRoute::FreshH1 => {
                "tower-tunnel, fresh HTTP/1.1 CONNECT over TLS to the proxy (Http2Mode::Never)"
            }
        }
    }

    pub fn mode(self) -> Http2Mode {
        match self {
            ViaRoute::H2Stream => Http2Mode::Required,
            ViaRoute::FreshH1 => Http2Mode::Never,
        }
    }
}

/// Any client the bench runs: one through the http:// proxy, or a route through the
/// https:// proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Plain(ClientKind),
    Via(ViaRoute),
}

impl From<ClientKind> for Kind {
    fn from(kind: ClientKind) -> Kind {
        Kind::Plain(kind)
    }
}

impl From<ViaRoute> for Kind {
    fn from(route: ViaRoute) -> Kind {
        Kind::Via(route)
    }
}

impl Kind {
    /// How `--idle-probe` names each client: the one place that maps them to and from the
    /// argument.
    const PROBE_ARGS: [(Kind, &'static str); 6] = [
        (Kind::Plain(ClientKind::TowerTunnel), "0"),
        (Kind::Plain(ClientKind::Floor), "1"),
        (Kind::Plain(ClientKind::HyperUtil), "2"),
        (Kind::Plain(ClientKind::Reqwest), "3"),
        (Kind::Via(ViaRoute::H2Stream), "4"),
        (Kind::Via(ViaRoute::FreshH1), "5"),
    ];

    pub fn probe_arg(self) -> &'static str {
        Self::PROBE_ARGS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, arg)| arg)
    }

    pub fn from_probe_arg(arg: &str) -> Result<Kind> {
        Self::PROBE_ARGS
            .iter()
            .find(|(_, a)| *a == arg)
            .map(|(k, _)| *k)
            .ok_or_else(|| format!("unknown client {arg}").into())
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Plain(kind) => kind.name(),
            Kind::Via(route) => route.name(),
        }
    }
}

/// A client ready to open connections.
pub enum Client {
    Ours(Ours),
    Floor(Floor),
    HyperUtil(Box<HyperUtil>),
    Reqwest(reqwest::Client),
    /// Through the https:// proxy, by either route.
    ViaHttps(Box<ViaHttps>),
}

impl Client {
    /// The client of `kind`; reqwest's without a connection pool, so that every request
    /// opens a fresh connection.
    pub fn new(kind: impl Into<Kind>, env: &Env, proto: Proto) -> Result<Client> {
        Ok(match kind.into() {
            Kind::Plain(ClientKind::TowerTunnel) => Client::Ours(Ours::new(env, proto)?),
            Kind::Plain(ClientKind::Floor) => Client::Floor(Floor::new(env, proto)?),
            Kind::Plain(ClientKind::HyperUtil) => {
                Client::HyperUtil(Box::new(HyperUtil::new(env, proto)?))
            }
            Kind::Plain(ClientKind::Reqwest) => Client::Reqwest(reqwest_client(env, proto, false)?),
            Kind::Via(route) => Client::ViaHttps(Box::new(ViaHttps::new(env, route, proto)?)),
        })
    }
}

/// An open connection, kept for the idle-memory probe.
pub enum Open {
    Ours(HttpConnection<Body>),
    Hyper(HyperConn),
}

impl Open {
    /// `GET path`, the whole body read; returns its length.
    pub async fn get(&mut self, path: &str, t: &Target, h2_uri: &Uri) -> Result<usize> {
        match self {
            Open::Ours(c) => {
                let res = c
                    .send_request(Request::get(path).body(Body::new())?)
                    .await?;
                drain(res.into_body()).await
            }
            Open::Hyper(c) => c.get(path, h2_uri, &t.authority).await,
        }
    }
}

/// Paths and names every client uses.
pub struct Target {
    pub url: Uri,
    pub origin_url: String,
    pub authority: HeaderValue,
}

impl Target {
    pub fn new(env: &Env) -> Result<Target> {
        Ok(Target {
            url: env.origin_url.parse()?,
            origin_url: env.origin_url.clone(),
            authority: HeaderValue::from_str(&env.authority)?,
        })
    }

    pub fn h2_uri(&self, path: &str) -> Result<Uri> {
        Ok(format!("{}{path}", self.origin_url).parse()?)
    }
}

/// A hyper connection made by hand (floor, hyper-util): HTTP/2 or HTTP/1.1 by ALPN.
pub enum HyperConn {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

impl HyperConn {
    async fn handshake<T>(io: T, h2: bool) -> Result<HyperConn>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(HyperConn::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(HyperConn::H1(sender))
        }
    }

    /// `GET path`; `h2_uri` is the absolute URI HTTP/2 needs, `authority` the HTTP/1.1 Host.
    pub async fn get(
        &mut self,
        path: &str,
        h2_uri: &Uri,
        authority: &HeaderValue,
    ) -> Result<usize> {
        let res = match self {
            HyperConn::H1(s) => {
                let req = Request::get(path)
                    .header(HOST, authority.clone())
                    .body(Body::new())?;
                s.ready().await?;
                s.send_request(req).await?
            }
            HyperConn::H2(s) => {
                let req = Request::get(h2_uri.clone()).body(Body::new())?;
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        drain(res.into_body()).await
    }
}
