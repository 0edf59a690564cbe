//! The provider contract, as tests (feature `testing`): the suite that
//! [`MemoryProvider`](crate::MemoryProvider) and `RedisProvider` pass, for
//! a provider of your own (Postgres, NATS…) to prove itself with one line
//! in its tests:
//!
//! ```no_run
//! use comet::{MemoryProvider, Provider, Retention};
//! use std::sync::Arc;
//!
//! /// A fresh provider for one test (for a shared store, a fresh key space
//! /// is enough: every test uses its own random channel names).
//! async fn mine(retention: Retention) -> Arc<dyn Provider> {
//!     Arc::new(MemoryProvider::new(retention))
//! }
//!
//! comet::provider_suite!(mine);
//! # fn main() {}
//! ```
//!
//! with `comet = { …, features = ["testing"] }` under
//! `[dev-dependencies]`. [`provider_suite!`](crate::provider_suite) expands
//! to one `#[test]` per behaviour, each on its own two-thread tokio runtime
//! (what `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`
//! builds, without needing tokio among your dependencies), calling the
//! function of the same name here with a [`Factory`] around `mine`. A
//! single test can also be called by hand, from a test of your own:
//! `comet::testing::ids_strictly_increase(Factory::new(mine)).await`.
//!
//! The tests drive the provider through the manager, as an app does, so
//! they prove the guarantees of the crate docs ("The wire protocol")
//! rather than one method at a time. They take timeouts of a few hundred
//! milliseconds (short idle and connection timeouts, a retention of
//! 200 ms), so a provider must answer within tens of milliseconds; the
//! whole suite takes some seconds.

mod channels;
mod clients;
mod cursors;
mod delivery;
mod idle;
mod many;
mod presence;
mod shutdown;
mod streams;
mod support;

pub use channels::{
    a_channel_opened_at_run_time_is_served_and_listed,
    a_channel_opened_on_one_node_is_found_on_another, a_closed_channel_ends_its_polls_everywhere,
    channels_follow_the_apps_rules,
};
pub use clients::{
    channels_of_one_provider_are_independent, duplicate_display_name_is_refused,
    invalid_display_names_are_refused, names_are_unique_by_the_key_the_app_gives,
    removed_client_gets_unknown_client, unknown_token_is_unknown_client,
};
pub use cursors::{
    expired_cursor_is_refused_not_skipped, history_and_cursor_leave_no_gap,
    history_skips_what_is_for_others, malformed_cursor_is_refused,
    retention_drops_old_messages_by_age,
};
pub use delivery::{
    a_send_repeated_with_its_idempotency_key_is_appended_once, broadcast_wakes_every_waiting_poll,
    ids_strictly_increase, null_cursor_means_from_now_on, poll_times_out_when_nothing_arrives,
    poll_waits_then_receives, private_message_reaches_only_its_target,
    private_message_to_unknown_client_fails, replies_are_bounded_batches,
    resumes_from_cursor_without_duplicates, too_many_concurrent_polls_are_refused,
    two_polls_of_one_client_both_receive,
};
pub use idle::{
    a_poll_start_counts_as_activity, a_touch_uses_the_clients_own_idle_timeout,
    held_poll_keeps_a_client_alive, idle_client_is_removed_once_with_one_leave,
};
pub use many::{
    a_channel_followed_from_now_on_misses_nothing_between_polls, a_channel_of_the_poll_fails_alone,
    a_held_poll_of_several_channels_wakes_on_any,
    a_poll_of_several_channels_counts_once_on_the_node,
    one_poll_follows_several_channels_each_exactly_once,
};
pub use presence::{
    a_crowd_arriving_makes_one_bounded_change, a_graceful_stop_sends_the_pending_window,
    a_join_is_not_announced_after_its_leave_from_another_node,
    joins_and_leaves_of_a_window_go_out_as_one_change,
};
pub use shutdown::{
    answering_a_wake_up_always_settles, shutdown_answers_every_poll_stopping,
    shutdown_ends_a_stream_with_stopping,
};
pub use streams::{
    a_private_message_reaches_only_its_targets_stream,
    a_removed_clients_stream_ends_with_unknown_client,
    a_stream_from_now_on_keeps_its_start_across_timeouts,
    a_stream_sees_what_was_sent_between_its_polls,
    a_stream_yields_each_message_once_in_order_across_resubscribing,
};

use crate::{Provider, Retention};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type ProviderFuture = Pin<Box<dyn Future<Output = Arc<dyn Provider>> + Send>>;

/// Builds the providers of one test: an async fn taking a [`Retention`]
/// and giving a fresh `Arc<dyn Provider>` that keeps messages that long.
pub struct Factory(Box<dyn Fn(Retention) -> ProviderFuture + Send + Sync>);

