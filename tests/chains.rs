//! Proxy chains (a proxy reached through another: SOCKS in front of HTTP, `CONNECT` inside
//! `CONNECT`, an `https://` proxy inside a tunnel) and SOCKS4, over loopback with real
//! sockets: the in-process `TestProxy`, `TestH2Proxy` and TLS origin, and SOCKS relays
//! written here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Uri, Version};
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{ServiceBuilder, ServiceExt};
use tower_tunnel::test_util::{client_config, Fault, TestH2Proxy, TestOrigin, TestProxy};
use tower_tunnel::{
    AlpnDispatchLayer, ErrorKind, HttpConnection, Proxy, ProxyConnectLayer, Route, TlsLayer,
};

type Body = Empty<Bytes>;

/// What a SOCKS relay was asked for: the protocol version and the destination as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Asked {
    version: u8,
    dest: String,
}

/// A SOCKS relay on loopback, no authentication: SOCKS4 (`VN=4`, IPv4 or 4a domain) and
/// SOCKS5 (`CONNECT`, any address type). It records each request and relays to loopback
/// destinations only. Bounded: a few connections.
async fn socks_relay() -> (SocketAddr, Arc<Mutex<Vec<Asked>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let _ = relay_one(client, log).await;
            });
        }
    });
    (addr, asked)
}

async fn relay_one(mut c: TcpStream, log: Arc<Mutex<Vec<Asked>>>) -> std::io::Result<()> {
    let version = c.read_u8().await?;
    let (dest, port) = if version == 4 {
        let _cmd = c.read_u8().await?;
        let port = c.read_u16().await?;
        let mut ip = [0u8; 4];
        c.read_exact(&mut ip).await?;
        let _user = read_nul_terminated(&mut c).await?;
        let dest = if ip[..3] == [0, 0, 0] && ip[3] != 0 {
            read_nul_terminated(&mut c).await?
        } else {
            std::net::Ipv4Addr::from(ip).to_string()
        };
        (dest, port)
    } else {
        let n = c.read_u8().await?;
        let mut methods = vec![0; usize::from(n)];
        c.read_exact(&mut methods).await?;
        c.write_all(&[5, 0]).await?;
        let mut head = [0u8; 4];
        c.read_exact(&mut head).await?;
        let dest = match head[3] {
            1 => {
                let mut ip = [0u8; 4];
                c.read_exact(&mut ip).await?;
                std::net::Ipv4Addr::from(ip).to_string()
            }
            3 => {
                let len = c.read_u8().await?;
                let mut name = vec![0; usize::from(len)];
                c.read_exact(&mut name).await?;
                String::from_utf8_lossy(&name).into_owned()
            }
            _ => {
                let mut ip = [0u8; 16];
                c.read_exact(&mut ip).await?;
                std::net::Ipv6Addr::from(ip).to_string()
            }
        };
        (dest, c.read_u16().await?)
    };
    log.lock().unwrap().push(Asked {
        version,
        dest: format!("{dest}:{port}"),
    });
    let upstream = match dest.as_str() {
        "127.0.0.1" | "localhost" => TcpStream::connect(("127.0.0.1", port)).await,
        _ => Err(std::io::Error::other("not loopback")),
    };
    let Ok(mut upstream) = upstream else {
        let refusal: &[u8] = if version == 4 {
            &[0, 0x5B, 0, 0, 0, 0, 0, 0]
        } else {
            &[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]
        };
        return c.write_all(refusal).await;
    };
    if version == 4 {
        c.write_all(&[0, 0x5A, 0, 0, 0, 0, 0, 0]).await?;
    } else {
        c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    }
    tokio::io::copy_bidirectional(&mut c, &mut upstream).await?;
    Ok(())
}

async fn read_nul_terminated(c: &mut TcpStream) -> std::io::Result<String> {
    let mut out = Vec::new();
    for _ in 0..256 {
        match c.read_u8().await? {
            0 => return Ok(String::from_utf8_lossy(&out).into_owned()),
            b => out.push(b),
        }
    }
    Err(std::io::Error::other("no NUL within 256 bytes"))
}

