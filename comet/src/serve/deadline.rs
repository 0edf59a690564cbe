//! A deadline that costs nothing when the work is already done.
//!
//! `tokio::time::timeout` reads the clock and takes the runtime's handle
//! (a shared reference count) as soon as it is called, even when the work
//! it guards is ready on its first poll, as a request head that arrived in
//! one segment is. On the path every poll takes, those two were measurable
//! (BENCHMARKS.md, issue 13). [`within`] starts its timer only once the
//! work has to wait: the deadline then counts from that first wait, which
//! for the connection loop is within microseconds of the call.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// The work was not done within its deadline.
#[derive(Debug)]
pub struct TimedOut;

/// `work`'s output, or [`TimedOut`] if it is still waiting `limit` after
/// it first had to wait.
pub async fn within<F: Future>(limit: Duration, work: F) -> Result<F::Output, TimedOut> {
    let mut work = pin!(work);
    let mut timer = pin!(None::<tokio::time::Sleep>);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if timer.is_none() {
            timer.set(Some(tokio::time::sleep(limit)));
        }
        match timer.as_mut().as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| Err(TimedOut)),
            None => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ready_work_needs_no_timer() {
        assert_eq!(within(Duration::ZERO, async { 7 }).await.unwrap(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_work_times_out_after_the_limit() {
        let start = tokio::time::Instant::now();
        let result = within(Duration::from_secs(3), std::future::pending::<()>()).await;
        assert!(result.is_err());
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn work_done_before_the_limit_wins() {
        let work = tokio::time::sleep(Duration::from_secs(2));
        assert!(within(Duration::from_secs(3), work).await.is_ok());
    }
}
