//! The typed gRPC API end to end, with clients generated from `flight/proto/healthai/v1`, plus
//! the standard gRPC health and reflection services that tooling such as grpcurl relies on.

mod server;

use flight::pb::{
    self, Aggregate, BucketedAggregatesRequest, LatestReadingsRequest, Reading, WriteRequest,
    admin_service_client::AdminServiceClient, catalog_service_client::CatalogServiceClient,
    ingest_service_client::IngestServiceClient, query_service_client::QueryServiceClient,
    value::Kind,
};
use prost_types::{Duration, Timestamp};
use server::{
    ADMIN, ANALYST, COACH, INGEST, MEMBER, READINGS, Server, channel, connect, query, single_int,
};
use tonic::{Code, Request, metadata::MetadataValue};

async fn token(server: &Server, (email, password): (&str, &str)) -> String {
    let mut auth = pb::auth_service_client::AuthServiceClient::new(channel(server).await);
    let login = pb::LoginRequest {
        username: email.into(),
        password: password.into(),
    };
    auth.login(login).await.unwrap().into_inner().access_token
}

/// `message` with `authorization: Bearer TOKEN`.
fn authorized<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

/// 2026-03-01T08:00:00Z plus `minutes`.
fn at(minutes: i64) -> Timestamp {
    Timestamp {
        seconds: 1_772_352_000 + minutes * 60,
        nanos: 0,
    }
}

fn hourly(subjects: &[&str]) -> BucketedAggregatesRequest {
    BucketedAggregatesRequest {
        stream: "heart_rate".into(),
        column: "bpm".into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        start: Some(at(0)),
        end: Some(at(24 * 60)),
        bucket: Some(Duration {
            seconds: 3600,
            nanos: 0,
        }),
        aggregates: vec![
            Aggregate::Count as i32,
            Aggregate::Min as i32,
            Aggregate::Max as i32,
            Aggregate::Mean as i32,
            Aggregate::Last as i32,
        ],
    }
}

