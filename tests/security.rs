//! Attacks on `healthai serve`, each through a real client: forged and tampered tokens,
//! crossing organizations, SQL that tries to reach other subjects or the host, and the
//! refresh-token lifecycle.

mod server;

use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{AsArray, RecordBatch};
use arrow_flight::{HandshakeRequest, flight_service_client::FlightServiceClient};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD},
};
use flight::pb::{
    LoginRequest, LogoutRequest, RefreshRequest, auth_service_client::AuthServiceClient,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use server::{
    ADMIN, ANALYST, COACH, MEMBER, READINGS, Server, channel, code, connect, login, query,
    single_int,
};
use tonic::Code;

/// The access token a Basic handshake answers with, from the `authorization` response header.
async fn handshake(server: &Server, basic: &str) -> Result<String, tonic::Status> {
    let channel = channel(server).await;
    let mut flight = FlightServiceClient::new(channel);
    let mut request = tonic::Request::new(futures::stream::iter([HandshakeRequest::default()]));
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    let response = flight.handshake(request).await?;
    let header = response
        .metadata()
        .get("authorization")
        .expect("authorization header")
        .to_str()
        .unwrap();
    Ok(header
        .strip_prefix("Bearer ")
        .expect("a bearer token")
        .to_owned())
}

/// Runs a query with the given `authorization` header value.
async fn query_with(
    server: &Server,
    authorization: &str,
    sql: &str,
) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
    let mut client = connect(server).await;
    client.set_header("authorization", authorization);
    query(&mut client, sql).await
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn basic_credentials_log_in_padded_or_unpadded() {
    let server = Server::start();
    let credentials = format!("{}:{}", MEMBER.0, MEMBER.1);
    assert_eq!(
        credentials.len() % 3,
        1,
        "the padded form must differ from the unpadded one"
    );
    for encoded in [
        STANDARD.encode(&credentials),
        STANDARD_NO_PAD.encode(&credentials),
    ] {
        let token = handshake(&server, &encoded).await.unwrap();
        let rows = query_with(
            &server,
            &format!("Bearer {token}"),
            "SELECT count(*) FROM heart_rate",
        )
        .await
        .unwrap();
        assert_eq!(single_int(&rows), READINGS as i64);
        // Basic is accepted on every call too, not only on the handshake.
        let rows = query_with(
            &server,
            &format!("Basic {encoded}"),
            "SELECT count(*) FROM heart_rate",
        )
        .await
        .unwrap();
        assert_eq!(single_int(&rows), READINGS as i64);
    }
    let wrong = STANDARD.encode(format!("{}:not-the-password", MEMBER.0));
    let status = handshake(&server, &wrong).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("wrong username or password"),
        "{status}"
    );
    let err = query_with(&server, "Bearer", "SELECT 1").await.unwrap_err();
    assert_eq!(code(&err), Code::Unauthenticated, "{err}");
}

