//! Which hops of a proxy list failed lately: the memory behind failover.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::list::{Hop, ProxyList};
use crate::error::{Error, ErrorKind, Phase};

/// How long a hop that could not be reached is passed over, by default:
/// five minutes, as Chromium.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// The most hops remembered at once; past it the oldest failure is
/// forgotten, so a script naming ever new proxies cannot grow the map.
const MAX_REMEMBERED: usize = 256;

/// A source of the current time, for the failover memory; tests inject
/// their own. See [`Proxies::with_clock`](crate::Proxies::with_clock).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Why a hop of a proxy list was passed over.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// This connection attempt tried the hop, and it could not be
    /// reached.
    Failed {
        /// The error's kind.
        kind: ErrorKind,
        /// The error, as it displays (it names the proxy, never its
        /// credentials).
        message: String,
    },
    /// The hop could not be reached `ago`, so it was moved to the end of
    /// the list until the retry period is over.
    RecentlyFailed {
        /// The kind of that error.
        kind: ErrorKind,
        /// How long ago it failed.
        ago: Duration,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Failed { message, .. } => write!(f, "failed: {message}"),
            SkipReason::RecentlyFailed { kind, ago } => {
                write!(f, "failed {} s ago ({kind:?}), tried last", ago.as_secs())
            }
        }
    }
}

/// A hop of a proxy list that was passed over, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    hop: Hop,
    reason: SkipReason,
}

impl Skipped {
    pub(crate) fn new(hop: Hop, reason: SkipReason) -> Self {
        Skipped { hop, reason }
    }

    /// The hop.
    pub fn hop(&self) -> &Hop {
        &self.hop
    }

    /// Why it was passed over.
    pub fn reason(&self) -> &SkipReason {
        &self.reason
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.hop, self.reason)
    }
}

/// Whether `err` means the hop could not be reached, so the next hop of
/// the list may be tried: the dial failed or timed out, the proxy's TLS
/// handshake failed, or the proxy closed, reset or went silent before it
/// answered. Never an answer of the proxy's (a status, a SOCKS reply):
/// those are returned as they are.
pub(crate) fn is_unreachable(err: &Error) -> bool {
    if err.proxy_response().is_some() {
        return false;
    }
    match err.kind() {
        ErrorKind::Dial => true,
        ErrorKind::ProxyTls | ErrorKind::ProxyAlpnMismatch => true,
        ErrorKind::ProxyClosed => true,
        ErrorKind::Timeout => matches!(
            err.phase(),
            Some(Phase::Dial | Phase::ProxyTls | Phase::ProxyConnect)
        ),
        // A reset before any answer: the proxy's answer would have been
        // read into a response (or a SOCKS reply kind) first.
        ErrorKind::Io => matches!(
            err.phase(),
            Some(Phase::Dial | Phase::ProxyTls | Phase::ProxyConnect)
        ),
        _ => false,
    }
}

/// What failed lately, shared by every clone of one [`Proxies`](crate::Proxies).
#[derive(Clone)]
pub(crate) struct Failover {
    retry_after: Duration,
    clock: Option<Clock>,
    failed: Arc<Mutex<HashMap<String, (Instant, ErrorKind)>>>,
}

impl Default for Failover {
    fn default() -> Self {
        Failover {
            retry_after: DEFAULT_RETRY_AFTER,
            clock: None,
            failed: Arc::default(),
        }
    }
}

/// The key a hop is remembered by: its display form (kind, address and
/// chain; never credentials).
fn key(hop: &Hop) -> Option<String> {
    hop.proxy().map(|proxy| proxy.to_string())
}

impl Failover {
    pub(crate) fn set_retry_after(&mut self, after: Duration) {
        self.retry_after = after;
    }

    pub(crate) fn set_clock(&mut self, clock: Clock) {
        self.clock = Some(clock);
    }

    fn now(&self) -> Instant {
        self.clock
            .as_ref()
            .map_or_else(Instant::now, |clock| clock())
    }

