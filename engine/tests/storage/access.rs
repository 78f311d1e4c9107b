//! The access policy, applied by the engine itself: each role reads exactly its subjects,
//! however the SQL is written; identifiers and organization-wide tables only for those
//! allowed; writes only for the subjects a principal may write for; every query audited;
//! runaway queries stopped while the engine keeps serving.

use std::{collections::BTreeSet, time::Duration};

use arrow::{array::AsArray, datatypes::Int64Type};
use catalog::{
    AuditOutcome, GroupKind, NewBatch, NewGroup, NewUser, PasswordHash, QuarantinedRow, Role,
    SubjectId, SubjectProfile, User, testing::TestDatabase,
};
use chrono::Utc;
use engine::{EngineConfig, Error, Principal, QueryLimits};
use futures::StreamExt;

use crate::support::{Harness, MARCH_1, Reading, SECOND, heart_rate, test_config};

struct People {
    subjects: Vec<i64>,
    member: User,
    coach: User,
    analyst: User,
    ingest: User,
    admin: User,
}

async fn people(h: &Harness) -> People {
    let catalog = &h.catalog;
    let org = catalog.organizations().get("default").await.unwrap().id;
    let mut subjects = Vec::new();
    for i in 1..=4 {
        let profile = SubjectProfile {
            display_name: Some(format!("Person {i}")),
            email: Some(format!("person{i}@example.org")),
            ..SubjectProfile::default()
        };
        subjects.push(
            catalog
                .subjects()
                .create(org, &format!("S{i}"), profile)
                .await
                .unwrap()
                .id
                .0,
        );
    }
    let runners = catalog
        .subjects()
        .create_group(NewGroup {
            org,
            name: "Runners".into(),
            kind: GroupKind::Coaching,
            description: String::new(),
        })
        .await
        .unwrap();
    for s in &subjects[1..3] {
        catalog
            .subjects()
            .add_member(runners.id, SubjectId(*s))
            .await
            .unwrap();
    }
    let user = |email: &str, role: Role| NewUser {
        org,
        email: email.into(),
        display_name: None,
        password_hash: Some(PasswordHash("$argon2id$unused".into())),
        roles: vec![role],
        subject: None,
        coach_of: vec![],
    };
    let users = catalog.users();
    let member = users
        .create(NewUser {
            subject: Some(SubjectId(subjects[0])),
            ..user("member@example.org", Role::Member)
        })
        .await
        .unwrap();
    let coach = users
        .create(NewUser {
            coach_of: vec![runners.id],
            ..user("coach@example.org", Role::Coach)
        })
        .await
        .unwrap();
    let analyst = users
        .create(user("analyst@example.org", Role::Analyst))
        .await
        .unwrap();
    let ingest = users
        .create(user("ingest@example.org", Role::Ingest))
        .await
        .unwrap();
    let admin = users
        .create(user("admin@example.org", Role::Admin))
        .await
        .unwrap();
    let rows: Vec<Reading> = subjects
        .iter()
        .flat_map(|&s| {
            (0..10).map(move |m| (s, "watch", MARCH_1 + m * 60 * SECOND, 60.0 + m as f64))
        })
        .collect();
    h.write(&rows).await.unwrap();
    People {
        subjects,
        member,
        coach,
        analyst,
        ingest,
        admin,
    }
}

