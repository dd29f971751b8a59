//! A process-wide test CA and a `localhost` leaf certificate, generated once with rcgen.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// The CA and the leaf it signed; both live for the whole process.
struct TestCerts {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    leaf_der: CertificateDer<'static>,
    leaf_key: PrivatePkcs8KeyDer<'static>,
}

fn certs() -> &'static TestCerts {
    static CERTS: OnceLock<TestCerts> = OnceLock::new();
    CERTS.get_or_init(generate)
}

// Every input here is fixed and valid, and ring's key generation only fails when the OS
// has no randomness, so a failure is a broken environment, not bad input.
fn generate() -> TestCerts {
    const INVARIANT: &str = "fixed rcgen parameters with a ring key are always valid";

    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tower-tunnel test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect(INVARIANT);
    let ca_cert = ca_params.self_signed(&ca_key).expect(INVARIANT);
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params = CertificateParams::default();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().expect(INVARIANT)),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().expect(INVARIANT);
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).expect(INVARIANT);

    TestCerts {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        leaf_der: leaf_cert.der().clone(),
        leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The PEM encoding of the test CA certificate that signed every fixture's certificate.
pub fn ca_pem() -> String {
    certs().ca_pem.clone()
}

/// The DER encoding of the test CA certificate.
pub fn ca_der() -> CertificateDer<'static> {
    certs().ca_der.clone()
}

/// A root store holding only the test CA.
pub fn root_store() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // The CA certificate was just produced by rcgen, so webpki always parses it.
    roots
        .add(ca_der())
        .expect("the rcgen CA certificate is well-formed");
    roots
}

/// A rustls client configuration that trusts only the test CA, on the `ring` provider, with
/// no ALPN protocols set.
///
/// Each call returns a new configuration with its own session cache: share one `Arc`
/// across connections to exercise session resumption.
pub fn client_config() -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_root_certificates(root_store())
        .with_no_client_auth();
    Arc::new(config)
}

/// A rustls server configuration presenting the test certificate (valid for `localhost`,
/// `127.0.0.1` and `::1`) and offering the given ALPN protocols, in preference order.
///
/// An empty `alpn` list makes the server select no protocol.
pub fn server_config(alpn: Vec<Vec<u8>>) -> Arc<ServerConfig> {
    let certs = certs();
    let key = PrivateKeyDer::Pkcs8(certs.leaf_key.clone_key());
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certs.leaf_der.clone(), certs.ca_der.clone()], key)
        .expect("the leaf key matches the leaf certificate");
    config.alpn_protocols = alpn;
    Arc::new(config)
}

/// A TLS acceptor with [`server_config`], for serving HTTPS (a tonic server, say) with the
/// same certificate as [`TestOrigin`](super::TestOrigin).
pub fn tls_acceptor(alpn: Vec<Vec<u8>>) -> TlsAcceptor {
    TlsAcceptor::from(server_config(alpn))
}
