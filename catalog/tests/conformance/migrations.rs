use catalog::{Error, testing::TestDatabase};

use crate::support::assert_err;

pub async fn migrations_apply_once_then_do_nothing(db: TestDatabase) {
    let first = catalog::migrate(db.url()).await.unwrap();
    let applied: Vec<_> = first
        .applied
        .iter()
        .map(|m| (m.version, m.name.as_str()))
        .collect();
    assert_eq!(
        applied,
        [
            (1, "initial"),
            (2, "seed"),
            (3, "erased_subjects"),
            (4, "quarantine"),
            (5, "foods"),
            (6, "ingest_coverage")
        ]
    );
    assert_eq!(first.version, 6);

    let second = catalog::migrate(db.url()).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.version, 6);

    // The seed ran once: one default organization with one copy of each standard stream.
    let catalog = catalog::open(db.url()).await.unwrap();
    let orgs = catalog.organizations().list().await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(catalog.streams().list(orgs[0].id).await.unwrap().len(), 12);
}

pub async fn an_unmigrated_catalog_is_not_opened(db: TestDatabase) {
    let err = assert_err!(catalog::open(db.url()).await, Error::SchemaOutdated { .. });
    let Error::SchemaOutdated {
        found, required, ..
    } = &err
    else {
        unreachable!()
    };
    assert_eq!((*found, *required), (0, 6));
    assert!(err.to_string().contains("run `healthai migrate"), "{err}");
}

pub async fn a_newer_catalog_is_refused(db: TestDatabase) {
    catalog::migrate(db.url()).await.unwrap();
    db.execute_raw(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         VALUES (7, 'from_the_future', '2031-01-01T00:00:00Z', '42')",
    )
    .await
    .unwrap();
    for err in [
        catalog::migrate(db.url()).await.map(|_| ()).unwrap_err(),
        catalog::open(db.url()).await.map(|_| ()).unwrap_err(),
    ] {
        let Error::SchemaTooNew {
            found, supported, ..
        } = &err
        else {
            panic!("expected SchemaTooNew, got {err}");
        };
        assert_eq!((*found, *supported), (7, 6));
        assert!(err.to_string().contains("use a newer healthai"), "{err}");
    }
}

pub async fn a_half_migrated_catalog_is_refused(db: TestDatabase) {
    // Tables created by hand, without the history that says so.
    db.execute_raw("CREATE TABLE organizations (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    let err = assert_err!(catalog::migrate(db.url()).await, Error::Migration { .. });
    let message = err.to_string();
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains("half-migrated"), "{message}");

    // The failed run left nothing half-done behind: once the stray table is gone, the
    // migrations apply in full.
    db.execute_raw("DROP TABLE organizations").await.unwrap();
    let report = catalog::migrate(db.url()).await.unwrap();
    assert_eq!(report.applied.len(), 6);

    // A history with a hole: a later migration recorded, an earlier one not.
    db.execute_raw("DELETE FROM refinery_schema_history WHERE version = 1")
        .await
        .unwrap();
    for err in [
        catalog::migrate(db.url()).await.map(|_| ()).unwrap_err(),
        catalog::open(db.url()).await.map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(err, Error::Migration { .. }), "{err}");
        assert!(
            err.to_string().contains("V1__initial was never applied"),
            "{err}"
        );
    }
}

pub async fn a_tampered_history_is_refused(db: TestDatabase) {
    catalog::migrate(db.url()).await.unwrap();
    db.execute_raw("UPDATE refinery_schema_history SET checksum = '12345' WHERE version = 2")
        .await
        .unwrap();
    let err = assert_err!(catalog::open(db.url()).await, Error::Migration { .. });
    assert!(err.to_string().contains("different build"), "{err}");

    // A damaged row would make the migration library panic; it must be an error instead.
    db.execute_raw(
        "UPDATE refinery_schema_history SET applied_on = 'last tuesday' WHERE version = 1",
    )
    .await
    .unwrap();
    let err = assert_err!(catalog::migrate(db.url()).await, Error::Migration { .. });
    assert!(err.to_string().contains("damaged"), "{err}");
}