async fn subjects_seen(h: &Harness, principal: &Principal, sql: &str) -> BTreeSet<i64> {
    let batches = h
        .engine
        .query_as(principal, sql, None)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

pub async fn each_role_reads_exactly_its_subjects(db: TestDatabase) {
    let h = Harness::new(db).await;
    let p = people(&h).await;
    let s = &p.subjects;
    let member = h.engine.principal(&p.member, "flight").await.unwrap();
    let coach = h.engine.principal(&p.coach, "flight").await.unwrap();
    let analyst = h.engine.principal(&p.analyst, "flight").await.unwrap();
    let admin = h.engine.principal(&p.admin, "flight").await.unwrap();
    let own = BTreeSet::from([s[0]]);
    let group = BTreeSet::from([s[1], s[2]]);
    let everyone: BTreeSet<i64> = s.iter().copied().collect();

    // However the SQL reaches the stream, the scope holds.
    let attempts = [
        "SELECT DISTINCT subject_id FROM heart_rate".to_owned(),
        "SELECT DISTINCT subject_id FROM healthai.health.heart_rate".to_owned(),
        format!("SELECT subject_id FROM heart_rate WHERE subject_id IN ({}, {}, {}, {})", s[0], s[1], s[2], s[3]),
        "SELECT a.subject_id FROM heart_rate a JOIN heart_rate b ON a.subject_id <> b.subject_id".to_owned(),
        "SELECT subject_id FROM (SELECT * FROM heart_rate) UNION SELECT subject_id FROM meta.subjects".to_owned(),
        "SELECT subject_id FROM heart_rate WHERE subject_id IN (SELECT subject_id FROM meta.group_members)".to_owned(),
    ];
    for sql in &attempts {
        assert!(
            subjects_seen(&h, &member, sql).await.is_subset(&own),
            "member: {sql}"
        );
        assert!(
            subjects_seen(&h, &coach, sql).await.is_subset(&group),
            "coach: {sql}"
        );
    }
    assert_eq!(subjects_seen(&h, &member, &attempts[0]).await, own);
    assert_eq!(subjects_seen(&h, &coach, &attempts[0]).await, group);
    assert_eq!(subjects_seen(&h, &analyst, &attempts[0]).await, everyone);
    assert_eq!(subjects_seen(&h, &admin, &attempts[0]).await, everyone);
    assert!(
        subjects_seen(
            &h,
            &member,
            &format!(
                "SELECT subject_id FROM heart_rate WHERE subject_id = {}",
                s[3]
            )
        )
        .await
        .is_empty()
    );

    // Identifiers: the member sees their own, the coach their group's, the analyst none.
    let names = |principal: Principal| {
        let engine = h.engine.clone();
        async move {
            let batches = engine
                .query_as(
                    &principal,
                    "SELECT email FROM meta.subjects ORDER BY subject_id",
                    None,
                )
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            batches
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_string::<i32>()
                        .iter()
                        .map(|e| e.map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(member.clone()).await,
        [Some("person1@example.org".to_owned())]
    );
    assert_eq!(
        names(coach.clone()).await,
        [
            Some("person2@example.org".to_owned()),
            Some("person3@example.org".to_owned())
        ]
    );
    assert_eq!(names(analyst.clone()).await, [None, None, None, None]);
    assert_eq!(names(admin.clone()).await.iter().flatten().count(), 4);

    // Organization-wide tables exist only for those who read the whole organization.
    for principal in [&member, &coach] {
        let err = h
            .engine
            .query_as(principal, "SELECT * FROM system.files", None)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("system.files"), "{err}");
    }
    assert!(
        h.engine
            .query_as(&analyst, "SELECT * FROM system.files", None)
            .await
            .is_ok()
    );
    let err = h
        .engine
        .query_as(&analyst, "SELECT * FROM system.audit_log", None)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("audit_log"), "{err}");

    // So is the ingest quarantine: rejected values are raw input about any subject.
    let org = h.catalog.organizations().get("default").await.unwrap().id;
    let hr = h.catalog.streams().get(org, "heart_rate").await.unwrap().id;
    let batch = h
        .catalog
        .ingest()
        .begin_batch(
            NewBatch {
                org,
                source: "export.zip".into(),
                format: "apple-health".into(),
                bytes: 10,
                created_by: None,
            },
            Utc::now(),
        )
        .await
        .unwrap()
        .id;
    let rejected = QuarantinedRow {
        batch,
        stream: Some(hr),
        file: "export.zip!apple_health_export/export.xml".into(),
        record: Some(7),
        column: Some("bpm".into()),
        rule: "range".into(),
        reason: "bpm 400 is above the plausible maximum 250".into(),
        value: Some("400".into()),
    };
    let unparsed = QuarantinedRow {
        stream: None,
        record: None,
        column: None,
        rule: "parse".into(),
        reason: "not XML".into(),
        value: None,
        ..rejected.clone()
    };
    h.catalog
        .ingest()
        .quarantine(vec![rejected, unparsed])
        .await
        .unwrap();
    for principal in [&member, &coach, &analyst] {
        let err = h
            .engine
            .query_as(principal, "SELECT * FROM system.quarantine", None)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("quarantine"), "{err}");
    }
    let quarantined = h
        .engine
        .query_as(
            &admin,
            "SELECT batch_id, stream, file, record, column_name, rule, reason, value \
             FROM system.quarantine",
            None,
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let table = arrow::compute::concat_batches(&quarantined[0].schema(), &quarantined).unwrap();
    let texts =
        |i: usize| -> Vec<Option<&str>> { table.column(i).as_string::<i32>().iter().collect() };
    let ints = |i: usize| -> Vec<Option<i64>> {
        table.column(i).as_primitive::<Int64Type>().iter().collect()
    };
    let file = Some("export.zip!apple_health_export/export.xml");
    assert_eq!(ints(0), [Some(batch.0), Some(batch.0)]);
    assert_eq!(texts(1), [Some("heart_rate"), None]);
    assert_eq!(texts(2), [file, file]);
    assert_eq!(ints(3), [Some(7), None]);
    assert_eq!(texts(4), [Some("bpm"), None]);
    assert_eq!(texts(5), [Some("range"), Some("parse")]);
    assert_eq!(
        texts(6),
        [
            Some("bpm 400 is above the plausible maximum 250"),
            Some("not XML")
        ]
    );
    assert_eq!(texts(7), [Some("400"), None]);

    // The ingest account reads nothing.
    let ingest = h.engine.principal(&p.ingest, "flight").await.unwrap();
    let err = h
        .engine
        .query_as(&ingest, "SELECT 1", None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Denied(_)), "{err}");
    assert!(
        err.to_string()
            .contains("may not read data (roles: ingest)"),
        "{err}"
    );

    // A disabled user is no principal at all.
    h.catalog
        .users()
        .set_disabled(p.analyst.id, true)
        .await
        .unwrap();
    let disabled = h.catalog.users().get(p.analyst.id).await.unwrap();
    assert!(matches!(
        h.engine.principal(&disabled, "flight").await,
        Err(Error::Denied(_))
    ));
}