impl Factory {
    /// Wraps `factory`, e.g. `Factory::new(mine)` for
    /// `async fn mine(retention: Retention) -> Arc<dyn Provider>`.
    pub fn new<F, P>(factory: F) -> Self
    where
        F: Fn(Retention) -> P + Send + Sync + 'static,
        P: Future<Output = Arc<dyn Provider>> + Send + 'static,
    {
        Self(Box::new(move |retention| Box::pin(factory(retention))))
    }

    /// A fresh provider that keeps messages as `retention` says.
    pub async fn make(&self, retention: Retention) -> Arc<dyn Provider> {
        (self.0)(retention).await
    }

    async fn default_provider(&self) -> Arc<dyn Provider> {
        self.make(Retention::default()).await
    }
}

/// Runs one test of the suite against `factory` on a two-thread tokio
/// runtime: the body of each test [`provider_suite!`](crate::provider_suite)
/// writes, so the user's crate needs no tokio of its own.
#[doc(hidden)]
pub fn run<T, F, P>(test: impl FnOnce(Factory) -> T, factory: F)
where
    T: Future<Output = ()>,
    F: Fn(Retention) -> P + Send + Sync + 'static,
    P: Future<Output = Arc<dyn Provider>> + Send + 'static,
{
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(test(Factory::new(factory)));
}

/// The provider suite ([`comet::testing`](crate::testing)) as tests: one
/// `#[test]` per behaviour, for the provider `$factory` builds (the path
/// of an async fn taking a [`Retention`](crate::Retention) and giving a
/// fresh `Arc<dyn Provider>`). Needs the feature `testing`:
///
/// ```no_run
/// # use comet::{MemoryProvider, Provider, Retention};
/// # use std::sync::Arc;
/// # async fn mine(retention: Retention) -> Arc<dyn Provider> {
/// #     Arc::new(MemoryProvider::new(retention))
/// # }
/// comet::provider_suite!(mine);
/// # fn main() {}
/// ```
///
/// The tests are named after the behaviours
/// (`ids_strictly_increase`, …): to keep them apart from tests of your
/// own, call the macro inside a module (`mod suite { comet::provider_suite!(super::mine); }`).
#[macro_export]
macro_rules! provider_suite {
    ($factory:path) => {
        $crate::provider_suite!(@tests $factory;
            ids_strictly_increase,
            a_channel_opened_at_run_time_is_served_and_listed,
            a_channel_opened_on_one_node_is_found_on_another,
            a_closed_channel_ends_its_polls_everywhere,
            channels_follow_the_apps_rules,
            one_poll_follows_several_channels_each_exactly_once,
            a_poll_of_several_channels_counts_once_on_the_node,
            a_channel_followed_from_now_on_misses_nothing_between_polls,
            a_held_poll_of_several_channels_wakes_on_any,
            a_channel_of_the_poll_fails_alone,
            a_send_repeated_with_its_idempotency_key_is_appended_once,
            resumes_from_cursor_without_duplicates,
            replies_are_bounded_batches,
            poll_waits_then_receives,
            poll_times_out_when_nothing_arrives,
            null_cursor_means_from_now_on,
            broadcast_wakes_every_waiting_poll,
            private_message_reaches_only_its_target,
            private_message_to_unknown_client_fails,
            duplicate_display_name_is_refused,
            names_are_unique_by_the_key_the_app_gives,
            invalid_display_names_are_refused,
            unknown_token_is_unknown_client,
            joins_and_leaves_of_a_window_go_out_as_one_change,
            a_crowd_arriving_makes_one_bounded_change,
            a_join_is_not_announced_after_its_leave_from_another_node,
            a_graceful_stop_sends_the_pending_window,
            removed_client_gets_unknown_client,
            expired_cursor_is_refused_not_skipped,
            retention_drops_old_messages_by_age,
            malformed_cursor_is_refused,
            history_and_cursor_leave_no_gap,
            history_skips_what_is_for_others,
            two_polls_of_one_client_both_receive,
            too_many_concurrent_polls_are_refused,
            idle_client_is_removed_once_with_one_leave,
            held_poll_keeps_a_client_alive,
            a_poll_start_counts_as_activity,
            a_touch_uses_the_clients_own_idle_timeout,
            channels_of_one_provider_are_independent,
            shutdown_answers_every_poll_stopping,
            answering_a_wake_up_always_settles,
            a_stream_yields_each_message_once_in_order_across_resubscribing,
            a_private_message_reaches_only_its_targets_stream,
            a_removed_clients_stream_ends_with_unknown_client,
            a_stream_sees_what_was_sent_between_its_polls,
            a_stream_from_now_on_keeps_its_start_across_timeouts,
            shutdown_ends_a_stream_with_stopping,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::run($crate::testing::$name, $factory);
            }
        )*
    };
}
