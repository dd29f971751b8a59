//! Crate-private macros.

/// A named future around a boxed one, as tower's `opaque_future!`: the public
/// type keeps its name while what it wraps can change.
macro_rules! opaque_future {
    ($(#[$m:meta])* pub struct $name:ident<$($param:ident),*> => $output:ty;) => {
        $(#[$m])*
        pub struct $name<$($param),*> {
            inner: std::pin::Pin<Box<dyn std::future::Future<Output = $output> + Send>>,
        }

        impl<$($param),*> $name<$($param),*> {
            pub(crate) fn new(
                inner: impl std::future::Future<Output = $output> + Send + 'static,
            ) -> Self {
                $name { inner: Box::pin(inner) }
            }
        }

        impl<$($param),*> std::future::Future for $name<$($param),*> {
            type Output = $output;

            fn poll(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Self::Output> {
                self.inner.as_mut().poll(cx)
            }
        }

        impl<$($param),*> std::fmt::Debug for $name<$($param),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

/// `get_ref`, `get_mut` and `into_inner` for a service wrapping `inner`,
/// as tower-http's `define_inner_service_accessors!`; `$what` names the
/// service below in the docs.
macro_rules! inner_service_accessors {
    ($what:literal) => {
        #[doc = concat!("The ", $what, ".")]
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        #[doc = concat!("The ", $what, ", mutably.")]
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        #[doc = concat!("Consumes `self`, returning the ", $what, ".")]
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub(crate) use {inner_service_accessors, opaque_future};
