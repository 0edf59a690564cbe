//! The router's one layer: what every request and response of the router
//! passes through, in this order:
//!
//! 1. a `POST /api/…` (a server function) from another origin gets `403`
//!    ([`crate::origin`]);
//! 2. a server function's arguments are checked before Leptos reads them
//!    ([`crate::chat::args`]);
//! 3. every response gets the security headers ([`crate::headers`]).
//!
//! One hand-written layer rather than three `axum::middleware::from_fn`:
//! each of those boxes its future and clones the service below it on
//! every request. A request that is not a server-function call (a page, a
//! file, an early-acknowledged poll) costs here a path check and four
//! header inserts; only a call whose arguments are checked is boxed, for
//! its body has to be read first. Measured in the broadcast scenario,
//! whose publisher sends through this layer (BENCHMARKS.md, issue 13).

use crate::chat::args;
use crate::origin::{self, OriginRule};
use axum::extract::Request;
use axum::response::Response;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Wraps the router in a [`Guard`].
#[derive(Clone)]
pub struct GuardLayer {
    origin: Arc<OriginRule>,
}

impl GuardLayer {
    pub fn new(origin: Arc<OriginRule>) -> Self {
        Self { origin }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            origin: self.origin.clone(),
        }
    }
}

/// The service: see the module's documentation.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    origin: Arc<OriginRule>,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(refusal) = origin::refusal(&self.origin, &request) {
            return GuardFuture::Answered {
                response: Some(refusal),
            };
        }
        if let Some(fields) = args::endpoint_fields(&request) {
            // The service made ready by `poll_ready` goes with the call; a
            // clone stays for the next one (tower's usual hand-over).
            let ready = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, ready);
            return GuardFuture::Checked {
                call: Box::pin(args::checked_call(fields, request, inner)),
            };
        }
        GuardFuture::Passed {
            call: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// A [`Guard`]'s answer in the making.
    #[project = Projected]
    pub enum GuardFuture<F> {
        /// Not a server-function call with arguments: the router's own.
        Passed { #[pin] call: F },
        /// A server-function call, its arguments being checked and run.
        Checked { call: Pin<Box<dyn Future<Output = Response> + Send>> },
        /// Refused before the router saw it.
        Answered { response: Option<Response> },
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = match self.project() {
            Projected::Passed { call } => match call.poll(cx) {
                Poll::Ready(Ok(response)) => response,
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => return Poll::Pending,
            },
            Projected::Checked { call } => match call.as_mut().poll(cx) {
                Poll::Ready(response) => response,
                Poll::Pending => return Poll::Pending,
            },
            Projected::Answered { response } => response
                .take()
                .expect("a guard's answer is taken only once"),
        };
        crate::headers::add_security_headers(response.headers_mut());
        Poll::Ready(Ok(response))
    }
}
