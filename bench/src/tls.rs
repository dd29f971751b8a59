//! The TLS configuration shared by the clients, and the HTTP version they offer.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::util::Result;

pub const H2: &[u8] = b"h2";
pub const HTTP11: &[u8] = b"http/1.1";

/// The HTTP version offered to the origin: h2 (with http/1.1 as fallback) or http/1.1 only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H2,
    H1,
}

impl Proto {
    /// Both, in the order of the tables' columns.
    pub const ALL: [Proto; 2] = [Proto::H2, Proto::H1];

    /// Its column in the tables: its place in `ALL`.
    pub fn column(self) -> usize {
        match self {
            Proto::H2 => 0,
            Proto::H1 => 1,
        }
    }

    pub fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Proto::H2 => vec![H2.to_vec(), HTTP11.to_vec()],
            Proto::H1 => vec![HTTP11.to_vec()],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::H2 => "h2",
            Proto::H1 => "h1",
        }
    }

    pub fn parse(s: &str) -> Result<Proto> {
        match s {
            "h2" => Ok(Proto::H2),
            "h1" => Ok(Proto::H1),
            _ => Err(format!("unknown protocol {s}").into()),
        }
    }
}

/// The same configuration as `test_util::client_config()` (ring provider, safe default
/// versions, only the test CA), built from the CA the fixture process generated, with
/// `alpn` offered. Each call has its own session cache.
pub fn client_config(ca_pem: &str, alpn: Vec<Vec<u8>>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    Ok(config)
}
