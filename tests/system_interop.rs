//! Real requests routed by the desktop's proxy settings: GNOME's, in a
//! private home through the GSettings keyfile backend, read by
//! `Proxies::from_system_with`, carried by the lab's squid
//! (`.ci/interop/setup.sh`) to the in-process `TestOrigin`.
//!
//! - `manual` mode names squid as the HTTPS proxy;
//! - `auto` mode names a PAC URL (served on loopback by this test) whose
//!   script answers squid (feature `pac`).
//!
//! squid's `access.log` is the witness that the request went through it.
//! As `tests/interop.rs`, every test is `#[ignore]`d as needing the lab:
//! run them with `--ignored` after `.ci/interop/setup.sh` and
//! `source $INTEROP_DIR/ports.env`.

#[path = "common/lab.rs"]
mod lab;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{client_config, TestOrigin};
use tower_tunnel::{AlpnDispatchLayer, Proxies, ProxyConnectLayer, TlsLayer};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The lab's squid URL; `gsettings` must be there too.
fn squid_url() -> String {
    let url = lab::lab_var("SQUID_URL");
    assert!(
        std::process::Command::new("gsettings")
            .arg("--version")
            .output()
            .is_ok(),
        "gsettings is needed (Debian: libglib2.0-bin gsettings-desktop-schemas)"
    );
    url
}

/// A private home holding GNOME settings `keyfile`, and the environment
/// that reads it.
fn gnome_home(name: &str, keyfile: &str) -> (PathBuf, HashMap<String, String>) {
    let home =
        std::env::temp_dir().join(format!("tt-system-interop-{name}-{}", std::process::id()));
    let dir = home.join(".config/glib-2.0/settings");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keyfile"), keyfile).unwrap();
    let env = HashMap::from([
        ("HOME".to_owned(), home.display().to_string()),
        (
            "XDG_CONFIG_HOME".to_owned(),
            home.join(".config").display().to_string(),
        ),
        ("GSETTINGS_BACKEND".to_owned(), "keyfile".to_owned()),
        ("XDG_CURRENT_DESKTOP".to_owned(), "GNOME".to_owned()),
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ]);
    (home, env)
}

/// squid's host and port.
fn host_port(url: &str) -> (String, u16) {
    let uri: Uri = url.parse().unwrap();
    (uri.host().unwrap().to_owned(), uri.port_u16().unwrap())
}

/// One HTTPS request to a fresh origin, routed by `proxies`; returns the
/// origin's authority once the connection is closed.
async fn request_through(proxies: Proxies, squid: &str) -> String {
    let origin = TestOrigin::start().await.unwrap();
    let stack = ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(client_config()).with_http1_only())
        .layer(ProxyConnectLayer::from_proxies(proxies))
        .service(HttpConnector::new());
    let target: Uri = origin.https_url().parse().unwrap();
    let mut conn = tokio::time::timeout(TIMEOUT, stack.oneshot(target))
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let (squid_host, squid_port) = host_port(squid);
    let route = conn.info().route().clone();
    assert_eq!(
        route
            .proxy()
            .map(|a| (a.host().to_owned(), a.port_u16().unwrap())),
        Some((squid_host, squid_port)),
        "route {route}"
    );
    lab::get_hello(&mut conn).await;
    drop(conn);
    origin.authority().to_string()
}

/// Waits (bounded) for squid's access log to show `CONNECT authority`.
async fn assert_squid_logged(authority: &str) {
    lab::assert_logged("squid-open/access.log", &format!("CONNECT {authority}")).await;
}

#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn gnome_manual_mode_routes_through_squid() {
    let squid = squid_url();
    let (host, port) = host_port(&squid);
    let keyfile = format!(
        "[system/proxy]\nmode='manual'\nignore-hosts=@as []\n\n\
         [system/proxy/https]\nhost='{host}'\nport={port}\n"
    );
    let (home, env) = gnome_home("manual", &keyfile);
    let proxies = Proxies::from_system_with(move |name| env.get(name).cloned()).unwrap();
    let rule = proxies
        .decide(&"https://localhost/".parse().unwrap())
        .unwrap()
        .rule()
        .to_string();
    assert_eq!(
        rule,
        "GNOME settings, mode manual, org.gnome.system.proxy.https"
    );
    let authority = request_through(proxies, &squid).await;
    assert_squid_logged(&authority).await;
    let _ = std::fs::remove_dir_all(home);
}

#[cfg(feature = "pac")]
#[tokio::test]
#[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
async fn gnome_auto_mode_routes_through_the_pac_scripts_answer() {
    let squid = squid_url();
    let (host, port) = host_port(&squid);
    let script =
        format!("function FindProxyForURL(url, host) {{ return 'PROXY {host}:{port}; DIRECT'; }}");
    let pac_url = lab::serve_pac(script, 4);
    let keyfile =
        format!("[system/proxy]\nmode='auto'\nautoconfig-url='{pac_url}'\nignore-hosts=@as []\n");
    let (home, env) = gnome_home("auto", &keyfile);
    // from_system fetches the script on a thread of its own; it blocks, so
    // it runs off the runtime here.
    let proxies = tokio::task::spawn_blocking(move || {
        Proxies::from_system_with(move |name| env.get(name).cloned())
    })
    .await
    .unwrap()
    .unwrap();
    let rule = proxies
        .decide(&"https://localhost/".parse().unwrap())
        .unwrap()
        .rule()
        .to_string();
    assert_eq!(
        rule,
        format!(
            "GNOME settings, mode auto, the PAC script ({pac_url}) answered `PROXY {host}:{port}; DIRECT`"
        )
    );
    let authority = request_through(proxies, &squid).await;
    assert_squid_logged(&authority).await;
    let _ = std::fs::remove_dir_all(home);
}

#[cfg(not(feature = "pac"))]
#[test]
#[ignore = "needs PAC: run with --features pac"]
fn gnome_auto_mode_routes_through_the_pac_scripts_answer() {}
