//! The conformance macro, and the one list of cases it runs.
//!
//! [`__conformance_case_list!`](crate::__conformance_case_list) is the only
//! place a case is named. Everything else is derived from it:
//!
//! - [`store_conformance_tests!`](crate::store_conformance_tests) turns its
//!   `store` groups into one `#[tokio::test]` each, in the store's crate;
//! - [`cases`](super::cases) re-exports exactly the listed functions. The
//!   case modules are private and `#[deny(dead_code)]`, so a case function
//!   that is not listed is never used and fails to compile, and a listed
//!   name without a function fails too;
//! - session-core's own tests run the `store` groups and, with
//!   `__core_conformance_tests!`, the `core` ones, over
//!   [`MapStore`](super::MapStore).

/// Generates one `#[tokio::test]` per conformance case, each with a fresh store
/// from `$factory`, an `async` closure taking [`Limits`](crate::Limits).
///
/// The cases are those of session-core's list whose outcome depends on the
/// store; the others (a session without a cookie, tampered cookies, key
/// rotation, typed values...) run in session-core's own tests.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::__conformance_case_list!([$crate::__conformance_tests] ($factory; store));
    };
}

/// One `#[tokio::test]` per `core` case: the session cases whose outcome
/// does not depend on the store, which session-core runs over
/// [`MapStore`](crate::testkit::MapStore) in its own tests.
#[doc(hidden)]
#[macro_export]
macro_rules! __core_conformance_tests {
    ($factory:expr) => {
        $crate::__conformance_case_list!([$crate::__conformance_tests] ($factory; core));
    };
}