pub async fn writes_respect_the_principal(db: TestDatabase) {
    let h = Harness::new(db).await;
    let p = people(&h).await;
    let s = &p.subjects;
    let member = h.engine.principal(&p.member, "rest").await.unwrap();
    let ingest = h.engine.principal(&p.ingest, "flight").await.unwrap();
    let analyst = h.engine.principal(&p.analyst, "flight").await.unwrap();
    let at = MARCH_1 + 3_600 * SECOND;
    h.engine
        .write_as(
            &member,
            "heart_rate",
            heart_rate(&[(s[0], "phone", at, 70.0)]),
            None,
        )
        .await
        .unwrap();
    let err = h
        .engine
        .write_as(
            &member,
            "heart_rate",
            heart_rate(&[(s[0], "phone", at, 70.0), (s[1], "phone", at, 70.0)]),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "only write for their own subject, not subject {}",
            s[1]
        )),
        "{err}"
    );
    h.engine
        .write_as(
            &ingest,
            "heart_rate",
            heart_rate(&[(s[3], "gateway", at, 80.0)]),
            None,
        )
        .await
        .unwrap();
    let err = h
        .engine
        .write_as(
            &analyst,
            "heart_rate",
            heart_rate(&[(s[3], "gateway", at, 81.0)]),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Denied(_)), "{err}");
    let count = h
        .engine
        .query("default", "SELECT count(*) FROM heart_rate")
        .await
        .unwrap();
    assert_eq!(
        count.batches[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0),
        42
    );
}

pub async fn queries_are_audited(db: TestDatabase) {
    let h = Harness::new(db).await;
    let p = people(&h).await;
    let member = h.engine.principal(&p.member, "flight").await.unwrap();
    let ingest = h.engine.principal(&p.ingest, "flight").await.unwrap();
    let rows = h
        .engine
        .query_as(&member, "SELECT * FROM heart_rate", None)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
    assert!(
        h.engine
            .query_as(&ingest, "SELECT * FROM heart_rate", None)
            .await
            .is_err()
    );
    // A client that stops reading still leaves a trace.
    let mut cancelled = h
        .engine
        .query_as(&member, "SELECT * FROM heart_rate", None)
        .await
        .unwrap();
    cancelled.next().await.unwrap().unwrap();
    drop(cancelled);
    h.engine.flush_audit().await;

    let org = h.catalog.organizations().get("default").await.unwrap().id;
    let log = h
        .catalog
        .audit()
        .list(org, Utc::now() - chrono::Duration::hours(1), 100)
        .await
        .unwrap();
    let entries: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.entry.actor.as_str(),
                r.entry.statement.as_deref(),
                r.entry.rows,
                r.entry.outcome,
            )
        })
        .collect();
    assert!(
        entries.contains(&(
            "member@example.org",
            Some("SELECT * FROM heart_rate"),
            Some(10),
            AuditOutcome::Ok
        )),
        "{entries:?}"
    );
    assert!(
        entries.contains(&(
            "ingest@example.org",
            Some("SELECT * FROM heart_rate"),
            None,
            AuditOutcome::Denied
        )),
        "{entries:?}"
    );
    let cancelled = log.iter().find(|r| {
        r.entry
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with("cancelled by the client"))
    });
    assert!(cancelled.is_some(), "{entries:?}");
    assert!(
        log.iter()
            .all(|r| r.entry.interface == "flight" && r.entry.at <= Utc::now())
    );
}

pub async fn runaway_queries_are_stopped(db: TestDatabase) {
    let config = EngineConfig {
        query_limits: QueryLimits {
            memory: 8 << 20,
            timeout: Duration::from_secs(2),
        },
        ..test_config()
    };
    let h = Harness::with_config(db, config).await;
    let subjects = h.subjects(2).await;
    let rows: Vec<Reading> = (0..2_000)
        .map(|i| (subjects[i % 2], "watch", MARCH_1 + i as i64 * SECOND, 60.0))
        .collect();
    h.write(&rows).await.unwrap();

    let err = h
        .engine
        .query(
            "default",
            "SELECT array_agg(a.bpm) FROM heart_rate a, heart_rate b",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
    assert!(
        err.to_string().contains("more than its 8 MiB of memory"),
        "{err}"
    );

    let err = h
        .engine
        .query(
            "default",
            "SELECT max(a.bpm + b.bpm + c.bpm) FROM heart_rate a, heart_rate b, heart_rate c",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
    assert!(err.to_string().contains("time limit of 2 s"), "{err}");

    // Everyone else is still served.
    let count = h
        .engine
        .query("default", "SELECT count(*) FROM heart_rate")
        .await
        .unwrap();
    assert_eq!(
        count.batches[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0),
        2_000
    );
}
