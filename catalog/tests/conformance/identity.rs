use catalog::{
    Comparator, Error, GoalPeriod, GroupKind, NewGoal, NewGroup, NewUser, PasswordHash, Role, Sex,
    SubjectProfile, TokenHash, TokenRejection, UserId, testing::TestDatabase,
};
use chrono::Duration;

use crate::support::{assert_err, day, default_org, minutes, subject, t0};

pub async fn organizations_have_unique_path_safe_names(db: TestDatabase) {
    let catalog = db.catalog().await;
    let orgs = catalog.organizations();
    let acme = orgs.create("acme-health").await.unwrap();
    assert_eq!(orgs.get("acme-health").await.unwrap(), acme);
    assert_err!(
        orgs.create("acme-health").await,
        Error::AlreadyExists { .. }
    );
    for bad in ["Acme", "a/b", "", "../etc"] {
        assert_err!(orgs.create(bad).await, Error::Invalid { .. });
    }
    assert_err!(orgs.get("nobody").await, Error::NotFound { .. });
    let names: Vec<_> = orgs
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["acme-health", "default"]);
}

fn user(org: catalog::OrgId, email: &str, roles: Vec<Role>) -> NewUser {
    NewUser {
        org,
        email: email.into(),
        display_name: None,
        password_hash: None,
        roles,
        subject: None,
        coach_of: vec![],
    }
}

