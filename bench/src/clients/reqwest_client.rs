//! reqwest 0.12 with rustls, through the http:// proxy.

use crate::fixtures::Env;
use crate::tls::Proto;
use crate::util::Result;

/// reqwest through the proxy, trusting only the test CA; `pooled: false` keeps no idle
/// connection, so that every request opens a fresh one.
pub fn reqwest_client(env: &Env, proto: Proto, pooled: bool) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&env.proxy_url)?)
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(env.ca_pem.as_bytes())?);
    if !pooled {
        b = b.pool_max_idle_per_host(0);
    }
    if proto == Proto::H1 {
        b = b.http1_only();
    }
    Ok(b.build()?)
}
