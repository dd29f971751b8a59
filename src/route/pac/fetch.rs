//! Fetching a PAC script: one plain HTTP/1.1 `GET`, straight to the
//! server (never through a proxy, and so never through the script being
//! fetched), no redirect followed, the body read up to a bound.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{Error, ErrorKind};

/// The largest script accepted.
pub(crate) const MAX_SCRIPT: usize = 1 << 20;

/// How long the whole fetch (connect, request, body) may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL as errors and logs show it: scheme, host, port and path, never
/// credentials or a query (a PAC URL can carry a token in either).
pub(crate) fn display_url(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{scheme}://{host}{port}{}", uri.path())
}

fn fetch_error(url: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::PacFetch, None).with_detail(format!("{url}: {detail}"))
}

/// Fetches the script at `url` (`http://` only), within
/// [`FETCH_TIMEOUT`].
pub(crate) async fn fetch(url: &str) -> Result<String, Error> {
    let uri: Uri = url.parse().map_err(|_| {
        Error::new(ErrorKind::PacFetch, None).with_detail("the PAC URL is not a valid URL")
    })?;
    let shown = display_url(&uri);
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err(fetch_error(
                &shown,
                "https:// PAC URLs are not supported; use http:// or Pac::from_script",
            ))
        }
        _ => return Err(fetch_error(&shown, "only http:// PAC URLs are supported")),
    }
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return Err(fetch_error(&shown, "the URL has no host"));
    };
    match tokio::time::timeout(FETCH_TIMEOUT, get(&uri, host, &shown)).await {
        Ok(result) => result,
        Err(_) => Err(fetch_error(
            &shown,
            format_args!("no complete answer within {FETCH_TIMEOUT:?}"),
        )),
    }
}

async fn get(uri: &Uri, host: &str, shown: &str) -> Result<String, Error> {
    let port = uri.port_u16().unwrap_or(80);
    let dial_host = host.trim_matches(['[', ']']);
    let tcp = TcpStream::connect((dial_host, port))
        .await
        .map_err(|e| fetch_error(shown, "could not connect").with_source(e))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| fetch_error(shown, "HTTP handshake failed").with_source(e))?;
    let conn = tokio::spawn(conn);
    let authority = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(HOST, authority)
        .header(ACCEPT, "application/x-ns-proxy-autoconfig, */*")
        .header(
            USER_AGENT,
            concat!("tower-tunnel/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| fetch_error(shown, "bad request").with_source(e))?;
    let response = send
        .send_request(request)
        .await
        .map_err(|e| fetch_error(shown, "the request failed").with_source(e))?;
    let status = response.status();
    let result = read(response, status, shown).await;
    conn.abort();
    result
}

async fn read(
    response: http::Response<hyper::body::Incoming>,
    status: StatusCode,
    shown: &str,
) -> Result<String, Error> {
    let reason = status.canonical_reason().unwrap_or("");
    if status.is_redirection() {
        // A redirect could lead to another scheme or host the user never
        // named; browsers follow them, this crate asks for the final URL.
        let to = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Uri>().ok())
            .map(|u| format!(" to {}", display_url(&u)))
            .unwrap_or_default();
        return Err(fetch_error(
            shown,
            format_args!(
                "{} {reason}: redirect{to} not followed; give the final URL",
                status.as_u16()
            ),
        ));
    }
    if status != StatusCode::OK {
        return Err(fetch_error(
            shown,
            format_args!("{} {reason}", status.as_u16()),
        ));
    }
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_SCRIPT as u64) {
        return Err(too_large(shown));
    }
    let mut body = response.into_body();
    let mut script = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| fetch_error(shown, "reading the body failed").with_source(e))?;
        if let Ok(data) = frame.into_data() {
            if script.len() + data.len() > MAX_SCRIPT {
                return Err(too_large(shown));
            }
            script.extend_from_slice(&data);
        }
    }
    // PAC files are ASCII in practice; a stray Latin-1 byte in a comment
    // must not fail the whole script.
    Ok(String::from_utf8_lossy(&script).into_owned())
}

fn too_large(shown: &str) -> Error {
    fetch_error(
        shown,
        format_args!("the script is larger than {MAX_SCRIPT} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let uri: Uri = "http://user:secret@wpad.corp:8080/proxy.pac?token=abc"
            .parse()
            .unwrap();
        assert_eq!(display_url(&uri), "http://wpad.corp:8080/proxy.pac");
    }
}