#[tokio::test]
async fn bucketed_aggregates_and_latest_readings_respect_the_caller() {
    let server = Server::start();
    let mut queries = QueryServiceClient::new(channel(&server).await);
    let admin = token(&server, ADMIN).await;
    let buckets = queries
        .bucketed_aggregates(authorized(&admin, hourly(&[])))
        .await
        .unwrap()
        .into_inner()
        .buckets;
    assert_eq!(buckets.len(), 3 * 2, "two hours for each of three subjects");
    // S2 reads 70 + minute % 10 every minute; its second hour starts at 09:00.
    let s2_second_hour = &buckets[3];
    assert_eq!(s2_second_hour.subject, "S2");
    assert_eq!(s2_second_hour.start, Some(at(60)));
    assert_eq!(s2_second_hour.values, [60.0, 70.0, 79.0, 74.5, 79.0]);

    let member = token(&server, MEMBER).await;
    let buckets = queries
        .bucketed_aggregates(authorized(&member, hourly(&["S1", "S2"])))
        .await
        .unwrap()
        .into_inner()
        .buckets;
    let subjects: Vec<_> = buckets.iter().map(|b| b.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["S1", "S1"],
        "a member asking for another subject gets only their own"
    );

    let mut bad = hourly(&[]);
    bad.column = "bpm; DROP TABLE heart_rate".into();
    let status = queries
        .bucketed_aggregates(authorized(&admin, bad))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("has no column"), "{status}");
    let status = queries.bucketed_aggregates(hourly(&[])).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let coach = token(&server, COACH).await;
    let latest = queries
        .latest_readings(authorized(
            &coach,
            LatestReadingsRequest {
                stream: "heart_rate".into(),
                subjects: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .readings;
    let seen: Vec<_> = latest
        .iter()
        .map(|r| (r.subject.as_str(), r.time))
        .collect();
    assert_eq!(seen, [("S2", Some(at(119))), ("S3", Some(at(119)))]);
    assert_eq!(latest[0].source, "watch");
    assert_eq!(latest[0].values["bpm"].kind, Some(Kind::Number(79.0)));
}

#[tokio::test]
async fn services_stream_writes_and_describe_the_catalog() {
    let server = Server::start();
    let gateway = token(&server, INGEST).await;
    let rows = |subject: &str, minutes: std::ops::Range<i64>| WriteRequest {
        stream: "heart_rate".into(),
        rows: minutes
            .map(|m| Reading {
                subject: subject.into(),
                source: "strap".into(),
                time: Some(at(24 * 60 + m)),
                end_time: None,
                values: [(
                    "bpm".to_owned(),
                    pb::Value {
                        kind: Some(Kind::Number(100.0 + m as f64)),
                    },
                )]
                .into(),
            })
            .collect(),
    };
    let mut ingest = IngestServiceClient::new(channel(&server).await);
    let messages = futures::stream::iter([rows("S1", 0..500), rows("S4", 0..250)]);
    let written = ingest
        .write(authorized(&gateway, messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.rows_written, 750);
    let bad = WriteRequest {
        stream: "heart_rate".into(),
        rows: vec![Reading {
            subject: "S1".into(),
            source: "strap".into(),
            time: None,
            end_time: None,
            values: Default::default(),
        }],
    };
    let status = ingest
        .write(authorized(&gateway, futures::stream::iter([bad])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");

    let mut admin = connect(&server).await;
    admin.handshake(ADMIN.0, ADMIN.1).await.unwrap();
    let count = query(
        &mut admin,
        "SELECT count(*) FROM heart_rate WHERE source = 'strap'",
    )
    .await
    .unwrap();
    assert_eq!(single_int(&count), 750);

    let mut catalog = CatalogServiceClient::new(channel(&server).await);
    let analyst = token(&server, ANALYST).await;
    let streams = catalog
        .list_streams(authorized(&analyst, pb::ListStreamsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .streams;
    let heart_rate = streams
        .iter()
        .find(|s| s.name == "heart_rate")
        .expect("heart_rate is listed");
    let columns: Vec<_> = heart_rate.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["subject_id", "source", "time", "bpm"]);
    let coach = token(&server, COACH).await;
    let subjects = catalog
        .list_subjects(authorized(&coach, pb::ListSubjectsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .subjects;
    let pseudonyms: Vec<_> = subjects.iter().map(|s| s.pseudonym.as_str()).collect();
    assert_eq!(pseudonyms, ["S2", "S3"]);
}

#[tokio::test]
async fn admins_manage_users_and_service_tokens() {
    let server = Server::start();
    let mut users = AdminServiceClient::new(channel(&server).await);
    let analyst = token(&server, ANALYST).await;
    let status = users
        .list_users(authorized(&analyst, pb::ListUsersRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");

    let admin = token(&server, ADMIN).await;
    let created = users
        .create_user(authorized(
            &admin,
            pb::CreateUserRequest {
                email: "etl@example.org".into(),
                roles: vec!["service".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.roles, ["service"]);
    let listed = users
        .list_users(authorized(&admin, pb::ListUsersRequest {}))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(listed.len(), 6);

    let issued = users
        .issue_token(authorized(
            &admin,
            pb::IssueTokenRequest {
                email: "etl@example.org".into(),
                days: 7,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let expires = issued.expires_at.unwrap().seconds
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
    assert!((6 * 86_400..=7 * 86_400).contains(&expires), "{expires}");
    let mut service = connect(&server).await;
    service.set_token(issued.token.clone());
    let count = query(&mut service, "SELECT count(*) FROM heart_rate")
        .await
        .unwrap();
    assert_eq!(single_int(&count), 3 * READINGS as i64);

    let disabled = users
        .set_user_disabled(authorized(
            &admin,
            pb::SetUserDisabledRequest {
                email: "etl@example.org".into(),
                disabled: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(disabled.disabled);
}

#[tokio::test]
async fn health_and_reflection_serve_standard_tooling() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = Server::start();
    let mut health = HealthClient::new(channel(&server).await);
    for service in [
        "healthai.v1.QueryService",
        "healthai.v1.AuthService",
        "arrow.flight.protocol.FlightService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel(&server).await);
    let ask = |message| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let requests = futures::stream::iter([
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "healthai.v1.BucketedAggregatesRequest".into(),
        )),
    ]);
    let mut responses = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected the list of services");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in [
        "healthai.v1.QueryService",
        "healthai.v1.IngestService",
        "healthai.v1.CatalogService",
        "healthai.v1.AdminService",
        "healthai.v1.AuthService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&service), "{service} missing from {names:?}");
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a file descriptor");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}
