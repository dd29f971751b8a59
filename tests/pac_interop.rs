//! PAC routing through real proxies (issue 13, item 5): a script served
//! over loopback HTTP answers a list whose first hop is a closed port, and
//! the request goes through the lab's squid or tinyproxy
//! (`.ci/interop/setup.sh`) to the in-process `TestOrigin`; the proxy's
//! own log is the witness, and the connection names the hop it skipped.
//! A proxy's refusal (a `407`) is returned, never passed over for the next
//! hop or `DIRECT`.
//!
//! As `tests/interop.rs`, every test is `#[ignore]`d as needing the lab:
//! run them with `--ignored` after `.ci/interop/setup.sh` and
//! `source $INTEROP_DIR/ports.env`.
//! Without the `pac` feature the tests are ignored, saying so.

#[path = "common/lab.rs"]
mod lab;

#[cfg(feature = "pac")]
mod with_pac {
    use std::time::Duration;

    use bytes::Bytes;
    use http::Uri;
    use http_body_util::Empty;
    use hyper_util::client::legacy::connect::HttpConnector;
    use tower::{ServiceBuilder, ServiceExt};

    use tower_tunnel::test_util::{client_config, TestOrigin};
    use tower_tunnel::{
        AlpnDispatchLayer, ErrorKind, Phase, Proxies, ProxyConnectLayer, Rule, SkipReason, TlsLayer,
    };

    use super::lab;

    const TIMEOUT: Duration = Duration::from_secs(60);

    /// `host:port` of a proxy URL.
    fn authority(url: &str) -> String {
        let uri: Uri = url.parse().unwrap();
        uri.authority().unwrap().to_string()
    }

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// One connection to `target`, routed by `proxies`.
    async fn connect(
        proxies: Proxies,
        target: Uri,
    ) -> Result<tower_tunnel::HttpConnection<Empty<Bytes>>, tower_tunnel::Error> {
        let stack = ServiceBuilder::new()
            .layer(AlpnDispatchLayer::new())
            .layer(TlsLayer::new(client_config()).with_http1_only())
            .layer(ProxyConnectLayer::from_proxies(proxies))
            .service(HttpConnector::new());
        tokio::time::timeout(TIMEOUT, stack.oneshot(target))
            .await
            .expect("in time")
    }

    /// The script at a loopback URL answers `closed hop; proxy; DIRECT`;
    /// one HTTPS request must go through `proxy`, name the closed hop as
    /// skipped, and show in the proxy's `log` as `logged(origin)`.
    async fn list_skips_the_closed_hop(proxy_url: &str, log: &str, logged: fn(&str) -> String) {
        let proxy = authority(proxy_url);
        let closed = format!("127.0.0.1:{}", closed_port());
        let answer = format!("PROXY {closed}; PROXY {proxy}; DIRECT");
        let pac_url = lab::serve_pac(
            format!(
                "function FindProxyForURL(url, host) {{\n  \
                   if (dnsDomainIs(host, \".corp.example\")) return 'DIRECT';\n  \
                   return '{answer}';\n}}\n"
            ),
            2,
        );
        let proxies = Proxies::from_pac_url(&pac_url).await.unwrap();
        let origin = TestOrigin::start().await.unwrap();
        let target: Uri = origin.https_url().parse().unwrap();

        let mut conn = connect(proxies.clone(), target.clone())
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let info = conn.info().clone();
        assert_eq!(
            info.proxy().map(|p| p.authority().to_string()),
            Some(proxy.clone()),
            "{info}"
        );
        let skipped: Vec<String> = info.skipped().iter().map(|s| s.hop().to_string()).collect();
        assert_eq!(skipped, [format!("PROXY {closed}")], "{info}");
        assert!(
            matches!(
                info.skipped()[0].reason(),
                SkipReason::Failed {
                    kind: ErrorKind::Dial,
                    ..
                }
            ),
            "{:?}",
            info.skipped()[0]
        );
        lab::get_hello(&mut conn).await;
        drop(conn);
        // One connection, from the proxy (the origin cannot tell squid's
        // from a client's; the proxy's log below says whose it was).
        assert_eq!(origin.connections(), 1);
        // The proxy's own log (the origin's port is new, so any line for it
        // is this request's).
        lab::assert_logged(log, &logged(&origin.authority().to_string())).await;

        // The decision names the script's answer; the closed hop now goes last.
        let decision = proxies.decide(&target).unwrap();
        assert_eq!(decision.rule(), &Rule::Pac { answer });
        let hops: Vec<String> = decision.hops().iter().map(ToString::to_string).collect();
        assert_eq!(
            hops,
            [
                format!("PROXY {proxy}"),
                "DIRECT".into(),
                format!("PROXY {closed}")
            ]
        );
        assert!(matches!(
            decision.skipped()[0].reason(),
            SkipReason::RecentlyFailed { .. }
        ));
    }

    #[tokio::test]
    #[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
    async fn a_pac_list_goes_through_squid_past_a_closed_hop() {
        let squid = lab::lab_var("SQUID_URL");
        list_skips_the_closed_hop(&squid, "squid-open/access.log", |origin| {
            format!("CONNECT {origin} ")
        })
        .await;
    }

    #[tokio::test]
    #[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
    async fn a_pac_list_goes_through_tinyproxy_past_a_closed_hop() {
        let tinyproxy = lab::lab_var("TINYPROXY_URL");
        list_skips_the_closed_hop(&tinyproxy, "tinyproxy/tinyproxy.log", |origin| {
            format!("CONNECT {origin} HTTP/1.1")
        })
        .await;
    }

    /// squid-basic answers `407` to a client without credentials: that is
    /// the proxy's answer, so neither the next proxy (squid-open) nor
    /// `DIRECT` is tried.
    #[tokio::test]
    #[ignore = "needs the interop lab: .ci/interop/setup.sh, source $INTEROP_DIR/ports.env, then run with --ignored (.ci/run does)"]
    async fn a_proxy_refusal_in_a_pac_list_is_returned_not_passed_over() {
        let basic = lab::lab_var("SQUID_BASIC_URL");
        let open = lab::lab_var("SQUID_URL");
        let answer = format!(
            "PROXY {}; PROXY {}; DIRECT",
            authority(&basic),
            authority(&open)
        );
        let pac_url = lab::serve_pac(
            format!("function FindProxyForURL(url, host) {{ return '{answer}'; }}"),
            1,
        );
        let proxies = Proxies::from_pac_url(&pac_url).await.unwrap();
        let origin = TestOrigin::start().await.unwrap();
        let target: Uri = origin.https_url().parse().unwrap();
        let err = match connect(proxies, target).await {
            Ok(conn) => panic!("connected past a 407: {}", conn.info()),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired, "{err}");
        assert_eq!(err.phase(), Some(Phase::ProxyConnect), "{err}");
        assert_eq!(err.proxy_response().unwrap().status(), 407);
        assert_eq!(origin.connections(), 0);
        assert_eq!(
            lab::count_logged(
                "squid-open/access.log",
                &format!("CONNECT {} ", origin.authority())
            ),
            0
        );
    }
}

#[cfg(not(feature = "pac"))]
#[test]
#[ignore = "needs PAC: run with --features pac"]
fn pac_interop_needs_the_pac_feature() {}
