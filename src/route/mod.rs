//! Where routes come from: [`Proxy`] values, the [`Proxies`] rules that
//! pick one per target (explicit, the environment as curl or gRPC reads
//! it, or the operating system's proxy settings, [`SystemSettings`]), the
//! [`NoProxy`] bypass list, and the [`Decision`] made for each target.
//!
//! Everything here is plain data and pure functions: nothing dials, nothing
//! holds a connection. [`ProxyConnectLayer`](crate::ProxyConnectLayer)
//! asks [`Proxies::decide`] for each connection, and
//! [`ForwardProxyLayer`](crate::ForwardProxyLayer) asks
//! [`Proxies::forward_headers`] for each forwarded request.
//!
//! # Example
//!
//! ```
//! use tower_tunnel::{NoProxy, Proxies, Proxy, Rule};
//!
//! let proxies = Proxies::new()
//!     .with_all(Proxy::new("http://proxy.corp:3128")?)
//!     .with_no_proxy(NoProxy::parse(".internal.corp"));
//! let decision = proxies.decide(&"https://db.internal.corp/".parse().unwrap())?;
//! assert!(decision.proxy().is_none());
//! assert_eq!(decision.rule(), &Rule::NoProxy(".internal.corp".into()));
//! # Ok::<(), tower_tunnel::Error>(())
//! ```
//!
//! # Errors
//!
//! [`ErrorKind::InvalidProxy`](crate::ErrorKind::InvalidProxy) for a proxy
//! URL that cannot be used, whether given directly or read from the
//! environment; the message names the variable, never the value (it may
//! hold a password).

mod env;
mod failover;
mod list;
mod no_proxy;
#[cfg(feature = "pac")]
#[cfg_attr(docsrs, doc(cfg(feature = "pac")))]
pub mod pac;
mod proxy;
mod rules;
mod system;
#[cfg(feature = "wpad")]
mod wpad;

pub(crate) use self::failover::is_unreachable;
pub use self::failover::{Clock, SkipReason, Skipped, DEFAULT_RETRY_AFTER};
pub use self::list::{Hop, ProxyList};
pub use self::no_proxy::NoProxy;
#[cfg(feature = "pac")]
pub use self::pac::Pac;
pub(crate) use self::proxy::{Auth, MAX_CHAIN};
pub use self::proxy::{Http2Mode, Proxy, ProxyAuth, ProxyKind};
pub use self::rules::{Decision, Proxies, Rule};
pub use self::system::{MacProxy, MacProxySettings, SystemSettings, WinInetSettings};
#[cfg(feature = "wpad")]
pub use self::wpad::{search_domains, wpad_urls};
