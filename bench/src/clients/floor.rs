//! The hand-written floor: the least a client can do to get the same connection.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::HandshakeKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::HyperConn;
use crate::alloc::Marks;
use crate::fixtures::Env;
use crate::tls::{client_config, Proto, H2};
use crate::util::Result;

/// The hand-written floor: tokio TcpStream, CONNECT by hand, tokio-rustls with one shared
/// config, hyper's handshake by ALPN.
pub struct Floor {
    proxy: SocketAddr,
    connect_request: Vec<u8>,
    tls: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl Floor {
    pub fn new(env: &Env, proto: Proto) -> Result<Floor> {
        let a = &env.authority;
        Ok(Floor {
            proxy: env.proxy_addr,
            connect_request: format!("CONNECT {a} HTTP/1.1\r\nHost: {a}\r\n\r\n").into_bytes(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(client_config(
                &env.ca_pem,
                proto.alpn(),
            )?)),
            name: ServerName::try_from("localhost")?,
        })
    }

    /// A connection and whether its TLS session was resumed; `marks` gets a mark after
    /// each phase.
    pub async fn connect(&self, marks: &mut Marks) -> Result<(HyperConn, bool)> {
        let mut tcp = TcpStream::connect(self.proxy).await?;
        tcp.write_all(&self.connect_request).await?;
        let mut head = [0u8; 256];
        let mut len = 0;
        loop {
            let n = tcp.read(&mut head[len..]).await?;
            if n == 0 {
                return Err("proxy closed".into());
            }
            len += n;
            if head[..len].ends_with(b"\r\n\r\n") {
                break;
            }
            if len == head.len() {
                return Err("CONNECT answer too long".into());
            }
        }
        if !head.starts_with(b"HTTP/1.1 200") {
            return Err("CONNECT refused".into());
        }
        marks.mark();
        let tls = self.tls.connect(self.name.clone(), tcp).await?;
        marks.mark();
        let session = tls.get_ref().1;
        let h2 = session.alpn_protocol() == Some(H2);
        let resumed = session.handshake_kind() == Some(HandshakeKind::Resumed);
        let conn = HyperConn::handshake(TokioIo::new(tls), h2).await?;
        marks.mark();
        Ok((conn, resumed))
    }
}