pub async fn users_carry_roles_subjects_and_groups(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let other = catalog.organizations().create("other").await.unwrap().id;
    let ana = subject(&catalog, org, "S0001").await;
    let stranger = subject(&catalog, other, "S0001").await;
    let runners = catalog
        .subjects()
        .create_group(NewGroup {
            org,
            name: "Morning runners".into(),
            kind: GroupKind::Coaching,
            description: String::new(),
        })
        .await
        .unwrap();

    let users = catalog.users();
    let member = users
        .create(NewUser {
            display_name: Some("Ana".into()),
            password_hash: Some(PasswordHash(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            )),
            subject: Some(ana),
            ..user(org, " Ana@Example.COM", vec![Role::Member])
        })
        .await
        .unwrap();
    assert_eq!(member.email, "ana@example.com");
    assert_eq!(member.roles, [Role::Member]);
    assert_eq!(member.subject, Some(ana));
    assert!(
        !format!("{member:?}").contains("argon2"),
        "Debug leaks the hash"
    );

    // Emails are unique per organization, whatever their case.
    assert_err!(
        users
            .create(user(org, "ANA@example.com", vec![Role::Analyst]))
            .await,
        Error::AlreadyExists { .. }
    );
    users
        .create(user(other, "ana@example.com", vec![Role::Analyst]))
        .await
        .unwrap();

    let err = assert_err!(
        users
            .create(user(org, "bob@example.com", vec![Role::Member]))
            .await,
        Error::Invalid { .. }
    );
    assert!(err.to_string().contains("linked to a subject"), "{err}");
    let err = assert_err!(
        users
            .create(NewUser {
                subject: Some(stranger),
                ..user(org, "bob@example.com", vec![Role::Member])
            })
            .await,
        Error::Invalid { .. }
    );
    assert!(
        err.to_string().contains("not a subject of organization"),
        "{err}"
    );
    assert_err!(
        users.create(user(org, "nobody", vec![Role::Analyst])).await,
        Error::Invalid { .. }
    );
    assert_err!(
        users.create(user(org, "x@example.com", vec![])).await,
        Error::Invalid { .. }
    );

    let coach = users
        .create(NewUser {
            coach_of: vec![runners.id],
            ..user(org, "coach@example.com", vec![Role::Coach])
        })
        .await
        .unwrap();
    assert_eq!(coach.coach_of, [runners.id]);
    let foreign_group = catalog
        .subjects()
        .create_group(NewGroup {
            org: other,
            name: "Elsewhere".into(),
            kind: GroupKind::Cohort,
            description: String::new(),
        })
        .await
        .unwrap();
    assert_err!(
        users
            .create(NewUser {
                coach_of: vec![foreign_group.id],
                ..user(org, "coach2@example.com", vec![Role::Coach])
            })
            .await,
        Error::Invalid { .. }
    );
    // The refused user left nothing behind.
    assert_err!(
        users.get_by_email(org, "coach2@example.com").await,
        Error::NotFound { .. }
    );

    assert_eq!(
        users.get_by_email(org, "COACH@example.com").await.unwrap(),
        coach
    );
    let everywhere: Vec<_> = users
        .find_by_email("Ana@example.com")
        .await
        .unwrap()
        .iter()
        .map(|u| u.org)
        .collect();
    assert_eq!(everywhere, [org, other]);
    assert!(
        users
            .find_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        users
            .find_by_email("not an email")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(users.get(member.id).await.unwrap(), member);
    let emails: Vec<_> = users
        .list(org)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(emails, ["ana@example.com", "coach@example.com"]);

    users.set_disabled(member.id, true).await.unwrap();
    users
        .set_password_hash(member.id, PasswordHash("$argon2id$new".into()))
        .await
        .unwrap();
    users.grant_role(member.id, Role::Analyst).await.unwrap();
    users.grant_role(member.id, Role::Analyst).await.unwrap();
    users.revoke_role(member.id, Role::Member).await.unwrap();
    let changed = users.get(member.id).await.unwrap();
    assert!(changed.disabled);
    assert_eq!(
        changed.password_hash,
        Some(PasswordHash("$argon2id$new".into()))
    );
    assert_eq!(changed.roles, [Role::Analyst]);
    assert_err!(
        users.grant_role(coach.id, Role::Member).await,
        Error::Invalid { .. }
    );
    assert_err!(users.get(UserId(987_654)).await, Error::NotFound { .. });
    assert_err!(
        users.set_disabled(UserId(987_654), true).await,
        Error::NotFound { .. }
    );
}

pub async fn refresh_tokens_rotate_and_detect_reuse(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let user = catalog
        .users()
        .create(user(org, "ana@example.com", vec![Role::Analyst]))
        .await
        .unwrap();
    let tokens = catalog.tokens();
    let month = Duration::days(30);

    let first = tokens
        .issue(user.id, TokenHash::of("r1"), t0(), t0() + month)
        .await
        .unwrap();
    assert_eq!(
        tokens.find(TokenHash::of("r1")).await.unwrap(),
        Some(first.clone())
    );
    let second = tokens
        .rotate(
            TokenHash::of("r1"),
            TokenHash::of("r2"),
            t0() + minutes(5),
            t0() + month,
        )
        .await
        .unwrap();
    assert_eq!((second.user, second.family), (user.id, first.family));
    let rotated = tokens.find(TokenHash::of("r1")).await.unwrap().unwrap();
    assert_eq!(rotated.replaced_by, Some(second.id));
    assert!(rotated.revoked_at.is_some());

    // Presenting the rotated token again is a reuse: the whole login is revoked.
    let err = tokens
        .rotate(
            TokenHash::of("r1"),
            TokenHash::of("r3"),
            t0() + minutes(6),
            t0() + month,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RefreshToken(TokenRejection::Reused)),
        "{err}"
    );
    let err = tokens
        .rotate(
            TokenHash::of("r2"),
            TokenHash::of("r3"),
            t0() + minutes(7),
            t0() + month,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RefreshToken(TokenRejection::Revoked)),
        "{err}"
    );

    let err = tokens
        .rotate(
            TokenHash::of("never"),
            TokenHash::of("r3"),
            t0(),
            t0() + month,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RefreshToken(TokenRejection::Unknown)),
        "{err}"
    );

    tokens
        .issue(user.id, TokenHash::of("short"), t0(), t0() + minutes(60))
        .await
        .unwrap();
    let err = tokens
        .rotate(
            TokenHash::of("short"),
            TokenHash::of("r3"),
            t0() + minutes(61),
            t0() + month,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RefreshToken(TokenRejection::Expired)),
        "{err}"
    );

    // Logout revokes the login's family; other logins stay until revoked for the user.
    tokens
        .issue(user.id, TokenHash::of("laptop"), t0(), t0() + month)
        .await
        .unwrap();
    tokens
        .issue(user.id, TokenHash::of("phone"), t0(), t0() + month)
        .await
        .unwrap();
    assert_eq!(
        tokens
            .revoke_family(TokenHash::of("laptop"), t0())
            .await
            .unwrap(),
        1
    );
    let err = tokens
        .rotate(
            TokenHash::of("laptop"),
            TokenHash::of("r4"),
            t0(),
            t0() + month,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RefreshToken(TokenRejection::Revoked)),
        "{err}"
    );
    assert_eq!(tokens.revoke_all_for_user(user.id, t0()).await.unwrap(), 2);

    assert_err!(
        tokens
            .issue(user.id, TokenHash::of("backwards"), t0(), t0() - minutes(1))
            .await,
        Error::Invalid { .. }
    );
    assert_err!(
        tokens
            .issue(UserId(987_654), TokenHash::of("orphan"), t0(), t0() + month)
            .await,
        Error::NotFound { .. }
    );

    let forgotten = tokens
        .delete_expired(t0() + month + minutes(10))
        .await
        .unwrap();
    assert_eq!(forgotten, 5);
    assert_eq!(tokens.find(TokenHash::of("r1")).await.unwrap(), None);
}

