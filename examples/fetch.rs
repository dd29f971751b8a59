//! A small curl-like client on the tower-tunnel stack.
//!
//! ```text
//! cargo run --example fetch -- [OPTIONS] URL
//!
//!   -x, --proxy URL          proxy for every target: http://, https://, socks5://,
//!                            socks5h://, socks4a://, socks4:// or socks://
//!                            (default: the environment, else the system settings)
//!       --proxy-pac URL|FILE the proxy list a PAC script answers (feature pac): fetched
//!                            from an http:// URL, or read from a file
//!       --preproxy URL       reach the proxy through this one (SOCKS, or HTTP CONNECT)
//!       --proxy-anyauth      authenticate with the strongest scheme the proxy offers
//!       --proxy-basic        Basic up front (the default)
//!       --proxy-digest       Digest only
//!       --proxy-ntlm         NTLM (NTLMv2; user as DOMAIN\user)
//!       --proxy-negotiate    Negotiate/Kerberos with the ticket from kinit (feature negotiate)
//!   -U, --proxy-user U:P     proxy credentials (also applied to proxies from the environment)
//!       --noproxy LIST       targets that go direct, replacing no_proxy/NO_PROXY
//!       --cacert PEM         roots for the target, and for an https:// proxy
//!       --proxy-cacert PEM   roots for an https:// proxy (default: as --cacert)
//!       --http1              offer HTTP/1.1 only
//! ```
//!
//! Without `--proxy` it reads the environment as curl does: `http_proxy`,
//! `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY`, `no_proxy`/`NO_PROXY`
//! (see [`Proxies`]); when no proxy variable is set either, the desktop's proxy
//! settings (GNOME, KDE, Windows, macOS; see [`Proxies::from_system`]), and the
//! rule it prints names them ("GNOME settings, mode manual, ..."); `--noproxy`
//! applies to those too. `--proxy-user`, `--preproxy` and the scheme flags (`--proxy-anyauth`,
//! ...) apply to the environment's proxies and to those a PAC script names, not to the
//! desktop's. With `--proxy-pac` (build with `--features pac`)
//! the script decides: it prints the script's answer, the hop used and every hop skipped
//! on the way, with why. It prints the route it took and the rule that chose it, the
//! status line and the negotiated protocol. For a `ws://` or `wss://` URL it opens a
//! WebSocket (tokio-tungstenite over the stack up to `TlsLayer`), sends one text
//! message and prints the echo. On failure it prints the error with its causes and
//! exits with status 1. Without `--cacert`, the Mozilla roots from `webpki-roots` are
//! trusted.

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::{
    AlpnDispatchLayer, Hop, NoProxy, Proxies, Proxy, ProxyAuth, ProxyConnectLayer, ProxyList, Rule,
    TlsLayer,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: fetch [-x|--proxy URL | --proxy-pac URL|FILE] [--preproxy URL] [-U|--proxy-user USER:PASS] \
                     [--proxy-anyauth|--proxy-basic|--proxy-digest|--proxy-ntlm|--proxy-negotiate] \
                     [--noproxy LIST] [--cacert PEM] [--proxy-cacert PEM] [--http1] URL";

/// The proxy variables `Proxies::from_env` reads.
const PROXY_VARS: [&str; 5] = [
    "http_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

#[derive(Default)]
struct Args {
    proxy: Option<String>,
    proxy_pac: Option<String>,
    preproxy: Option<String>,
    auth: Option<ProxyAuth>,
    proxy_user: Option<(String, String)>,
    noproxy: Option<String>,
    cacert: Option<String>,
    proxy_cacert: Option<String>,
    http1: bool,
    url: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut out = Args::default();
    let mut url = None;
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{arg} needs {what}\n{USAGE}"));
        match arg.as_str() {
            "--proxy" | "-x" => out.proxy = Some(value("a URL")?),
            "--proxy-pac" => out.proxy_pac = Some(value("a URL or a file")?),
            "--preproxy" => out.preproxy = Some(value("a URL")?),
            "--proxy-anyauth" => out.auth = Some(ProxyAuth::Any),
            "--proxy-basic" => out.auth = Some(ProxyAuth::Basic),
            "--proxy-digest" => out.auth = Some(ProxyAuth::Digest),
            "--proxy-ntlm" => out.auth = Some(ProxyAuth::Ntlm),
            "--proxy-negotiate" => out.auth = Some(ProxyAuth::Negotiate),
            "--proxy-user" | "-U" => {
                let v = value("USER:PASS")?;
                let (user, pass) = v.split_once(':').unwrap_or((&v, ""));
                out.proxy_user = Some((user.to_owned(), pass.to_owned()));
            }
            "--noproxy" => out.noproxy = Some(value("a list")?),
            "--cacert" => out.cacert = Some(value("a file")?),
            "--proxy-cacert" => out.proxy_cacert = Some(value("a file")?),
            "--http1" | "--http1.1" => out.http1 = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            _ if url.is_some() => return Err(format!("one URL only\n{USAGE}")),
            _ => url = Some(arg),
        }
    }
    out.url = url.ok_or_else(|| USAGE.to_owned())?;
    if out.proxy.is_some() && out.proxy_pac.is_some() {
        return Err(format!("--proxy and --proxy-pac: choose one\n{USAGE}"));
    }
    Ok(out)
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

/// `url` with its user info replaced by `user:pass`, percent-encoded, so that
/// `--proxy-user` applies to a proxy from the environment too (as in curl).
fn with_userinfo(url: &str, (user, pass): &(String, String)) -> String {
    let (scheme, rest) = url.trim().split_once("://").unwrap_or(("http", url.trim()));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let hostport = rest[..end]
        .rsplit_once('@')
        .map_or(&rest[..end], |(_, h)| h);
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    format!(
        "{scheme}://{}:{}@{hostport}{}",
        enc(user),
        enc(pass),
        &rest[end..]
    )
}

/// The rules of a PAC script: fetched from an `http://` URL, else read from a file.
#[cfg(feature = "pac")]
async fn pac_rules(location: &str) -> Result<Proxies, BoxError> {
    use tower_tunnel::Pac;
    let pac = if location.contains("://") {
        Pac::from_url(location).await?
    } else {
        let script = std::fs::read_to_string(location)
            .map_err(|e| format!("cannot read the PAC file {location}: {e}"))?;
        Pac::from_script_async(script).await?
    };
    Ok(Proxies::new().with_pac(pac))
}

#[cfg(not(feature = "pac"))]
async fn pac_rules(_: &str) -> Result<Proxies, BoxError> {
    Err("--proxy-pac needs PAC support: cargo run --features pac --example fetch -- ...".into())
}

/// The rules: `--proxy` for every target, `--proxy-pac`, or the environment;
/// then `--noproxy`.
async fn proxies(args: &Args) -> Result<(Proxies, &'static str), BoxError> {
    // No --proxy and no proxy variable: the desktop's settings (GNOME, KDE,
    // Windows, macOS), as Proxies::from_system reads them.
    if args.proxy.is_none() && args.proxy_pac.is_none() && Proxies::from_env()?.is_empty() {
        let proxies = Proxies::from_system()?;
        let proxies = match &args.noproxy {
            Some(list) => proxies.with_no_proxy(NoProxy::parse(list)),
            None => proxies,
        };
        return Ok((
            proxies,
            "the system's proxy settings (no --proxy, no proxy variable)",
        ));
    }
    let (proxies, source) = match (&args.proxy, &args.proxy_pac) {
        (None, Some(location)) => (pac_rules(location).await?, "--proxy-pac"),
        (Some(url), _) => {
            let mut proxy = Proxy::new(url)?;
            if let Some((user, pass)) = &args.proxy_user {
                proxy = proxy.with_basic_auth(user, pass);
            }
            (Proxies::from(proxy), "--proxy, for every scheme")
        }
        (None, None) => {
            let get = |name: &str| {
                let value = std::env::var(name).ok()?;
                match &args.proxy_user {
                    Some(cred) if PROXY_VARS.contains(&name) && !value.trim().is_empty() => {
                        Some(with_userinfo(&value, cred))
                    }
                    _ => Some(value),
                }
            };
            (Proxies::from_env_with(get)?, "the environment")
        }
    };
    let proxies = match &args.noproxy {
        Some(list) => proxies.with_no_proxy(NoProxy::parse(list)),
        None => proxies,
    };
    // --preproxy and the --proxy-* schemes apply to whichever proxy the rules
    // choose; --proxy-user to the proxies a PAC script names too.
    let pac_user = args.proxy_pac.as_ref().and(args.proxy_user.clone());
    if args.preproxy.is_none() && args.auth.is_none() && pac_user.is_none() {
        return Ok((proxies, source));
    }
    let outer = args.preproxy.as_deref().map(Proxy::new).transpose()?;
    let auth = args.auth;
    let adjusted = Proxies::new().with_custom(move |uri| {
        // A matcher cannot return an error, and `None` would mean "no
        // opinion", so direct: a failing PAC script ends the program here
        // instead, never a silent direct connection.
        let decision = match proxies.decide(uri) {
            Ok(decision) => decision,
            Err(err) => {
                eprintln!("error: {err}");
                std::process::exit(1);
            }
        };
        decision.proxy()?;
        let hops = decision.hops().iter().map(|hop| match hop.proxy() {
            None => Hop::Direct,
            Some(proxy) => {
                let mut proxy = proxy.clone();
                if let Some((user, pass)) = &pac_user {
                    proxy = proxy.with_basic_auth(user, pass);
                }
                if let Some(outer) = &outer {
                    proxy = proxy.with_preproxy(outer.clone());
                }
                if let Some(auth) = auth {
                    proxy = proxy.with_auth(auth);
                }
                Hop::from(proxy)
            }
        });
        ProxyList::new(hops).ok()
    });
    Ok((adjusted, source))
}

/// The hop of the list the connection took, and each one skipped with why.
fn print_hops(info: &tower_tunnel::ConnectionInfo) {
    let used = info.proxy().map_or(Hop::Direct, |p| Hop::from(p.clone()));
    println!("used:     {used}");
    for skipped in info.skipped() {
        println!("skipped:  {skipped}");
    }
}

/// A WebSocket to `uri` over the stack up to `TlsLayer`: one text message, and its echo.
async fn websocket(
    uri: &http::Uri,
    tls: TlsLayer,
    route: ProxyConnectLayer,
) -> Result<(), BoxError> {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let connect = ServiceBuilder::new()
        .layer(tls)
        .layer(route)
        .service(HttpConnector::new());
    let stream = connect.oneshot(uri.clone()).await?;
    println!("route:    {}", stream.info());
    print_hops(stream.info());
    let url = uri.to_string();
    let (mut ws, res) =
        tokio_tungstenite::client_async(url.as_str(), hyper_util::rt::TokioIo::new(stream)).await?;
    println!("status:   {:?} {}", res.version(), res.status());
    let sent = "hello from tower-tunnel fetch";
    ws.send(Message::text(sent)).await?;
    println!("sent:     {sent}");
    match ws.next().await {
        Some(Ok(echo)) => println!("received: {echo}"),
        Some(Err(e)) => return Err(e.into()),
        None => println!("received: nothing (the server closed)"),
    }
    let _ = ws.close(None).await;
    Ok(())
}

async fn fetch(args: &Args) -> Result<(), BoxError> {
    let uri: http::Uri = args.url.parse()?;
    let target_tls = tls_config(args.cacert.as_deref())?;
    let proxy_tls = match &args.proxy_cacert {
        Some(path) => tls_config(Some(path))?,
        None => target_tls.clone(),
    };
    let mut tls = TlsLayer::new(target_tls);
    if args.http1 {
        tls = tls.with_http1_only();
    }

    let (proxies, source) = proxies(args).await?;
    // A PAC script runs on a thread of its own; the runtime is not blocked.
    let decision = {
        let (proxies, uri) = (proxies.clone(), uri.clone());
        tokio::task::spawn_blocking(move || proxies.decide(&uri)).await??
    };
    println!("proxies:  from {source}");
    let why = match decision.rule() {
        Rule::All if args.proxy.is_some() => format!("--proxy is set ({})", decision.rule()),
        rule => rule.to_string(),
    };
    match decision.proxy() {
        Some(proxy) if decision.hops().len() > 1 => println!(
            "decision: via {proxy} first (of {} hops), because {why}",
            decision.hops().len()
        ),
        Some(proxy) => println!("decision: via {proxy}, because {why}"),
        None => println!("decision: direct, because {why}"),
    }
    if decision.hops().len() > 1 {
        let hops: Vec<String> = decision.hops().iter().map(Hop::to_string).collect();
        println!("hops:     {}, tried in this order", hops.join("; "));
    }
    if args.proxy.is_none()
        && std::env::var_os("http_proxy").is_none()
        && std::env::var_os("HTTP_PROXY").is_some()
    {
        println!(
            "note:     HTTP_PROXY is ignored, as curl ignores it (\"httpoxy\"); set http_proxy"
        );
    }

    let route = ProxyConnectLayer::from_proxies(proxies).with_proxy_tls(proxy_tls);
    if matches!(uri.scheme_str(), Some("ws" | "wss")) {
        return websocket(&uri, tls, route).await;
    }
    let connect = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(tls)
        .layer(route)
        .service(HttpConnector::new());
    let mut conn = connect.oneshot(uri.clone()).await?;
    println!("route:    {}", conn.info());
    print_hops(conn.info());
    if let Some(scheme) = conn.info().proxy_auth() {
        println!("auth:     {scheme}");
    }
    let req = http::Request::get(uri).body(Empty::<Bytes>::new())?;
    let res = conn.send_request(req).await?;
    println!("status:   {:?} {}", res.version(), res.status());
    println!(
        "protocol: {}",
        conn.info().alpn().unwrap_or("none (HTTP/1.1)")
    );
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