    /// `hops` in the order to try them: the ones that failed within the
    /// retry period move to the end (in their own order), named in the
    /// second list with why.
    pub(crate) fn order(&self, list: &ProxyList) -> (Arc<[Hop]>, Vec<Skipped>) {
        let failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_empty() {
            return (list.shared_hops(), Vec::new());
        }
        let hops = list.hops();
        let now = self.now();
        let mut good = Vec::with_capacity(hops.len());
        let mut bad = Vec::new();
        let mut skipped = Vec::new();
        for hop in hops {
            let recent = key(hop)
                .and_then(|k| failed.get(&k).copied())
                .map(|(at, kind)| (now.saturating_duration_since(at), kind))
                .filter(|(ago, _)| *ago < self.retry_after);
            match recent {
                Some((ago, kind)) => {
                    bad.push(hop.clone());
                    skipped.push(Skipped::new(
                        hop.clone(),
                        SkipReason::RecentlyFailed { kind, ago },
                    ));
                }
                None => good.push(hop.clone()),
            }
        }
        good.extend(bad);
        (good.into(), skipped)
    }

    /// Remembers that `hop` could not be reached.
    pub(crate) fn failed(&self, hop: &Hop, kind: ErrorKind) {
        let Some(key) = key(hop) else { return };
        let now = self.now();
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        let retry_after = self.retry_after;
        failed.retain(|_, (at, _)| now.saturating_duration_since(*at) < retry_after);
        if failed.len() >= MAX_REMEMBERED {
            if let Some(oldest) = failed.iter().min_by_key(|(_, (at, _))| *at) {
                let oldest = oldest.0.clone();
                failed.remove(&oldest);
            }
        }
        failed.insert(key, (now, kind));
    }

    /// Forgets a failure of `hop`: it was reached again.
    pub(crate) fn reached(&self, hop: &Hop) {
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        // The key is built only when there is something to forget: a
        // connection through a hop that never failed allocates nothing here.
        if failed.is_empty() {
            return;
        }
        if let Some(key) = key(hop) {
            failed.remove(&key);
        }
    }
}

impl fmt::Debug for Failover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failover")
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Proxy;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn failed_hops_go_last_until_the_period_is_over() {
        let base = Instant::now();
        let secs = Arc::new(AtomicU64::new(0));
        let clock_secs = secs.clone();
        let mut memory = Failover::default();
        memory.set_clock(Arc::new(move || {
            base + Duration::from_secs(clock_secs.load(Ordering::SeqCst))
        }));
        let list = ProxyList::parse("PROXY a:1; PROXY b:2; DIRECT").unwrap();
        let a = list.hops()[0].clone();
        let (order, skipped) = memory.order(&list);
        assert_eq!(&order[..], list.hops());
        assert!(skipped.is_empty());

        memory.failed(&a, ErrorKind::Dial);
        memory.failed(&Hop::Direct, ErrorKind::Dial); // DIRECT is never remembered
        secs.store(60, Ordering::SeqCst);
        let (order, skipped) = memory.order(&list);
        let shown: Vec<String> = order.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["PROXY b:2", "DIRECT", "PROXY a:1"]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            skipped[0].reason(),
            &SkipReason::RecentlyFailed {
                kind: ErrorKind::Dial,
                ago: Duration::from_secs(60)
            }
        );

        secs.store(DEFAULT_RETRY_AFTER.as_secs(), Ordering::SeqCst);
        let (order, skipped) = memory.order(&list);
        assert_eq!(&order[..], list.hops());
        assert!(skipped.is_empty());

        memory.failed(&a, ErrorKind::Timeout);
        memory.reached(&a);
        assert_eq!(&memory.order(&list).0[..], list.hops());
    }

    #[test]
    fn memory_is_bounded() {
        let memory = Failover::default();
        for port in 1..=1000u16 {
            let hop = Hop::from(Proxy::new(&format!("http://p:{port}")).unwrap());
            memory.failed(&hop, ErrorKind::Dial);
        }
        assert!(memory.failed.lock().unwrap().len() <= MAX_REMEMBERED);
    }
}
