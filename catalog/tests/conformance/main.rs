//! The catalog conformance suite: every scenario runs against SQLite and against PostgreSQL,
//! through the public `Catalog` trait only. A backend is done when this suite passes.
//!
//! PostgreSQL comes from `HEALTHAI_TEST_POSTGRES_URL`; `scripts/test` provides one.

mod files;
mod identity;
mod migrations;
mod operations;
mod registry;
mod support;

macro_rules! conformance {
    ($($module:ident :: $scenario:ident),* $(,)?) => {
        mod sqlite {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $scenario() {
                crate::$module::$scenario(catalog::testing::TestDatabase::sqlite().await).await;
            }
        )*}

        mod postgres {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $scenario() {
                crate::$module::$scenario(catalog::testing::TestDatabase::postgres().await).await;
            }
        )*}
    };
}

conformance! {
    migrations::migrations_apply_once_then_do_nothing,
    migrations::an_unmigrated_catalog_is_not_opened,
    migrations::a_newer_catalog_is_refused,
    migrations::a_half_migrated_catalog_is_refused,
    migrations::a_tampered_history_is_refused,
    registry::every_organization_gets_the_standard_streams,
    registry::roles_grant_the_documented_permissions,
    registry::custom_streams_are_registered_per_organization,
    identity::organizations_have_unique_path_safe_names,
    identity::users_carry_roles_subjects_and_groups,
    identity::refresh_tokens_rotate_and_detect_reuse,
    identity::concurrent_rotations_of_one_token_have_one_winner,
    identity::subjects_and_groups_stay_inside_their_organization,
    identity::goals_belong_to_subjects_of_the_organization,
    files::a_flush_registers_all_its_files_or_none,
    files::live_files_are_pruned_by_time_and_subject,
    files::concurrent_flushes_to_one_partition_get_distinct_write_orders,
    files::a_swap_replaces_live_files_and_schedules_their_deletion,
    files::concurrent_swaps_of_the_same_files_have_one_winner,
    files::readers_see_the_file_set_before_or_after_a_swap,
    operations::ingest_batches_finish_once_and_quality_reports_add_up,
    operations::quarantined_rows_keep_their_origin_and_stay_in_their_organization,
    operations::ingest_coverage_widens_and_stays_in_its_organization,
    operations::connectors_are_claimed_by_one_node_at_a_time,
    operations::connectors_are_found_by_name_and_run_by_hand,
    operations::foods_are_replaced_by_id_and_stay_in_their_organization,
    operations::the_audit_log_is_append_only,
    operations::erasure_hides_the_subject_and_closes_its_account,
}

#[tokio::test]
async fn an_unreachable_postgres_server_is_a_connect_error() {
    let url: catalog::CatalogUrl = "postgres://healthai:secret@127.0.0.1:1/healthai"
        .parse()
        .unwrap();
    let err = catalog::open(&url).await.unwrap_err();
    assert!(matches!(err, catalog::Error::Connect { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn a_sqlite_file_that_cannot_be_created_is_a_connect_error() {
    let url = catalog::CatalogUrl::sqlite("/dev/null/healthai/catalog.db");
    let err = catalog::migrate(&url).await.unwrap_err();
    assert!(matches!(err, catalog::Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains("/dev/null/healthai"), "{err}");
}
