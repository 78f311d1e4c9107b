//! The engine end to end: real catalogs (SQLite and PostgreSQL), a real local object store,
//! real Parquet files, DataFusion queries. Faults come from wrappers around the real store
//! and catalog; a separate process is killed with SIGKILL mid-write.

mod access;
mod faulty_catalog;
mod gapfill;
mod health_functions;
mod kill;
mod maintenance;
mod query_path;
mod rollups;
mod support;
mod write_path;

macro_rules! on_both_backends {
    ($($module:ident :: $scenario:ident),* $(,)?) => {
        mod sqlite {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                crate::$module::$scenario(catalog::testing::TestDatabase::sqlite().await).await;
            }
        )*}

        mod postgres {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                crate::$module::$scenario(catalog::testing::TestDatabase::postgres().await).await;
            }
        )*}
    };
}

on_both_backends! {
    write_path::written_rows_come_back_by_sql,
    write_path::rewriting_a_reading_replaces_it,
    write_path::a_commit_now_write_commits_what_was_queued_before_it,
    write_path::deduplication_matches_a_reference_model,
    write_path::bad_batches_are_refused_with_their_place,
    write_path::writers_wait_when_the_buffer_is_full,
    write_path::a_failed_upload_fails_its_writers_and_leaves_nothing,
    write_path::a_failed_registration_leaves_garbage_that_is_collected,
    write_path::a_restart_finds_every_acknowledged_row,
    query_path::pruning_reads_only_the_files_a_query_needs,
    query_path::a_file_footer_is_read_once,
    query_path::a_file_is_fetched_once_then_read_from_memory,
    query_path::a_short_read_of_a_large_file_is_not_spread,
    query_path::a_stream_registered_elsewhere_is_found_at_once,
    query_path::catalog_tables_are_queryable,
    query_path::sessions_are_read_only,
    query_path::results_use_utf8_and_nanosecond_timestamps,
    query_path::organizations_do_not_see_each_other,
    query_path::bucketed_aggregates_match_a_reference_model,
    query_path::the_latest_buckets_are_read_from_the_newest_rows,
    rollups::rollups_answer_as_the_raw_rows_do,
    rollups::rollups_follow_compaction_and_garbage_collection,
    rollups::dense_minutes_are_answered_from_minute_rollups,
    gapfill::gapfill_fills_every_bucket_of_the_range,
    maintenance::compaction_keeps_every_reading,
    maintenance::concurrent_writers_with_compaction_running,
    maintenance::retention_drops_expired_days,
    maintenance::erasure_removes_the_subject_from_every_file,
    kill::a_killed_writer_loses_no_acknowledged_row,
    access::each_role_reads_exactly_its_subjects,
    access::writes_respect_the_principal,
    access::queries_are_audited,
    access::runaway_queries_are_stopped,
    health_functions::daily_health_metrics_by_local_day,
}

/// The body of the process that `kill::a_killed_writer_loses_no_acknowledged_row` starts and
/// kills; it does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_process() {
    kill::writer_process().await;
}
