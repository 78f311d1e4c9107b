use std::collections::BTreeSet;

use catalog::{
    AuditEntry, AuditOutcome, BatchCounts, BatchId, BatchStatus, ConnectorRun, ConnectorStatus,
    ErasureStatus, Error, Food, NewBatch, NewConnector, NewUser, Nutrients, QualityReport,
    QuarantinedRow, Role, StreamId, SubjectCoverage, SubjectId, SubjectProfile, TokenHash,
    testing::TestDatabase,
};
use chrono::Duration;
use serde_json::json;

use crate::support::{assert_err, default_org, minutes, stream_id, subject, t0};

fn batch(org: catalog::OrgId, source: &str) -> NewBatch {
    NewBatch {
        org,
        source: source.into(),
        format: "apple-health".into(),
        bytes: 1_234,
        created_by: None,
    }
}

fn range_rule(stream: StreamId, checked: i64, rejected: i64, completeness: f64) -> QualityReport {
    QualityReport {
        stream,
        column: "bpm".into(),
        rule: "plausible_range".into(),
        rows_checked: checked,
        rows_corrected: 0,
        rows_rejected: rejected,
        rows_flagged: 1,
        completeness: Some(completeness),
    }
}

pub async fn ingest_batches_finish_once_and_quality_reports_add_up(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    let ingest = catalog.ingest();

    let started = ingest
        .begin_batch(batch(org, "export.zip"), t0())
        .await
        .unwrap();
    assert_eq!(started.status, BatchStatus::Running);
    assert_eq!(started.counts, BatchCounts::default());
    let counts = BatchCounts {
        rows_in: 100,
        rows_accepted: 90,
        rows_rejected: 8,
        rows_corrected: 5,
    };
    let finished = ingest
        .finish_batch(
            started.id,
            BatchStatus::Committed,
            counts,
            None,
            t0() + minutes(2),
        )
        .await
        .unwrap();
    assert_eq!(
        (finished.status, finished.counts),
        (BatchStatus::Committed, counts)
    );
    assert_eq!(finished.finished_at, Some(t0() + minutes(2)));
    assert_eq!(ingest.get_batch(started.id).await.unwrap(), finished);

    let err = assert_err!(
        ingest
            .finish_batch(
                started.id,
                BatchStatus::Failed,
                counts,
                Some("late".into()),
                t0()
            )
            .await,
        Error::Conflict(_)
    );
    assert!(
        err.to_string().contains("already finished as committed"),
        "{err}"
    );
    let second = ingest
        .begin_batch(batch(org, "later.zip"), t0() + minutes(5))
        .await
        .unwrap();
    assert_err!(
        ingest
            .finish_batch(second.id, BatchStatus::Running, counts, None, t0())
            .await,
        Error::Invalid { .. }
    );
    let impossible = BatchCounts {
        rows_accepted: 95,
        ..counts
    };
    assert_err!(
        ingest
            .finish_batch(second.id, BatchStatus::Committed, impossible, None, t0())
            .await,
        Error::Invalid { .. }
    );
    let failed = ingest
        .finish_batch(
            second.id,
            BatchStatus::Failed,
            BatchCounts::default(),
            Some("not a zip".into()),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("not a zip"));
    let newest_first: Vec<_> = ingest
        .list_batches(org, 10)
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(newest_first, [second.id, started.id]);
    assert_eq!(ingest.list_batches(org, 1).await.unwrap().len(), 1);

    // Chunks of one batch report the same rule; their counts add up.
    ingest
        .record_quality(started.id, vec![range_rule(hr, 100, 8, 0.9)])
        .await
        .unwrap();
    ingest
        .record_quality(started.id, vec![range_rule(hr, 300, 2, 0.5)])
        .await
        .unwrap();
    let reports = ingest.quality_reports(started.id).await.unwrap();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(
        (r.rows_checked, r.rows_rejected, r.rows_flagged),
        (400, 10, 2)
    );
    let completeness = r.completeness.unwrap();
    assert!((completeness - 0.6).abs() < 1e-9, "{completeness}");

    let other = catalog.organizations().create("other").await.unwrap().id;
    assert_eq!(
        ingest.org_quality_reports(org, 10).await.unwrap(),
        [(started.id, r.clone())]
    );
    assert!(
        ingest
            .org_quality_reports(other, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert_err!(
        ingest
            .record_quality(started.id, vec![range_rule(StreamId(987_654), 1, 0, 1.0)])
            .await,
        Error::Invalid { .. }
    );
    assert_err!(
        ingest
            .record_quality(started.id, vec![range_rule(hr, 1, 0, 1.5)])
            .await,
        Error::Invalid { .. }
    );
    assert_err!(
        ingest.get_batch(catalog::BatchId(987_654)).await,
        Error::NotFound { .. }
    );
}

fn connector(org: catalog::OrgId, name: &str) -> NewConnector {
    NewConnector {
        org,
        name: name.into(),
        kind: "open_food_facts".into(),
        config: json!({"url": "http://127.0.0.1:9/api/v2/product", "page_size": 100}),
        schedule_seconds: 3_600,
        first_run_at: t0(),
    }
}

const EXPORT_XML: &str = "export.zip!apple_health_export/export.xml";

/// A heart-rate row refused by the range rule, at `record` of the Apple Health export.
fn out_of_range(batch: BatchId, stream: StreamId, record: i64) -> QuarantinedRow {
    QuarantinedRow {
        batch,
        stream: Some(stream),
        file: EXPORT_XML.into(),
        record: Some(record),
        column: Some("bpm".into()),
        rule: "range".into(),
        reason: format!("bpm {} is above the plausible maximum 250", 300 + record),
        value: Some((300 + record).to_string()),
    }
}

pub async fn quarantined_rows_keep_their_origin_and_stay_in_their_organization(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    let sleep = stream_id(&catalog, org, "sleep").await;
    let ingest = catalog.ingest();
    let first = ingest
        .begin_batch(batch(org, "export.zip"), t0())
        .await
        .unwrap()
        .id;
    let second = ingest
        .begin_batch(batch(org, "later.csv"), t0() + minutes(5))
        .await
        .unwrap()
        .id;
    assert!(ingest.quarantined(first, 100).await.unwrap().is_empty());
    ingest.quarantine(vec![]).await.unwrap();

    let unknown_type = QuarantinedRow {
        batch: first,
        stream: None,
        file: EXPORT_XML.into(),
        record: Some(13),
        column: None,
        rule: "parse".into(),
        reason: "unknown record type HKQuantityTypeIdentifierUnknown".into(),
        value: None,
    };
    let long = QuarantinedRow {
        batch: first,
        stream: Some(sleep),
        file: "sleep.csv".into(),
        record: None,
        column: Some("stage".into()),
        rule: "vocabulary".into(),
        reason: "é".repeat(1_500),
        value: Some(format!("{}tail", "ü".repeat(250))),
    };
    let nul = QuarantinedRow {
        value: Some("60\0bpm".into()),
        ..out_of_range(first, hr, 14)
    };
    ingest
        .quarantine(vec![
            out_of_range(first, hr, 12),
            unknown_type.clone(),
            long.clone(),
            nul,
        ])
        .await
        .unwrap();
    let stored_long = QuarantinedRow {
        reason: "é".repeat(1_000),
        value: Some("ü".repeat(200)),
        ..long
    };
    let stored_nul = QuarantinedRow {
        value: Some("60\u{FFFD}bpm".into()),
        ..out_of_range(first, hr, 14)
    };
    let expected = vec![
        out_of_range(first, hr, 12),
        unknown_type.clone(),
        stored_long.clone(),
        stored_nul.clone(),
    ];
    assert_eq!(ingest.quarantined(first, 100).await.unwrap(), expected);
    assert_eq!(ingest.quarantined(first, 2).await.unwrap(), expected[..2]);

    // A failed import rejects many rows at once; they come back in the order given.
    let many: Vec<_> = (1..=2_000)
        .map(|record| out_of_range(second, hr, record))
        .collect();
    ingest.quarantine(many.clone()).await.unwrap();
    assert_eq!(ingest.quarantined(second, 5_000).await.unwrap(), many);
    // A later call appends to the batch (one statement's worth of rows and one more).
    let late: Vec<_> = (1_001..=1_501)
        .map(|record| out_of_range(first, hr, record))
        .collect();
    ingest.quarantine(late.clone()).await.unwrap();
    let mut first_rows = expected.clone();
    first_rows.extend(late);
    assert_eq!(ingest.quarantined(first, 1_000).await.unwrap(), first_rows);

    // The organization's view: newest batch first, each batch in insertion order.
    let everything = ingest.org_quarantine(org, 10_000).await.unwrap();
    let mut newest_first = many.clone();
    newest_first.extend(first_rows.iter().cloned());
    assert_eq!(everything, newest_first);
    assert_eq!(ingest.org_quarantine(org, 3).await.unwrap(), many[..3]);

    // Another organization sees none of it, and its rows stay its own.
    let other = catalog.organizations().create("other").await.unwrap().id;
    assert!(ingest.org_quarantine(other, 100).await.unwrap().is_empty());
    let other_batch = ingest
        .begin_batch(batch(other, "theirs.csv"), t0() + minutes(10))
        .await
        .unwrap()
        .id;
    let theirs = QuarantinedRow {
        batch: other_batch,
        ..unknown_type.clone()
    };
    ingest.quarantine(vec![theirs.clone()]).await.unwrap();
    assert_eq!(ingest.org_quarantine(other, 100).await.unwrap(), [theirs]);
    assert_eq!(
        ingest.org_quarantine(org, 10_000).await.unwrap(),
        newest_first
    );
    // Nor may a row of its batch name a stream of this organization.
    let err = assert_err!(
        ingest
            .quarantine(vec![out_of_range(other_batch, hr, 1)])
            .await,
        Error::Invalid { .. }
    );
    assert!(
        err.to_string()
            .contains(&format!("stream {hr} is not a stream of the organization")),
        "{err}"
    );

    // A missing batch or stream refuses the whole call, naming it.
    let missing_batch = BatchId(987_654);
    let err = assert_err!(
        ingest
            .quarantine(vec![
                out_of_range(first, hr, 100),
                out_of_range(missing_batch, hr, 101)
            ])
            .await,
        Error::Invalid { .. }
    );
    assert!(
        err.to_string()
            .contains("ingest batch 987654 does not exist"),
        "{err}"
    );
    let mut with_missing_stream: Vec<_> = (200..800)
        .map(|record| out_of_range(first, hr, record))
        .collect();
    with_missing_stream.push(out_of_range(first, StreamId(987_654), 800));
    let err = assert_err!(
        ingest.quarantine(with_missing_stream).await,
        Error::Invalid { .. }
    );
    assert!(
        err.to_string().contains("stream 987654 does not exist"),
        "{err}"
    );
    assert_eq!(ingest.quarantined(first, 10_000).await.unwrap(), first_rows);

    // What the rows must say.
    for bad in [
        QuarantinedRow {
            rule: " ".into(),
            ..out_of_range(first, hr, 1)
        },
        QuarantinedRow {
            reason: String::new(),
            ..out_of_range(first, hr, 1)
        },
        QuarantinedRow {
            record: Some(-1),
            ..out_of_range(first, hr, 1)
        },
    ] {
        assert_err!(ingest.quarantine(vec![bad]).await, Error::Invalid { .. });
    }
    assert_err!(ingest.quarantined(first, -1).await, Error::Invalid { .. });
    assert_err!(ingest.org_quarantine(org, -1).await, Error::Invalid { .. });
    assert_eq!(ingest.quarantined(first, 10_000).await.unwrap(), first_rows);
}

pub async fn connectors_are_claimed_by_one_node_at_a_time(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let connectors = catalog.connectors();
    let off = connectors
        .create(connector(org, "off-products"))
        .await
        .unwrap();
    assert_eq!(off.config["page_size"], 100);
    assert_eq!(off.status, ConnectorStatus::Idle);
    assert_err!(
        connectors.create(connector(org, "off-products")).await,
        Error::AlreadyExists { .. }
    );
    assert_err!(
        connectors
            .create(NewConnector {
                config: json!([1, 2]),
                ..connector(org, "bad")
            })
            .await,
        Error::Invalid { .. }
    );

    assert_eq!(
        connectors.claim_due(t0() - minutes(1), t0()).await.unwrap(),
        None
    );
    let claimed = connectors
        .claim_due(t0(), t0() + minutes(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.status),
        (off.id, ConnectorStatus::Running)
    );
    assert_eq!(
        connectors
            .claim_due(t0() + minutes(1), t0() + minutes(6))
            .await
            .unwrap(),
        None
    );
    // A node that died leaves its lease behind; once it expires another node takes over.
    let reclaimed = connectors
        .claim_due(t0() + minutes(6), t0() + minutes(11))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reclaimed.id, off.id);

    let finished = connectors
        .finish_run(
            off.id,
            ConnectorRun {
                cursor: Some("page=2".into()),
                error: None,
                finished_at: t0() + minutes(7),
                next_run_at: t0() + minutes(67),
            },
        )
        .await
        .unwrap();
    assert_eq!(finished.status, ConnectorStatus::Ok);
    assert_eq!(
        (finished.cursor.as_deref(), finished.lease_until),
        (Some("page=2"), None)
    );
    assert_err!(
        connectors
            .finish_run(
                off.id,
                ConnectorRun {
                    cursor: None,
                    error: None,
                    finished_at: t0(),
                    next_run_at: t0(),
                },
            )
            .await,
        Error::Conflict(_)
    );
    assert_eq!(
        connectors
            .claim_due(t0() + minutes(30), t0() + minutes(35))
            .await
            .unwrap(),
        None
    );

    connectors.set_enabled(off.id, false).await.unwrap();
    assert_eq!(
        connectors
            .claim_due(t0() + minutes(90), t0() + minutes(95))
            .await
            .unwrap(),
        None
    );
    connectors.set_enabled(off.id, true).await.unwrap();
    connectors
        .claim_due(t0() + minutes(90), t0() + minutes(95))
        .await
        .unwrap()
        .unwrap();
    let failed = connectors
        .finish_run(
            off.id,
            ConnectorRun {
                cursor: None,
                error: Some("HTTP 503 from the API".into()),
                finished_at: t0() + minutes(91),
                next_run_at: t0() + minutes(96),
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.status, ConnectorStatus::Failed);
    assert_eq!(
        failed.cursor.as_deref(),
        Some("page=2"),
        "a failed run keeps the cursor"
    );
    assert_eq!(failed.last_error.as_deref(), Some("HTTP 503 from the API"));

    // Nodes claiming at once never get the same connector.
    connectors
        .create(connector(org, "usda-foods"))
        .await
        .unwrap();
    let when = t0() + minutes(200);
    let claims: Vec<_> = (0..6)
        .map(|_| {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                catalog
                    .connectors()
                    .claim_due(when, when + minutes(5))
                    .await
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claim in claims {
        claimed.extend(claim.await.unwrap().unwrap().map(|c| c.id));
    }
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert_eq!(connectors.list(org).await.unwrap().len(), 2);
}

pub async fn connectors_are_found_by_name_and_run_by_hand(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let other = catalog.organizations().create("other").await.unwrap().id;
    let connectors = catalog.connectors();
    let mine = connectors.create(connector(org, "readings")).await.unwrap();
    let theirs = connectors
        .create(connector(other, "readings"))
        .await
        .unwrap();
    assert_eq!(
        connectors.get_by_name(org, "readings").await.unwrap().id,
        mine.id
    );
    assert_eq!(
        connectors.get_by_name(other, "readings").await.unwrap().id,
        theirs.id
    );
    assert_err!(
        connectors.get_by_name(org, "missing").await,
        Error::NotFound { .. }
    );

    // A run by hand: before its schedule, and while disabled.
    connectors.set_enabled(mine.id, false).await.unwrap();
    let early = t0() - minutes(30);
    let claimed = connectors
        .claim(mine.id, early, early + minutes(5))
        .await
        .unwrap();
    assert_eq!(claimed.status, ConnectorStatus::Running);
    assert_eq!(claimed.lease_until, Some(early + minutes(5)));
    let refused = connectors
        .claim(mine.id, early + minutes(1), early + minutes(6))
        .await;
    let Err(conflict @ Error::Conflict(_)) = refused else {
        panic!("a second claim while leased: {refused:?}");
    };
    assert!(
        conflict.to_string().contains("readings"),
        "the conflict names the connector: {conflict}"
    );
    assert_eq!(
        connectors
            .claim_due(t0(), t0() + minutes(5))
            .await
            .unwrap()
            .map(|c| c.id),
        Some(theirs.id),
        "a claim by hand does not make a disabled connector due"
    );
    let finished = connectors
        .finish_run(
            mine.id,
            ConnectorRun {
                cursor: Some("2026-01-01T00:00:00Z".into()),
                error: None,
                finished_at: early + minutes(2),
                next_run_at: early + minutes(62),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (finished.status, finished.enabled, finished.lease_until),
        (ConnectorStatus::Ok, false, None)
    );
    // Once the run ended, or its lease expired, it can be claimed again.
    connectors
        .claim(mine.id, early + minutes(3), early + minutes(8))
        .await
        .unwrap();
    connectors
        .claim(mine.id, early + minutes(9), early + minutes(14))
        .await
        .unwrap();
    assert_err!(
        connectors
            .claim(catalog::ConnectorId(i64::MAX), t0(), t0())
            .await,
        Error::NotFound { .. }
    );
}

fn entry(org: catalog::OrgId, seconds: i64, action: &str) -> AuditEntry {
    AuditEntry {
        org,
        at: t0() + Duration::seconds(seconds),
        user: None,
        actor: "analyst@example.com".into(),
        action: action.into(),
        interface: "flight".into(),
        statement: Some("SELECT avg(bpm) FROM health.heart_rate".into()),
        subject: None,
        rows: Some(1),
        outcome: AuditOutcome::Ok,
        detail: None,
    }
}

pub async fn the_audit_log_is_append_only(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let other = catalog.organizations().create("other").await.unwrap().id;
    let audit = catalog.audit();
    audit
        .append(vec![
            entry(org, 0, "login"),
            entry(org, 1, "query"),
            entry(org, 2, "export"),
        ])
        .await
        .unwrap();
    let since_one: Vec<_> = audit
        .list(org, t0() + Duration::seconds(1), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry.action)
        .collect();
    assert_eq!(since_one, ["query", "export"]);
    assert_eq!(audit.list(org, t0(), 1).await.unwrap().len(), 1);
    assert!(audit.list(other, t0(), 10).await.unwrap().is_empty());
    let first = &audit.list(org, t0(), 1).await.unwrap()[0];
    assert_eq!(first.entry, entry(org, 0, "login"));

    for tampering in [
        "DELETE FROM audit_log",
        "UPDATE audit_log SET actor = 'nobody'",
    ] {
        let err = db.execute_raw(tampering).await.unwrap_err();
        assert!(err.contains("append-only"), "{tampering}: {err}");
    }
    assert_eq!(audit.list(org, t0(), 10).await.unwrap().len(), 3);
    assert_err!(
        audit
            .append(vec![AuditEntry {
                actor: " ".into(),
                ..entry(org, 3, "query")
            }])
            .await,
        Error::Invalid { .. }
    );
}

pub async fn erasure_hides_the_subject_and_closes_its_account(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let ana = catalog
        .subjects()
        .create(
            org,
            "S0001",
            SubjectProfile {
                display_name: Some("Ana Lima".into()),
                email: Some("ana@example.org".into()),
                ..SubjectProfile::default()
            },
        )
        .await
        .unwrap();
    let account = catalog
        .users()
        .create(NewUser {
            org,
            email: "ana@example.org".into(),
            display_name: Some("Ana".into()),
            password_hash: Some(catalog::PasswordHash("$argon2id$x".into())),
            roles: vec![Role::Member],
            subject: Some(ana.id),
            coach_of: vec![],
        })
        .await
        .unwrap();
    catalog
        .tokens()
        .issue(
            account.id,
            TokenHash::of("ana-phone"),
            t0(),
            t0() + Duration::days(30),
        )
        .await
        .unwrap();

    let erasure = catalog.erasure();
    let request = erasure.request(ana.id, None, t0()).await.unwrap();
    assert_eq!(
        (request.status, request.subject, request.org),
        (ErasureStatus::Pending, ana.id, org)
    );

    assert_eq!(catalog.subjects().erased(org).await.unwrap(), [ana.id]);
    let erased = catalog.subjects().get(ana.id).await.unwrap();
    assert_eq!(erased.erased_at, Some(t0()));
    assert_eq!(
        (erased.profile.display_name, erased.profile.email),
        (None, None)
    );
    let closed = catalog.users().get(account.id).await.unwrap();
    assert!(closed.disabled);
    assert!(closed.email.starts_with("erased-user-"), "{}", closed.email);
    assert_eq!((closed.password_hash, closed.display_name), (None, None));
    let token = catalog
        .tokens()
        .find(TokenHash::of("ana-phone"))
        .await
        .unwrap()
        .unwrap();
    assert!(token.revoked_at.is_some());
    assert_err!(
        catalog
            .subjects()
            .update_profile(ana.id, SubjectProfile::default())
            .await,
        Error::Conflict(_)
    );

    assert_err!(
        erasure.request(ana.id, None, t0()).await,
        Error::Conflict(_)
    );
    assert_eq!(
        erasure.pending().await.unwrap(),
        std::slice::from_ref(&request)
    );
    let done = erasure
        .complete(request.id, 3, 1_200, t0() + minutes(10))
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.files_rewritten, done.rows_removed),
        (ErasureStatus::Completed, Some(3), Some(1_200))
    );
    assert_err!(
        erasure.complete(request.id, 3, 1_200, t0()).await,
        Error::Conflict(_)
    );
    assert_err!(
        erasure.request(ana.id, None, t0()).await,
        Error::Conflict(_)
    );
    assert!(erasure.pending().await.unwrap().is_empty());

    // A failed erasure can be requested again.
    let bob = subject(&catalog, org, "S0002").await;
    let attempt = erasure.request(bob, None, t0()).await.unwrap();
    let failed = erasure
        .fail(attempt.id, "object store unreachable")
        .await
        .unwrap();
    assert_eq!(failed.status, ErasureStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("object store unreachable"));
    let retry = erasure.request(bob, None, t0() + minutes(1)).await.unwrap();
    assert_eq!(retry.status, ErasureStatus::Pending);

    let statuses: BTreeSet<_> = erasure
        .list(org)
        .await
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.len(), 3);
    assert_err!(
        erasure.request(SubjectId(987_654), None, t0()).await,
        Error::NotFound { .. }
    );
}

pub async fn foods_are_replaced_by_id_and_stay_in_their_organization(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let other = catalog.organizations().create("other").await.unwrap().id;
    let foods = catalog.foods();
    let oats = Food {
        id: "ciqual:9310".into(),
        source: "ciqual".into(),
        name: "Oat flakes".into(),
        brand: None,
        per_100g: Nutrients {
            energy_kcal: Some(373.0),
            protein_g: Some(13.5),
            carbs_g: Some(58.7),
            fat_g: Some(7.0),
            fiber_g: None,
            sugars_g: Some(1.0),
            sodium_mg: Some(4.0),
        },
    };
    let spread = Food {
        id: "off:3017620422003".into(),
        source: "open_food_facts".into(),
        name: "Nutella".into(),
        brand: Some("Ferrero".into()),
        per_100g: Nutrients {
            energy_kcal: Some(539.0),
            ..Nutrients::default()
        },
    };
    assert_eq!(
        foods
            .upsert(org, vec![spread.clone(), oats.clone()], t0())
            .await
            .unwrap(),
        2
    );
    let ids = [
        "off:3017620422003".to_owned(),
        "ciqual:9310".to_owned(),
        "nope".to_owned(),
    ];
    assert_eq!(
        foods.get(org, &ids).await.unwrap(),
        vec![oats.clone(), spread.clone()],
        "existing foods in id order; missing nutrients stay missing"
    );
    assert!(foods.get(other, &ids).await.unwrap().is_empty());

    // A later load replaces by id; the last of a repeated id wins within one load.
    let renamed = Food {
        name: "Rolled oats".into(),
        ..oats.clone()
    };
    let fibre = Food {
        per_100g: Nutrients {
            fiber_g: Some(10.1),
            ..renamed.per_100g
        },
        ..renamed.clone()
    };
    assert_eq!(
        foods
            .upsert(org, vec![renamed, fibre.clone()], t0() + minutes(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        foods.list(org, 10).await.unwrap(),
        vec![fibre.clone(), spread.clone()]
    );
    assert_eq!(foods.list(org, 1).await.unwrap(), vec![fibre.clone()]);

    // Many foods in one call cross the statement chunks.
    let many: Vec<Food> = (0..2_500)
        .map(|i| Food {
            id: format!("fdc:{i:05}"),
            source: "usda_fdc".into(),
            name: format!("food {i}"),
            brand: None,
            per_100g: Nutrients::default(),
        })
        .collect();
    assert_eq!(foods.upsert(other, many, t0()).await.unwrap(), 2_500);
    assert_eq!(foods.list(other, 10_000).await.unwrap().len(), 2_500);
    assert_eq!(foods.list(org, 10_000).await.unwrap().len(), 2);

    // A bad food refuses the whole call and names itself.
    let negative = Food {
        id: "bad:1".into(),
        per_100g: Nutrients {
            fat_g: Some(-1.0),
            ..Nutrients::default()
        },
        ..spread.clone()
    };
    let err = assert_err!(
        foods
            .upsert(org, vec![spread.clone(), negative], t0())
            .await,
        Error::Invalid { .. }
    );
    assert!(err.to_string().contains("bad:1"), "{err}");
    assert!(err.to_string().contains("fat_g"), "{err}");
    let nameless = Food {
        name: " ".into(),
        ..spread.clone()
    };
    assert_err!(
        foods.upsert(org, vec![nameless], t0()).await,
        Error::Invalid { .. }
    );
    assert_eq!(foods.list(org, 10).await.unwrap().len(), 2);
}

pub async fn ingest_coverage_widens_and_stays_in_its_organization(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    let ann = subject(&catalog, org, "ann").await;
    let ingest = catalog.ingest();
    let id = ingest
        .begin_batch(batch(org, "heart_rate.csv"), t0())
        .await
        .unwrap()
        .id;
    let cover = |first: i64, last: i64, rows: i64| SubjectCoverage {
        stream: hr,
        subject: ann,
        first: t0() + minutes(first),
        last: t0() + minutes(last),
        rows,
    };
    ingest
        .record_coverage(id, vec![cover(10, 20, 11)])
        .await
        .unwrap();
    // A second file of the same batch widens the span and adds its rows.
    ingest
        .record_coverage(id, vec![cover(5, 15, 4)])
        .await
        .unwrap();
    assert_eq!(ingest.coverage(id).await.unwrap(), vec![cover(5, 20, 15)]);
    assert_eq!(
        ingest.org_coverage(org, 10).await.unwrap(),
        vec![(id, cover(5, 20, 15))]
    );
    let other = catalog.organizations().create("other").await.unwrap().id;
    assert!(ingest.org_coverage(other, 10).await.unwrap().is_empty());

    assert_err!(
        ingest.record_coverage(id, vec![cover(20, 10, 1)]).await,
        Error::Invalid { .. }
    );
    assert_err!(
        ingest.record_coverage(id, vec![cover(1, 2, 0)]).await,
        Error::Invalid { .. }
    );
    let missing = SubjectCoverage {
        subject: SubjectId(999_999),
        ..cover(1, 2, 1)
    };
    assert_err!(
        ingest.record_coverage(id, vec![missing]).await,
        Error::Invalid { .. }
    );
    assert_eq!(ingest.coverage(id).await.unwrap().len(), 1);
}