pub async fn concurrent_rotations_of_one_token_have_one_winner(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let user = catalog
        .users()
        .create(user(org, "ana@example.com", vec![Role::Analyst]))
        .await
        .unwrap();
    let month = Duration::days(30);
    catalog
        .tokens()
        .issue(user.id, TokenHash::of("shared"), t0(), t0() + month)
        .await
        .unwrap();
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                catalog
                    .tokens()
                    .rotate(
                        TokenHash::of("shared"),
                        TokenHash::of(&format!("next-{i}")),
                        t0() + minutes(1),
                        t0() + month,
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(token) => winners.push(token),
            Err(Error::RefreshToken(TokenRejection::Reused)) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    // The losers were reuses, so the winner's token is revoked with its family.
    let all: Vec<_> = (0..8)
        .map(|i| TokenHash::of(&format!("next-{i}")))
        .collect();
    let mut live = 0;
    for hash in all {
        if let Some(t) = catalog.tokens().find(hash).await.unwrap() {
            assert!(t.revoked_at.is_some(), "{t:?}");
            live += 1;
        }
    }
    assert_eq!(live, 1);
}

pub async fn subjects_and_groups_stay_inside_their_organization(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let other = catalog.organizations().create("other").await.unwrap().id;
    let subjects = catalog.subjects();

    let profile = SubjectProfile {
        display_name: Some("Ana Lima".into()),
        email: Some("Ana@Example.org".into()),
        sex: Some(Sex::Female),
        birth_year: Some(1990),
        height_cm: Some(168.0),
        max_hr: Some(188),
        timezone: "Europe/Paris".into(),
    };
    let ana = subjects
        .create(org, "S0001", profile.clone())
        .await
        .unwrap();
    assert_eq!(ana.profile.email.as_deref(), Some("ana@example.org"));
    assert_eq!(ana.profile.timezone, "Europe/Paris");
    assert_err!(
        subjects
            .create(org, "S0001", SubjectProfile::default())
            .await,
        Error::AlreadyExists { .. }
    );
    let err = assert_err!(
        subjects
            .create(
                org,
                "S0009",
                SubjectProfile {
                    timezone: "Mars/Olympus".into(),
                    ..SubjectProfile::default()
                }
            )
            .await,
        Error::Invalid { .. }
    );
    assert!(err.to_string().contains("IANA"), "{err}");
    assert_err!(
        subjects
            .create(
                org,
                "S0009",
                SubjectProfile {
                    height_cm: Some(500.0),
                    ..SubjectProfile::default()
                }
            )
            .await,
        Error::Invalid { .. }
    );

    // The ingest path: known pseudonyms resolve, new ones are created, repeats are one.
    let ensured = subjects
        .ensure(
            org,
            &[
                "S0002".into(),
                "S0001".into(),
                "S0002".into(),
                "S0003".into(),
            ],
        )
        .await
        .unwrap();
    let pseudonyms: Vec<_> = ensured.iter().map(|s| s.pseudonym.as_str()).collect();
    assert_eq!(pseudonyms, ["S0001", "S0002", "S0003"]);
    assert_eq!(ensured[0].id, ana.id);
    let again = subjects
        .ensure(org, &["S0003".into(), "S0002".into()])
        .await
        .unwrap();
    assert_eq!(again, ensured[1..]);
    assert_eq!(subjects.list(org).await.unwrap().len(), 3);
    // More pseudonyms than one statement binds, known ones among them.
    let many: Vec<String> = (0..1200).map(|i| format!("M{i:04}")).collect();
    let first_half = subjects.ensure(org, &many[..600]).await.unwrap();
    let all = subjects.ensure(org, &many).await.unwrap();
    let names: Vec<&str> = all.iter().map(|s| s.pseudonym.as_str()).collect();
    assert_eq!(names, many.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(all[..600], first_half[..]);
    assert_eq!(subjects.list(org).await.unwrap().len(), 1203);
    assert_eq!(
        subjects.get_by_pseudonym(org, "S0002").await.unwrap(),
        ensured[1]
    );
    assert_err!(
        subjects.get_by_pseudonym(other, "S0002").await,
        Error::NotFound { .. }
    );

    let updated = subjects
        .update_profile(
            ensured[1].id,
            SubjectProfile {
                max_hr: Some(201),
                ..SubjectProfile::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.profile.max_hr, Some(201));
    assert_eq!(subjects.get(ensured[1].id).await.unwrap(), updated);

    let group = subjects
        .create_group(NewGroup {
            org,
            name: "Spring challenge".into(),
            kind: GroupKind::Challenge,
            description: "10k steps a day".into(),
        })
        .await
        .unwrap();
    assert_err!(
        subjects
            .create_group(NewGroup {
                description: String::new(),
                ..group_like(&group)
            })
            .await,
        Error::AlreadyExists { .. }
    );
    subjects.add_member(group.id, ana.id).await.unwrap();
    subjects.add_member(group.id, ana.id).await.unwrap();
    subjects.add_member(group.id, ensured[2].id).await.unwrap();
    assert_eq!(
        subjects.members(group.id).await.unwrap(),
        [ana.id, ensured[2].id]
    );
    subjects
        .remove_member(group.id, ensured[2].id)
        .await
        .unwrap();
    assert_eq!(subjects.members(group.id).await.unwrap(), [ana.id]);

    let stranger = subject(&catalog, other, "X1").await;
    let err = assert_err!(
        subjects.add_member(group.id, stranger).await,
        Error::Invalid { .. }
    );
    assert!(
        err.to_string()
            .contains("not a subject of the organization"),
        "{err}"
    );
    assert_err!(
        subjects.add_member(catalog::GroupId(987_654), ana.id).await,
        Error::NotFound { .. }
    );

    let analyst = catalog
        .users()
        .create(user(org, "analyst@example.com", vec![Role::Analyst]))
        .await
        .unwrap();
    assert_err!(
        subjects.add_coach(group.id, analyst.id).await,
        Error::Invalid { .. }
    );
    let coach = catalog
        .users()
        .create(user(org, "coach@example.com", vec![Role::Coach]))
        .await
        .unwrap();
    subjects.add_coach(group.id, coach.id).await.unwrap();
    assert_eq!(subjects.coached_subjects(coach.id).await.unwrap(), [ana.id]);
    assert!(
        subjects
            .coached_subjects(analyst.id)
            .await
            .unwrap()
            .is_empty()
    );
    let foreign_coach = catalog
        .users()
        .create(user(other, "coach@example.com", vec![Role::Coach]))
        .await
        .unwrap();
    assert_err!(
        subjects.add_coach(group.id, foreign_coach.id).await,
        Error::Invalid { .. }
    );
    assert_eq!(subjects.list_groups(org).await.unwrap(), [group]);
    assert!(subjects.list_groups(other).await.unwrap().is_empty());
}

fn group_like(group: &catalog::Group) -> NewGroup {
    NewGroup {
        org: group.org,
        name: group.name.clone(),
        kind: group.kind,
        description: group.description.clone(),
    }
}

pub async fn goals_belong_to_subjects_of_the_organization(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let other = catalog.organizations().create("other").await.unwrap().id;
    let ana = subject(&catalog, org, "S0001").await;
    let stranger = subject(&catalog, other, "S0001").await;
    let goals = catalog.goals();
    let steps = NewGoal {
        org,
        subject: ana,
        metric: "steps".into(),
        target: 10_000.0,
        comparator: Comparator::AtLeast,
        period: GoalPeriod::Day,
        starts_on: day(0),
        ends_on: Some(day(90)),
    };
    let created = goals.create(steps.clone()).await.unwrap();
    assert_eq!((created.target, created.ends_on), (10_000.0, Some(day(90))));
    let weight = goals
        .create(NewGoal {
            metric: "weight_kg".into(),
            target: 70.5,
            comparator: Comparator::AtMost,
            period: GoalPeriod::Total,
            ends_on: None,
            ..steps.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        goals.list_for_subject(ana).await.unwrap(),
        [created.clone(), weight.clone()]
    );
    assert_eq!(goals.list(org).await.unwrap().len(), 2);

    assert_err!(
        goals
            .create(NewGoal {
                ends_on: Some(day(-1)),
                ..steps.clone()
            })
            .await,
        Error::Invalid { .. }
    );
    assert_err!(
        goals
            .create(NewGoal {
                metric: "Steps!".into(),
                ..steps.clone()
            })
            .await,
        Error::Invalid { .. }
    );
    assert_err!(
        goals
            .create(NewGoal {
                target: f64::NAN,
                ..steps.clone()
            })
            .await,
        Error::Invalid { .. }
    );
    let err = assert_err!(
        goals
            .create(NewGoal {
                subject: stranger,
                ..steps
            })
            .await,
        Error::Invalid { .. }
    );
    assert!(
        err.to_string().contains("not a subject of organization"),
        "{err}"
    );

    goals.delete(created.id).await.unwrap();
    assert_err!(goals.delete(created.id).await, Error::NotFound { .. });
    assert_eq!(goals.list_for_subject(ana).await.unwrap(), [weight]);
}
