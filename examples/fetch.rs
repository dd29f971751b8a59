//! A small curl-like client on the tower-tunnel stack.
//!
//! ```text
//! cargo run --example fetch -- [--proxy URL] [--cacert PEM] [--http1] URL
//! ```
//!
//! Prints the status line, the negotiated protocol and the route. On
//! failure it prints the error with its causes and exits with status 1.
//! Without `--cacert`, the Mozilla roots from `webpki-roots` are trusted.

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::{AlpnDispatchLayer, Proxy, ProxyConnectLayer, TlsLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: fetch [--proxy URL] [--cacert PEM] [--http1] URL";

struct Args {
    proxy: Option<String>,
    cacert: Option<String>,
    http1: bool,
    url: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut proxy, mut cacert, mut http1, mut url) = (None, None, false, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--proxy" | "-x" => proxy = Some(args.next().ok_or("--proxy needs a URL")?),
            "--cacert" => cacert = Some(args.next().ok_or("--cacert needs a file")?),
            "--http1" | "--http1.1" => http1 = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            _ if url.is_some() => return Err(format!("one URL only\n{USAGE}")),
            _ => url = Some(arg),
        }
    }
    let url = url.ok_or_else(|| USAGE.to_owned())?;
    Ok(Args {
        proxy,
        cacert,
        http1,
        url,
    })
}

fn tls_config(cacert: Option<&str>) -> Result<Arc<rustls::ClientConfig>, BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    match cacert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)? {
                roots.add(cert?)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn fetch(args: &Args) -> Result<(), BoxError> {
    let uri: http::Uri = args.url.parse()?;
    let mut tls = TlsLayer::new(tls_config(args.cacert.as_deref())?);
    if args.http1 {
        tls = tls.with_http1_only();
    }
    let route = match &args.proxy {
        Some(p) => ProxyConnectLayer::new(Proxy::new(p)?),
        None => ProxyConnectLayer::direct(),
    };
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(tls)
        .layer(route)
        .service(HttpConnector::new());
    let mut conn = connect.oneshot(uri.clone()).await?;
    let req = http::Request::get(uri).body(Empty::<Bytes>::new())?;
    let res = conn.send_request(req).await?;
    println!("{:?} {}", res.version(), res.status());
    println!(
        "protocol: {}",
        conn.info().alpn().unwrap_or("none (HTTP/1.1)")
    );
    println!("route:    {}", conn.info().route());
    let body = res.into_body().collect().await?.to_bytes();
    println!("body:     {} bytes", body.len());
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match fetch(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