/// The conformance cases, grouped: each group says who runs it (`store`:
/// every store's suite; `core`: session-core's tests alone, over the
/// reference store) and with what limits, and names its cases by module and
/// function. Hands them to the macro in brackets, after `$args`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case_list {
    ([$($then:tt)*] $args:tt) => {
        $($then)*! { $args
            // The Store trait alone.
            store($crate::Limits::default()) [
                store::get_on_unknown_session_is_empty,
                store::set_then_get_roundtrip,
                store::set_overwrites_value,
                store::get_many_answers_in_order,
                store::get_all_returns_user_keys_only,
                store::set_many_applies_all_and_none_deletes,
                store::set_many_is_atomic_for_readers,
                store::get_many_reads_one_state_of_the_session,
                store::create_write_on_live_session_updates_it,
                store::del_removes_one_key,
                store::del_many_removes_keys,
                store::del_all_removes_session,
                store::extend_reports_existence,
                store::existing_write_to_unknown_id_creates_nothing,
                store::existing_write_to_destroyed_id_creates_nothing,
                store::existing_write_to_expired_id_creates_nothing,
                store::reads_deletes_and_extend_never_create,
                store::idle_expiry_slides_with_activity,
                store::idle_expiry_expires_quiet_sessions,
                store::absolute_lifetime_is_not_extended,
                touch::reads_within_the_touch_granularity_leave_the_deadline,
                touch::idle_timeout_holds_within_the_touch_granularity,
                touch::writes_slide_the_deadline_under_the_touch_granularity,
                touch::absolute_lifetime_is_exact_under_throttled_reads,
                touch::read_counters_are_exact_under_throttled_reads,
                store::regenerate_moves_data_and_keeps_lifetime,
                store::regenerate_of_unknown_id_is_false,
                store::lifetime_of_one_session_shortens_its_idle_timeout,
                store::lifetime_of_one_session_lengthens_its_idle_timeout,
                store::lifetime_is_bounded_by_the_absolute_lifetime,
                store::lifetime_moves_with_regenerate,
                store::lifetime_of_unknown_session_creates_nothing,
                store::destroy_racing_writes_never_revives,
                store::concurrent_writers_to_different_keys_lose_nothing,
                store::concurrent_writers_to_one_key_end_with_a_written_value,
                store::awkward_keys_roundtrip,
                store::empty_and_large_values_roundtrip,
                store::sessions_are_isolated,
                owners::owner_binding_lists_sessions_with_metadata,
                owners::counters_are_exact_under_concurrency,
                owners::revoke_by_handle_within_its_owner,
                owners::logout_others_and_everywhere,
                owners::cap_evicts_least_recently_active,
                owners::cap_counts_reads_as_activity,
                owners::racing_capped_binds_leave_one_session,
                owners::expiry_removes_from_listings_and_counts,
                owners::regenerate_keeps_owner_and_counters,
                owners::destroy_removes_from_the_index,
                owners::owner_with_ten_thousand_sessions_lists_correctly,
                owners::writes_racing_logout_everywhere_revive_nothing,
                owners::racing_binds_leave_the_session_listed_under_its_owner,
                owners::a_bind_racing_a_regenerate_leaves_the_session_listed,
                owners::logout_everywhere_racing_a_regenerate_misses_nothing,
                owners::active_sessions_are_counted_and_paged,
                owners::destroy_all_ends_every_session,
                atomic::increments_from_eight_tasks_are_exact,
                atomic::concurrent_takes_give_the_value_once,
                atomic::compare_and_set_with_absent_values,
                atomic::non_integer_increment_fails_and_changes_nothing,
                atomic::increment_overflow_is_an_error,
                atomic::atomic_operations_are_strict,
                atomic::atomic_operations_slide_expiry,
                atomic::atomic_operations_are_counted,
            ]
            store($crate::testkit::session_limits()) [
                store::session_limits_are_enforced_atomically,
                atomic::atomic_operations_respect_limits,
            ]
            store($crate::testkit::small_limits()) [
                store::size_limits_are_enforced,
            ]
            store($crate::testkit::tiny_value_limits()) [
                atomic::an_increment_past_the_value_limit_is_refused,
            ]
            // GenericSession over the store, where the outcome depends on
            // what the store answers: strict writes, destroy, regenerate,
            // lifetimes, concurrency, owners, atomic operations.
            store($crate::Limits::default()) [
                session::session_cookie_roundtrip_reads_without_new_cookie,
                session::session_write_with_stale_cookie_starts_fresh_session,
                session::session_destroy_expires_cookie,
                session::session_regenerate_issues_new_id_and_kills_old,
                session::session_concurrent_requests_lose_nothing,
                session::session_lifetime_is_stored_and_sent_as_max_age,
                owners::session_login_binds_lists_and_logs_out,
                atomic::updates_racing_on_one_key_lose_none,
                atomic::session_incr_flash_and_csrf,
                atomic::session_update_gives_up_with_a_typed_error,
            ]
            // GenericSession alone: cookies, signing and encoding, which
            // no store changes. Run in session-core, over the reference store.
            core($crate::Limits::default()) [
                session::session_untouched_needs_no_store_and_no_cookie,
                session::session_first_write_creates_and_sets_cookie,
                session::session_tampered_cookie_is_no_session_and_no_store_call,
                session::session_rotated_key_is_resigned,
                session::session_persistent_cookie_is_refreshed_when_half_used,
                session::session_sliding_cookie_is_refreshed_at_the_touch_granularity,
                session::session_typed_values_roundtrip,
            ]
        }
    };
}

/// One `#[tokio::test]` per case of the groups `($factory; $who)` asks for:
/// `store`, `core` or `all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (($factory:expr; $who:ident)) => {};
    // Groups that are not for `$who`.
    (($factory:expr; store) core($limits:expr) [$($case:tt)*] $($rest:tt)*) => {
        $crate::__conformance_tests! { ($factory; store) $($rest)* }
    };
    (($factory:expr; core) store($limits:expr) [$($case:tt)*] $($rest:tt)*) => {
        $crate::__conformance_tests! { ($factory; core) $($rest)* }
    };
    (($factory:expr; $who:ident) $group:ident($limits:expr)
        [$($module:ident::$case:ident),* $(,)?] $($rest:tt)*) => {
        $(
            #[$crate::testkit::__tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let test = $crate::testkit::IntoTestStore::into_test_store(
                    ($factory)($limits).await,
                );
                $crate::testkit::cases::$case(test.store.clone()).await;
            }
        )*
        $crate::__conformance_tests! { ($factory; $who) $($rest)* }
    };
}