#[tokio::test]
async fn forged_and_tampered_tokens_are_refused() {
    let server = Server::start();
    let token = handshake(
        &server,
        &STANDARD.encode(format!("{}:{}", MEMBER.0, MEMBER.1)),
    )
    .await
    .unwrap();
    let secret = std::fs::read(server.secret_file()).unwrap();
    let claims = claims_of(&token);
    let sign = |claims: &Value, key: &[u8]| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let with = |changes: Value| {
        let mut changed = claims.clone();
        for (k, v) in changes.as_object().unwrap() {
            changed[k] = v.clone();
        }
        changed
    };
    let count = "SELECT count(*) FROM heart_rate";

    // The control: the same claims signed again with the server's own secret are accepted, so
    // every refusal below is due to the one thing changed.
    let resigned = sign(&claims, &secret);
    assert_eq!(
        single_int(
            &query_with(&server, &format!("Bearer {resigned}"), count)
                .await
                .unwrap()
        ),
        READINGS as i64
    );

    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = token.split('.').nth(1).unwrap();
    let mut parts = token.split('.');
    let (header, _, signature) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    let raised_payload = URL_SAFE_NO_PAD.encode(with(json!({"sub": "1"})).to_string());
    let attacks = [
        ("alg none", format!("{header_none}.{body}."), "malformed"),
        (
            "alg none with the original signature",
            format!("{header_none}.{body}.{signature}"),
            "malformed",
        ),
        (
            "another key",
            sign(&claims, b"a-secret-the-server-never-saw-0123456789"),
            "not signed by this server",
        ),
        (
            "claims changed under the original signature",
            format!("{header}.{raised_payload}.{signature}"),
            "not signed by this server",
        ),
        (
            "expired",
            sign(
                &with(json!({"exp": now() - 3600, "nbf": now() - 7200})),
                &secret,
            ),
            "expired",
        ),
        (
            "not valid yet",
            sign(
                &with(json!({"nbf": now() + 3600, "exp": now() + 7200})),
                &secret,
            ),
            "not valid yet",
        ),
        (
            "another audience",
            sign(&with(json!({"aud": "grafana"})), &secret),
            "meant for another service",
        ),
        (
            "another issuer",
            sign(&with(json!({"iss": "someone-else"})), &secret),
            "issued by someone else",
        ),
        (
            "another organization",
            sign(
                &with(json!({"org": claims["org"].as_i64().unwrap() + 1})),
                &secret,
            ),
            "another organization",
        ),
        (
            "no expiry",
            sign(
                &claims
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| *k != "exp")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                &secret,
            ),
            "malformed",
        ),
        (
            "a user that does not exist",
            sign(&with(json!({"sub": "987654"})), &secret),
            "no longer exists",
        ),
    ];
    for (attack, forged, reason) in attacks {
        let err = query_with(&server, &format!("Bearer {forged}"), count)
            .await
            .unwrap_err();
        assert_eq!(code(&err), Code::Unauthenticated, "{attack}: {err}");
        assert!(
            err.to_string().contains(reason),
            "{attack}: expected '{reason}' in {err}"
        );
    }
}

#[tokio::test]
async fn organizations_never_see_each_other() {
    let server = Server::start();
    std::fs::write(
        server.dir.path().join("acme.csv"),
        "subject,source,time,bpm\nS1,ring,2026-03-01T08:00:00Z,99\nS9,ring,2026-03-01T08:00:00Z,98\n",
    )
    .unwrap();
    server.healthai(&["org", "create", "acme"]);
    server.healthai(&["write", "heart_rate", "acme.csv", "--org", "acme"]);
    // The same email in both organizations: the login must say which.
    server::healthai(
        server.dir.path(),
        &[
            "user",
            "add",
            "--org",
            "acme",
            "--email",
            ANALYST.0,
            "--role",
            "analyst",
            "--password-stdin",
        ],
        Some("acme-password\n"),
    );
    let mut client = connect(&server).await;
    let err = client.handshake(ANALYST.0, ANALYST.1).await.unwrap_err();
    assert!(err.to_string().contains("several organizations"), "{err}");

    let mut acme = connect(&server).await;
    acme.handshake(&format!("acme/{}", ANALYST.0), "acme-password")
        .await
        .unwrap();
    let mut default = connect(&server).await;
    default
        .handshake(&format!("default/{}", ANALYST.0), ANALYST.1)
        .await
        .unwrap();
    let mut guess = connect(&server).await;
    assert!(
        guess
            .handshake(&format!("acme/{}", ANALYST.0), ANALYST.1)
            .await
            .is_err(),
        "each organization has its own password"
    );

    for (sql, acme_sees, default_sees) in [
        ("SELECT count(*) FROM heart_rate", 2, 3 * READINGS as i64),
        (
            "SELECT count(*) FROM healthai.health.heart_rate WHERE subject_id IN (SELECT subject_id FROM meta.subjects)",
            2,
            3 * READINGS as i64,
        ),
        ("SELECT count(*) FROM meta.subjects", 2, 3),
        ("SELECT count(*) FROM system.files", 1, 1),
        (
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog <> 'healthai'",
            0,
            0,
        ),
    ] {
        assert_eq!(
            single_int(&query(&mut acme, sql).await.unwrap()),
            acme_sees,
            "acme: {sql}"
        );
        assert_eq!(
            single_int(&query(&mut default, sql).await.unwrap()),
            default_sees,
            "default: {sql}"
        );
    }
    let max = query(&mut default, "SELECT max(bpm) FROM heart_rate")
        .await
        .unwrap();
    assert!(
        max[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0)
            < 98.0
    );
    for sql in [
        "SELECT * FROM acme.health.heart_rate",
        "SELECT * FROM datafusion.public.heart_rate",
    ] {
        assert!(query(&mut default, sql).await.is_err(), "{sql}");
    }
}

