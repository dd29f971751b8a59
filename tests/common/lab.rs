//! Pieces the lab tests share (`tests/system_interop.rs`,
//! `tests/pac_interop.rs`): a loopback server for a PAC script, and a
//! bounded wait for a proxy's log to show a line.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

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

/// Waits (at most 10 s) for the log at `$INTEROP_DIR/<log>` to hold
/// `needle`; panics naming both when it never does. Without
/// `INTEROP_DIR` it says so and checks nothing.
pub async fn assert_logged(log: &str, needle: &str) {
    let Some(dir) = std::env::var_os("INTEROP_DIR") else {
        eprintln!("note: INTEROP_DIR not set; not checking {log}");
        return;
    };
    let path = Path::new(&dir).join(log);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if std::fs::read_to_string(&path).is_ok_and(|text| text.contains(needle)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never showed {needle:?}", path.display());
}

/// How many times the log at `$INTEROP_DIR/<log>` holds `needle` now (0
/// when it cannot be read).
pub fn count_logged(log: &str, needle: &str) -> usize {
    let Some(dir) = std::env::var_os("INTEROP_DIR") else {
        return 0;
    };
    std::fs::read_to_string(Path::new(&dir).join(log))
        .map(|text| text.matches(needle).count())
        .unwrap_or(0)
}
