//! Deadlines for the phases of making a connection.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Phase};

/// The limit of every phase unless configured otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `fut` under an optional deadline, failing with a timeout error for
/// `phase`.
pub(crate) async fn within<F: Future>(
    limit: Option<Duration>,
    phase: Phase,
    fut: F,
) -> Result<F::Output, Error> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| Error::timeout(phase, limit)),
        None => Ok(fut.await),
    }
}