#[tokio::test]
async fn sql_cannot_reach_other_subjects() {
    let server = Server::start();
    let mut member = login(&server, MEMBER).await;
    let readings = READINGS as i64;
    for (sql, expected) in [
        ("SELECT count(DISTINCT subject_id) FROM heart_rate", 1),
        (
            "SELECT count(*) FROM heart_rate a JOIN heart_rate b ON a.time = b.time AND a.subject_id <> b.subject_id",
            0,
        ),
        (
            "SELECT count(*) FROM (SELECT subject_id FROM heart_rate UNION ALL SELECT subject_id FROM healthai.health.heart_rate)",
            2 * readings,
        ),
        (
            "SELECT count(*) FROM heart_rate WHERE subject_id NOT IN (SELECT subject_id FROM meta.subjects)",
            0,
        ),
        (
            "SELECT count(*) FROM (SELECT * FROM heart_rate WHERE bpm > 0 OR subject_id > 0)",
            readings,
        ),
        ("SELECT count(*) FROM meta.subjects", 1),
        ("SELECT count(*) FROM meta.group_members", 0),
        (
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'system'",
            0,
        ),
        ("SELECT count(*) FROM heart_rate WHERE bpm >= 70", 0),
    ] {
        assert_eq!(
            single_int(&query(&mut member, sql).await.unwrap()),
            expected,
            "{sql}"
        );
    }
    let mut coach = login(&server, COACH).await;
    assert_eq!(
        single_int(
            &query(
                &mut coach,
                "SELECT count(DISTINCT subject_id) FROM heart_rate"
            )
            .await
            .unwrap()
        ),
        2
    );
    let mut analyst = login(&server, ANALYST).await;

    for (who, client) in [("member", &mut member), ("analyst", &mut analyst)] {
        for sql in [
            "SELECT * FROM system.files",
            "SELECT * FROM system.audit_log",
            "SELECT * FROM system.quarantine",
            "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'",
            "COPY (SELECT * FROM heart_rate) TO '/tmp/leak.csv'",
            "CREATE VIEW everyone AS SELECT * FROM heart_rate",
            "DROP TABLE heart_rate",
            "SET datafusion.execution.target_partitions = 1",
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_parquet('healthai-data/store')",
        ] {
            if who == "analyst" && sql == "SELECT * FROM system.files" {
                continue;
            }
            let err = query(client, sql).await.unwrap_err();
            assert_ne!(code(&err), Code::Internal, "{who}: {sql}: {err}");
            assert_ne!(code(&err), Code::Unknown, "{who}: {sql}: {err}");
        }
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_logout_revokes_them() {
    let server = Server::start();
    let channel = channel(&server).await;
    let mut auth = AuthServiceClient::new(channel);
    let login = |password: &str| LoginRequest {
        username: ADMIN.0.into(),
        password: password.into(),
    };
    let wrong = auth.login(login("guess")).await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let first = auth.login(login(ADMIN.1)).await.unwrap().into_inner();
    assert!(
        first.expires_in > 0 && first.expires_in <= 3600,
        "{}",
        first.expires_in
    );
    let count = "SELECT count(*) FROM heart_rate";
    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        single_int(
            &query_with(&server, &bearer(&first.access_token), count)
                .await
                .unwrap()
        ),
        3 * READINGS as i64
    );

    let refresh = |token: &str| RefreshRequest {
        refresh_token: token.into(),
    };
    let second = auth
        .refresh(refresh(&first.refresh_token))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(
        single_int(
            &query_with(&server, &bearer(&second.access_token), count)
                .await
                .unwrap()
        ),
        3 * READINGS as i64
    );
    let third = auth
        .refresh(refresh(&second.refresh_token))
        .await
        .unwrap()
        .into_inner();

    // The first token again: someone kept a copy, so its whole family is revoked.
    let reused = auth
        .refresh(refresh(&first.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::Unauthenticated);
    assert!(reused.message().contains("already used"), "{reused}");
    let revoked = auth
        .refresh(refresh(&third.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated, "{revoked}");

    let fresh = auth.login(login(ADMIN.1)).await.unwrap().into_inner();
    auth.logout(LogoutRequest {
        refresh_token: fresh.refresh_token.clone(),
    })
    .await
    .unwrap();
    let after_logout = auth
        .refresh(refresh(&fresh.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(after_logout.code(), Code::Unauthenticated);
    assert!(auth.refresh(refresh("made-up")).await.is_err());
}
