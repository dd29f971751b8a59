//! Pieces the lab tests share (`tests/interop.rs`,
//! `tests/system_interop.rs`, `tests/pac_interop.rs`): the lab's variables, a loopback server for a
//! PAC script, and a bounded wait for a proxy's log to show a line.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

/// The value of the lab's variable `name` (`.ci/interop/setup.sh` writes
/// them to `$INTEROP_DIR/ports.env`). The lab tests are `#[ignore]`d, so
/// this runs only when asked for: without the lab it fails, saying what to
/// do.
pub fn lab_var(name: &str) -> String {
    let on = matches!(std::env::var("TOWER_TUNNEL_INTEROP").as_deref(), Ok(v) if !v.is_empty() && v != "0");
    assert!(
        on,
        "this test needs the interop lab: run .ci/interop/setup.sh, \
         `source $INTEROP_DIR/ports.env`, then run it with --ignored (see .ci/interop/README.md)"
    );
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("TOWER_TUNNEL_INTEROP is set but {name} is not: source $INTEROP_DIR/ports.env"),
    }
}

/// Serves `script` as `/proxy.pac` on loopback, on a thread of its own,
/// for at most `requests` requests; returns the URL.
pub fn serve_pac(script: String, requests: usize) -> String {
    use std::io::{Read, Write};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/proxy.pac", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            // Bounded: until the blank line, or 64 KiB.
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{script}",
                script.len()
            );
        }
    });
    url
}

/// How long a server may take to write its log line about a connection.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's log: `$INTEROP_DIR/<log>`.
pub fn log_path(log: &str) -> std::path::PathBuf {
    Path::new(&lab_var("INTEROP_DIR")).join(log)
}

/// Waits (at most [`LOG_TIMEOUT`]) for the log at `$INTEROP_DIR/<log>` to
/// hold `needle`: the server itself saw the target. Panics with the log's
/// last lines when it never does, or when the log is missing.
pub async fn assert_logged(log: &str, needle: &str) {
    let path = log_path(log);
    let start = Instant::now();
    loop {
        match std::fs::read(&path) {
            Ok(text) if String::from_utf8_lossy(&text).contains(needle) => return,
            Ok(_) => {}
            Err(e) if start.elapsed() > LOG_TIMEOUT => {
                panic!("cannot read {}: {e}", path.display())
            }
            Err(_) => {}
        }
        if start.elapsed() > LOG_TIMEOUT {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<_> = text.lines().rev().take(20).collect();
            panic!(
                "{} never mentioned {needle:?} within {LOG_TIMEOUT:?}; its last lines:\n{}",
                path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many times the log at `$INTEROP_DIR/<log>` holds `needle` now (0
/// when it cannot be read yet).
pub fn count_logged(log: &str, needle: &str) -> usize {
    std::fs::read_to_string(log_path(log))
        .map(|text| text.matches(needle).count())
        .unwrap_or(0)
}

/// `GET /` on `conn`, within 60 s: the `TestOrigin`'s 200 and its body.
pub async fn get_hello(
    conn: &mut tower_tunnel::HttpConnection<http_body_util::Empty<bytes::Bytes>>,
) {
    use http_body_util::BodyExt as _;

    let request = http::Request::get("/")
        .body(http_body_util::Empty::new())
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(60), conn.send_request(request))
        .await
        .expect("in time")
        .expect("request");
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, tower_tunnel::test_util::HELLO_BODY.as_bytes());
}
