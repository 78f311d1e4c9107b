use std::collections::BTreeSet;

use catalog::{
    ColumnRole, ColumnType, Error, NewStream, Permission, Role, StreamColumn, StreamKind,
    testing::TestDatabase,
};

use crate::support::{assert_err, default_org};

const STANDARD: [&str; 12] = [
    "active_energy",
    "activity_samples",
    "blood_pressure",
    "body",
    "glucose",
    "heart_rate",
    "hrv",
    "meals",
    "sleep",
    "spo2",
    "steps",
    "workouts",
];

pub async fn every_organization_gets_the_standard_streams(db: TestDatabase) {
    let catalog = db.catalog().await;
    let default = default_org(&catalog).await;
    let streams = catalog.streams().list(default).await.unwrap();
    let names: Vec<_> = streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, STANDARD);
    assert!(streams.iter().all(|s| s.standard && s.org == default));

    let heart_rate = streams.iter().find(|s| s.name == "heart_rate").unwrap();
    let columns: Vec<_> = heart_rate.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["subject_id", "source", "time", "bpm"]);
    let bpm = heart_rate.column("bpm").unwrap();
    assert_eq!(bpm.unit.as_deref(), Some("/min"));
    assert_eq!(
        (bpm.plausible_min, bpm.plausible_max),
        (Some(25.0), Some(250.0))
    );
    assert_eq!(bpm.arrow_type, ColumnType::Float64);
    assert_eq!(
        heart_rate.column("time").unwrap().arrow_type,
        ColumnType::TimestampNs
    );

    let sleep = streams.iter().find(|s| s.name == "sleep").unwrap();
    assert_eq!(sleep.kind, StreamKind::Interval);
    assert_eq!(sleep.max_duration_seconds, Some(86_400));
    assert_eq!(sleep.column("end_time").unwrap().role, ColumnRole::EndTime);
    let stages = sleep
        .column("stage")
        .unwrap()
        .allowed_values
        .clone()
        .unwrap();
    assert_eq!(
        stages,
        ["in_bed", "awake", "light", "deep", "rem", "asleep"]
    );

    let meals = streams.iter().find(|s| s.name == "meals").unwrap();
    let keys: Vec<_> = meals
        .columns
        .iter()
        .filter(|c| c.role == ColumnRole::Key)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(keys, ["subject_id", "source", "meal", "food_id"]);

    // A new organization gets copies of its own: changing one leaves the other alone.
    let acme = catalog.organizations().create("acme").await.unwrap();
    let acme_streams = catalog.streams().list(acme.id).await.unwrap();
    let acme_names: Vec<_> = acme_streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(acme_names, STANDARD);
    let acme_hr = acme_streams
        .iter()
        .find(|s| s.name == "heart_rate")
        .unwrap();
    assert_ne!(acme_hr.id, heart_rate.id);
    assert_eq!(acme_hr.columns, heart_rate.columns);
    catalog
        .streams()
        .set_retention(acme_hr.id, Some(30))
        .await
        .unwrap();
    let default_hr = catalog.streams().get(default, "heart_rate").await.unwrap();
    assert_eq!(default_hr.retention_days, None);
}

pub async fn roles_grant_the_documented_permissions(db: TestDatabase) {
    let catalog = db.catalog().await;
    let users = catalog.users();
    assert_eq!(
        users.permissions(&[Role::Analyst]).await.unwrap(),
        [Permission::ReadAllSubjects]
    );
    assert_eq!(
        users.permissions(&[Role::Ingest]).await.unwrap(),
        [Permission::WriteData]
    );
    assert_eq!(
        users.permissions(&[Role::Member]).await.unwrap(),
        [
            Permission::ReadOwnSubject,
            Permission::ReadIdentifiers,
            Permission::WriteOwnSubject
        ]
    );
    assert_eq!(
        users.permissions(&[Role::Coach]).await.unwrap(),
        [Permission::ReadGroupSubjects, Permission::ReadIdentifiers]
    );
    let admin: BTreeSet<_> = users
        .permissions(&[Role::Admin])
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(admin.contains(&Permission::ManageUsers) && admin.contains(&Permission::EraseSubjects));
    assert!(!admin.contains(&Permission::ReadOwnSubject));
    // Every permission the code knows is stored, and some role grants it.
    let all: BTreeSet<_> = users
        .permissions(Role::ALL)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(all, Permission::ALL.iter().copied().collect());
    assert!(users.permissions(&[]).await.unwrap().is_empty());
}

pub async fn custom_streams_are_registered_per_organization(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let other = catalog.organizations().create("other").await.unwrap();
    let mut new = NewStream::new(
        "skin_temperature",
        StreamKind::Point,
        vec![
            StreamColumn {
                unit: Some("Cel".into()),
                plausible_min: Some(25.0),
                plausible_max: Some(45.0),
                nullable: false,
                ..StreamColumn::value("celsius", ColumnType::Float64)
            },
            StreamColumn {
                allowed_values: Some(vec!["wrist".into(), "finger".into()]),
                ..StreamColumn::value("site", ColumnType::Utf8)
            },
        ],
    );
    new.description = "Skin temperature from a ring".into();
    new.retention_days = Some(365);
    let registered = catalog.streams().register(org, new.clone()).await.unwrap();
    assert!(!registered.standard);
    assert_eq!(registered.columns, new.columns);
    assert_eq!(registered.retention_days, Some(365));
    assert_eq!(
        catalog
            .streams()
            .get(org, "skin_temperature")
            .await
            .unwrap(),
        registered
    );
    assert_eq!(
        catalog.streams().get_by_id(registered.id).await.unwrap(),
        registered
    );

    assert_err!(
        catalog.streams().register(org, new.clone()).await,
        Error::AlreadyExists { .. }
    );
    let shadowing = NewStream {
        name: "heart_rate".into(),
        ..new.clone()
    };
    assert_err!(
        catalog.streams().register(org, shadowing).await,
        Error::AlreadyExists { .. }
    );
    let no_values = NewStream::new("empty", StreamKind::Point, vec![]);
    let err = assert_err!(
        catalog.streams().register(org, no_values).await,
        Error::Invalid { .. }
    );
    assert!(err.to_string().contains("value column"), "{err}");

    // Other organizations neither see it nor collide with it.
    assert_err!(
        catalog.streams().get(other.id, "skin_temperature").await,
        Error::NotFound { .. }
    );
    catalog.streams().register(other.id, new).await.unwrap();

    let kept = catalog
        .streams()
        .set_retention(registered.id, None)
        .await
        .unwrap();
    assert_eq!(kept.retention_days, None);
    assert_err!(
        catalog
            .streams()
            .set_retention(registered.id, Some(0))
            .await,
        Error::Invalid { .. }
    );
    assert_err!(
        catalog
            .streams()
            .get_by_id(catalog::StreamId(987_654))
            .await,
        Error::NotFound { .. }
    );
}
