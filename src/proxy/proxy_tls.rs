//! TLS to an `https://` proxy, inside the route stage: the stream to the
//! first hop, plain or encrypted.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::Authority;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::error::{Error, ErrorKind, Phase};
use crate::target::bare_host;

const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";

/// The ALPN offered to a proxy: `h2` where `CONNECT` may go over HTTP/2,
/// `http/1.1` alone where it must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyAlpn {
    H2OrHttp1,
    Http1,
}

/// The client configs for TLS to proxies, one per ALPN offer; each shares
/// the caller's session store, so handshakes to a proxy resume.
#[derive(Clone, Debug)]
pub(crate) struct ProxyTlsConfig {
    h2: Arc<ClientConfig>,
    http1: Arc<ClientConfig>,
}

impl ProxyTlsConfig {
    pub(crate) fn new(config: Arc<ClientConfig>) -> Self {
        let mut h2 = config.clone();
        Arc::make_mut(&mut h2).alpn_protocols = vec![H2.to_vec(), HTTP11.to_vec()];
        let mut http1 = config;
        Arc::make_mut(&mut http1).alpn_protocols = vec![HTTP11.to_vec()];
        ProxyTlsConfig { h2, http1 }
    }

    /// The TLS handshake with `proxy` over `io`, offering `alpn`.
    pub(crate) async fn handshake<U>(
        &self,
        io: U,
        proxy: &Authority,
        alpn: ProxyAlpn,
    ) -> Result<Tls<U>, Error>
    where
        U: Read + Write + Unpin,
    {
        let config = match alpn {
            ProxyAlpn::H2OrHttp1 => &self.h2,
            ProxyAlpn::Http1 => &self.http1,
        };
        // SNI and the certificate check use the proxy's name: this is the
        // proxy's own TLS, not the target's.
        let name = ServerName::try_from(bare_host(proxy))
            .map(|n| n.to_owned())
            .map_err(|e| Error::new(ErrorKind::InvalidProxy, None).with_source(e))?;
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, TokioIo::new(io))
            .await
            .map_err(|e| Error::new(ErrorKind::ProxyTls, Some(Phase::ProxyTls)).with_source(e))?;
        Ok(TokioIo::new(tls))
    }
}

/// Whether the proxy selected HTTP/2 by ALPN.
pub(crate) fn selected_h2<U>(tls: &Tls<U>) -> bool {
    tls.inner().get_ref().1.alpn_protocol() == Some(H2)
}

/// A stream to a proxy reached through a pre-proxy: the tunnel through the
/// chain (and TLS inside it, for an `https://` proxy). Boxed, since a
/// chain's length is known only at run time.
pub(crate) trait ChainIo: Read + Write + Unpin + Send {}

impl<X: Read + Write + Unpin + Send> ChainIo for X {}

pub(crate) type Tls<T> = TokioIo<tokio_rustls::client::TlsStream<TokioIo<T>>>;

/// The stream to the first hop: the base connector's stream as it is, or
/// TLS over it to an `https://` proxy, or a tunnel through a pre-proxy.
pub(crate) enum FirstHop<T> {
    Plain(T),
    // Boxed: the TLS state is over a kilobyte, and the plain case allocates
    // nothing.
    Tls(Box<Tls<T>>),
    Chained(Box<dyn ChainIo>),
}

impl<T> FirstHop<T> {
    /// Whether the proxy selected HTTP/2 by ALPN (never through a chain,
    /// which offers `http/1.1` alone).
    pub(crate) fn is_h2(&self) -> bool {
        match self {
            FirstHop::Plain(_) | FirstHop::Chained(_) => false,
            FirstHop::Tls(tls) => selected_h2(tls),
        }
    }

    /// The base connector's stream, where it is this hop's own.
    pub(crate) fn transport(&self) -> Option<&T> {
        match self {
            FirstHop::Plain(io) => Some(io),
            FirstHop::Tls(tls) => Some(tls.inner().get_ref().0.inner()),
            FirstHop::Chained(_) => None,
        }
    }
}

impl<T> fmt::Debug for FirstHop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FirstHop::Plain(_) => "FirstHop::Plain",
            FirstHop::Tls(_) => "FirstHop::Tls",
            FirstHop::Chained(_) => "FirstHop::Chained",
        })
    }
}

impl<T: Read + Write + Unpin> Read for FirstHop<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            FirstHop::Plain(io) => Pin::new(io).poll_read(cx, buf),
            FirstHop::Tls(io) => Pin::new(&mut **io).poll_read(cx, buf),
            FirstHop::Chained(io) => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl<T: Read + Write + Unpin> Write for FirstHop<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            FirstHop::Plain(io) => Pin::new(io).poll_write(cx, buf),
            FirstHop::Tls(io) => Pin::new(&mut **io).poll_write(cx, buf),
            FirstHop::Chained(io) => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            FirstHop::Plain(io) => Pin::new(io).poll_flush(cx),
            FirstHop::Tls(io) => Pin::new(&mut **io).poll_flush(cx),
            FirstHop::Chained(io) => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            FirstHop::Plain(io) => Pin::new(io).poll_shutdown(cx),
            FirstHop::Tls(io) => Pin::new(&mut **io).poll_shutdown(cx),
            FirstHop::Chained(io) => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }

    // A TLS flight (or a record and the CONNECT after it) goes out as one
    // write only if vectored writes pass through; several small writes wait
    // on Nagle and the peer's delayed ACK.
    fn is_write_vectored(&self) -> bool {
        match self {
            FirstHop::Plain(io) => io.is_write_vectored(),
            FirstHop::Tls(io) => io.is_write_vectored(),
            FirstHop::Chained(io) => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            FirstHop::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            FirstHop::Tls(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
            FirstHop::Chained(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }
}
