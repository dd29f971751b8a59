use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed task, as handed to a custom executor.
pub type BoxTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The executor that runs each connection's background task.
#[derive(Clone)]
pub(crate) enum Exec {
    Tokio,
    Custom(Arc<dyn Fn(BoxTask) + Send + Sync>),
}

impl Exec {
    pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        match self {
            Exec::Tokio => {
                tokio::spawn(fut);
            }
            Exec::Custom(spawn) => spawn(Box::pin(fut)),
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for Exec {
    fn execute(&self, fut: F) {
        self.spawn(fut);
    }
}

impl fmt::Debug for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exec::Tokio => "Exec::Tokio",
            Exec::Custom(_) => "Exec::Custom",
        })
    }
}