fn stack(
    layer: ProxyConnectLayer,
    origin: &TestOrigin,
) -> impl tower::Service<
    Uri,
    Response = HttpConnection<Body>,
    Error = tower_tunnel::Error,
    Future: Send,
> + Clone {
    ServiceBuilder::new()
        .layer(AlpnDispatchLayer::new())
        .layer(TlsLayer::new(origin.client_config()))
        .layer(layer.with_proxy_tls(client_config()))
        .service(HttpConnector::new())
}

/// A `GET /` that succeeds; `via_test_proxy`: the origin saw the connection come from a
/// `TestProxy` (it cannot tell a SOCKS relay's from a direct one).
async fn get_ok(conn: &mut HttpConnection<Body>, via_test_proxy: bool) {
    let res = conn
        .send_request(Request::get("/").body(Body::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let via = res.headers()["x-origin-via-proxy"].to_str().unwrap();
    assert_eq!(via, if via_test_proxy { "true" } else { "false" });
}

#[tokio::test]
async fn socks4_resolves_the_target_here_to_ipv4() {
    let origin = TestOrigin::start().await.unwrap();
    let (relay, asked) = socks_relay().await;
    for scheme in ["socks4", "socks"] {
        let proxy = Proxy::new(&format!("{scheme}://{relay}")).unwrap();
        let mut conn = stack(ProxyConnectLayer::new(proxy), &origin)
            .oneshot(origin.https_url().parse().unwrap())
            .await
            .unwrap();
        assert!(
            matches!(conn.info().route(), Route::Socks4 { .. }),
            "{}",
            conn.info()
        );
        get_ok(&mut conn, false).await;
    }
    // `localhost` went to the proxy as an address, never as a name.
    let port = origin.addr().port();
    let want = Asked {
        version: 4,
        dest: format!("127.0.0.1:{port}"),
    };
    assert_eq!(*asked.lock().unwrap(), [want.clone(), want]);
}

#[tokio::test]
async fn socks4_cannot_carry_ipv6_and_says_so() {
    let (relay, asked) = socks_relay().await;
    let proxy = Proxy::new(&format!("socks4://{relay}")).unwrap();
    let err = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new())
        .oneshot("https://[::1]:443/".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTarget);
    assert!(err.to_string().contains("SOCKS4"), "{err}");
    assert!(asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn connect_inside_connect() {
    let origin = TestOrigin::start().await.unwrap();
    let outer = TestProxy::start().await.unwrap();
    let inner = TestProxy::builder()
        .basic_auth("in", "pw")
        .start()
        .await
        .unwrap();
    let proxy = Proxy::new(&format!("http://in:pw@{}", inner.addr()))
        .unwrap()
        .with_preproxy(Proxy::new(&outer.url()).unwrap());
    let mut conn = stack(ProxyConnectLayer::new(proxy), &origin)
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(conn.version(), Version::HTTP_2);
    get_ok(&mut conn, true).await;
    // Each proxy saw its own hop: the outer one a CONNECT to the inner one, the inner one
    // (with its credentials, inside the outer tunnel) a CONNECT to the origin.
    let (o, i) = (outer.requests(), inner.requests());
    assert_eq!((o.len(), i.len()), (1, 1));
    assert_eq!(
        (o[0].method.as_str(), o[0].target.clone()),
        ("CONNECT", inner.addr().to_string())
    );
    assert!(!o[0].headers.contains_key("proxy-authorization"));
    assert_eq!(
        (i[0].method.as_str(), i[0].target.clone()),
        ("CONNECT", origin.authority())
    );
    assert_eq!(i[0].headers["proxy-authorization"], "Basic aW46cHc=");
    let shown = conn.info().to_string();
    assert!(
        shown.contains(&format!("tunnel via {}", inner.addr())),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("through http://{}", outer.addr())),
        "{shown}"
    );
    assert_eq!(origin.direct_connections(), 0);
}

#[tokio::test]
async fn socks5_in_front_of_an_http_proxy() {
    let origin = TestOrigin::start().await.unwrap();
    let (relay, asked) = socks_relay().await;
    let inner = TestProxy::start().await.unwrap();
    let proxy = Proxy::new(&inner.url())
        .unwrap()
        .with_preproxy(Proxy::new(&format!("socks5h://{relay}")).unwrap());
    let mut conn = stack(ProxyConnectLayer::new(proxy), &origin)
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap();
    get_ok(&mut conn, true).await;
    assert_eq!(
        *asked.lock().unwrap(),
        [Asked {
            version: 5,
            dest: inner.addr().to_string()
        }]
    );
    assert_eq!(inner.requests()[0].target, origin.authority());
    // An http:// target goes through the chain too, forwarded to the inner proxy.
    let plain = TestOrigin::builder().plain_http().start().await.unwrap();
    let target = format!("http://127.0.0.1:{}/x", plain.addr().port());
    let conn = stack(
        ProxyConnectLayer::new(
            Proxy::new(&inner.url())
                .unwrap()
                .with_preproxy(Proxy::new(&format!("socks5://{relay}")).unwrap()),
        ),
        &plain,
    )
    .oneshot(target.parse().unwrap())
    .await
    .unwrap();
    assert!(conn.info().route().is_forward(), "{}", conn.info());
}

#[tokio::test]
async fn https_proxy_inside_a_tunnel_gets_its_own_tls() {
    let origin = TestOrigin::start().await.unwrap();
    let outer = TestProxy::start().await.unwrap();
    let inner = TestH2Proxy::start().await.unwrap();
    let proxy = Proxy::new(&inner.url())
        .unwrap()
        .with_preproxy(Proxy::new(&outer.url()).unwrap());
    let mut conn = stack(ProxyConnectLayer::new(proxy), &origin)
        .oneshot(origin.https_url().parse().unwrap())
        .await
        .unwrap();
    get_ok(&mut conn, true).await;
    // TLS to the inner proxy ran inside the outer tunnel, and offered HTTP/1.1 alone.
    assert!(
        matches!(conn.info().route(), Route::Tunnel { .. }),
        "{}",
        conn.info()
    );
    assert!(conn.info().timings().proxy_tls().is_some());
    assert_eq!(outer.requests()[0].target, inner.addr().to_string());
    assert_eq!((inner.connections(), inner.h2_connections()), (1, 0));
}

#[tokio::test]
async fn each_hop_refusal_names_that_hop() {
    let outer = TestProxy::builder()
        .fault(Fault::Status(403, Vec::new(), Vec::new()))
        .start()
        .await
        .unwrap();
    let inner = TestProxy::start().await.unwrap();
    let proxy = Proxy::new(&inner.url())
        .unwrap()
        .with_preproxy(Proxy::new(&outer.url()).unwrap());
    let connect = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new());
    let err = connect
        .oneshot("https://localhost:1/".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyRefused);
    assert_eq!(
        err.to_string(),
        format!(
            "proxy {} refused CONNECT to {}: 403 Forbidden",
            outer.addr(),
            inner.addr()
        )
    );
    assert!(inner.requests().is_empty());

    // The inner hop refuses: its own name, and the target.
    let outer = TestProxy::start().await.unwrap();
    let inner = TestProxy::builder()
        .basic_auth("u", "p")
        .start()
        .await
        .unwrap();
    let proxy = Proxy::new(&inner.url())
        .unwrap()
        .with_preproxy(Proxy::new(&outer.url()).unwrap());
    let err = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new())
        .oneshot("https://localhost:1/".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProxyAuthRequired);
    assert_eq!(err.proxy().unwrap().as_str(), inner.addr().to_string());
    assert_eq!(err.target().unwrap().as_str(), "localhost:1");
}

#[tokio::test]
async fn a_chain_is_bounded() {
    let mut proxy = Proxy::new("http://127.0.0.1:1").unwrap();
    for _ in 0..4 {
        proxy = Proxy::new("http://127.0.0.1:1")
            .unwrap()
            .with_preproxy(proxy);
    }
    let err = ServiceBuilder::new()
        .layer(ProxyConnectLayer::new(proxy))
        .service(HttpConnector::new())
        .oneshot("https://localhost:1/".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidProxy);
    assert!(err.to_string().contains("at most 4 proxies"), "{err}");
}
