//! Flight SQL end to end: `healthai serve` and the Rust Flight SQL client, as BI tools and ML
//! clients use it.

mod server;

use std::sync::Arc;

use arrow::{
    array::{AsArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray},
    datatypes::{DataType, Field, Schema},
};
use arrow_flight::{
    Ticket,
    flight_service_client::FlightServiceClient,
    sql::{
        CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo,
        CommandStatementIngest, SqlInfo,
    },
};
use futures::TryStreamExt;
use server::{
    ADMIN, ANALYST, COACH, INGEST, MEMBER, READINGS, Server, channel, code, connect, fetch, login,
    query, single_int,
};
use tonic::Code;

#[tokio::test]
async fn each_role_sees_its_rows_over_flight_sql() {
    let server = Server::start();
    let count = "SELECT count(*) FROM heart_rate";
    for (user, expected) in [(ADMIN, 3), (ANALYST, 3), (COACH, 2), (MEMBER, 1)] {
        let mut client = login(&server, user).await;
        let rows = single_int(&query(&mut client, count).await.unwrap());
        assert_eq!(rows, (expected * READINGS) as i64, "{}", user.0);
    }
    let mut ingest = login(&server, INGEST).await;
    let refused = query(&mut ingest, count).await.unwrap_err();
    assert_eq!(code(&refused), Code::PermissionDenied, "{refused}");

    let mut stranger = connect(&server).await;
    assert!(stranger.handshake(ADMIN.0, "wrong password").await.is_err());
    let unauthenticated = query(&mut stranger, count).await.unwrap_err();
    assert_eq!(
        code(&unauthenticated),
        Code::Unauthenticated,
        "{unauthenticated}"
    );
}

#[tokio::test]
async fn the_announced_schema_is_the_streamed_schema() {
    let server = Server::start();
    let mut client = login(&server, ANALYST).await;
    for sql in [
        "SELECT subject_id, source, time, bpm FROM heart_rate ORDER BY time LIMIT 5",
        "SELECT source, avg(bpm) AS mean, max(time) AS last FROM heart_rate GROUP BY source",
        "SELECT pseudonym, display_name FROM meta.subjects",
        "SELECT * FROM heart_rate WHERE bpm > 1000",
    ] {
        let info = client.execute(sql.into(), None).await.unwrap();
        let announced = info.clone().try_decode_schema().unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let mut stream = client.do_get(ticket).await.unwrap();
        let batches: Vec<RecordBatch> = (&mut stream).try_collect().await.unwrap();
        assert_eq!(
            stream.schema().map(|s| s.as_ref()),
            Some(&announced),
            "{sql}"
        );
        for batch in &batches {
            assert_eq!(batch.schema().as_ref(), &announced, "{sql}");
        }
        for field in announced.fields() {
            assert!(
                !matches!(field.data_type(), DataType::Utf8View | DataType::LargeUtf8),
                "{sql}: {field}"
            );
        }
    }
    let time = Schema::new(vec![Field::new(
        "time",
        DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None),
        false,
    )]);
    let info = client
        .execute("SELECT time FROM heart_rate LIMIT 1".into(), None)
        .await
        .unwrap();
    assert_eq!(info.try_decode_schema().unwrap(), time);
}

#[tokio::test]
async fn prepared_statements_bind_parameters() {
    let server = Server::start();
    let mut client = login(&server, ADMIN).await;
    for sql in [
        "SELECT count(*) FROM heart_rate WHERE bpm >= $1 AND source = $2",
        "SELECT count(*) FROM heart_rate WHERE bpm >= ? AND source = ?",
    ] {
        let mut prepared = client.prepare(sql.into(), None).await.unwrap();
        let parameters = prepared.parameter_schema().unwrap().clone();
        assert_eq!(parameters.fields().len(), 2, "{sql}: {parameters:?}");
        assert_eq!(parameters.field(0).data_type(), &DataType::Float64, "{sql}");
        let bind = |threshold: f64| {
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("$1", DataType::Float64, true),
                    Field::new("$2", DataType::Utf8, true),
                ])),
                vec![
                    Arc::new(Float64Array::from(vec![threshold])),
                    Arc::new(StringArray::from(vec!["watch"])),
                ],
            )
            .unwrap()
        };
        prepared.set_parameters(bind(80.0)).unwrap();
        let info = prepared.execute().await.unwrap();
        assert_eq!(
            single_int(&fetch(&mut client, info).await.unwrap()),
            READINGS as i64
        );
        prepared.set_parameters(bind(0.0)).unwrap();
        let info = prepared.execute().await.unwrap();
        assert_eq!(
            single_int(&fetch(&mut client, info).await.unwrap()),
            3 * READINGS as i64
        );
        prepared.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_ticket_runs_for_who_fetches_it_on_the_rows_of_then() {
    let server = Server::start();
    let count = "SELECT count(*) FROM heart_rate";
    let mut admin = login(&server, ADMIN).await;
    let mut member = login(&server, MEMBER).await;
    let info = admin.execute(count.into(), None).await.unwrap();
    // GetFlightInfo planned the statement for the administrator; a member replaying the
    // ticket gets the member's rows, not that plan.
    let fetched = fetch(&mut member, info.clone()).await.unwrap();
    assert_eq!(single_int(&fetched), READINGS as i64);
    // The plan kept for the administrator reads the rows as they are when it runs.
    let mut gateway = login(&server, INGEST).await;
    gateway
        .execute_ingest(
            ingest_command("heart_rate"),
            futures::stream::iter(vec![Ok(readings("S4", 10))]),
        )
        .await
        .unwrap();
    let all = 3 * READINGS as i64 + 10;
    assert_eq!(
        single_int(&fetch(&mut admin, info.clone()).await.unwrap()),
        all
    );
    // A ticket fetched again is planned again.
    assert_eq!(single_int(&fetch(&mut admin, info).await.unwrap()), all);
}

#[tokio::test]
async fn bi_tools_find_the_server_catalog() {
    let server = Server::start();
    let mut client = login(&server, ANALYST).await;

    let info = client.get_sql_info(vec![]).await.unwrap();
    let batches = fetch(&mut client, info).await.unwrap();
    let ids: Vec<u32> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::UInt32Type>()
                .values()
                .to_vec()
        })
        .collect();
    for required in [0u32, 1, 2, 3, 8, 504, 508, 509, 510, 511, 512, 513, 576] {
        assert!(
            ids.contains(&required),
            "sql info {required} missing from {ids:?}"
        );
    }
    let info = client
        .get_sql_info(vec![SqlInfo::FlightSqlServerName])
        .await
        .unwrap();
    assert_eq!(fetch(&mut client, info).await.unwrap()[0].num_rows(), 1);

    let info = client.get_catalogs().await.unwrap();
    let catalogs = fetch(&mut client, info).await.unwrap();
    assert_eq!(
        catalogs[0].column(0).as_string::<i32>().value(0),
        "healthai"
    );

    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas: Vec<String> = fetch(&mut client, info)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(schemas, ["health", "meta", "reference", "system"]);

    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("health".into()),
            table_name_filter_pattern: Some("heart%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let tables = fetch(&mut client, info).await.unwrap();
    assert_eq!(tables[0].num_rows(), 1);
    assert_eq!(
        tables[0].column(2).as_string::<i32>().value(0),
        "heart_rate"
    );
    let encoded = tables[0].column(4).as_binary::<i32>().value(0);
    let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(encoded).unwrap();
    let columns: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(columns, ["subject_id", "source", "time", "bpm"]);

    let info = client.get_table_types().await.unwrap();
    assert_eq!(fetch(&mut client, info).await.unwrap()[0].num_rows(), 2);
    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    assert!(fetch(&mut client, info).await.unwrap()[0].num_rows() >= 5);
    let info = client
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: None,
            table: "heart_rate".into(),
        })
        .await
        .unwrap();
    let announced = info.clone().try_decode_schema().unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut keys = client.do_get(ticket).await.unwrap();
    let batches: Vec<RecordBatch> = (&mut keys).try_collect().await.unwrap();
    assert!(batches.iter().all(|b| b.num_rows() == 0));
    assert_eq!(keys.schema().map(|s| s.as_ref()), Some(&announced));
    assert_eq!(announced.field(3).name(), "column_name");
}

#[tokio::test]
async fn changes_by_sql_are_refused_clearly() {
    let server = Server::start();
    let mut analyst = login(&server, ANALYST).await;
    let err = analyst
        .execute_update("DELETE FROM heart_rate".into(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::PermissionDenied, "{err}");
    assert!(
        err.to_string()
            .contains("DDL and DML are not allowed for analyst@example.org"),
        "{err}"
    );
    let mut admin = login(&server, ADMIN).await;
    let err = admin
        .execute_update("CREATE TABLE x (a INT)".into(), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::Unimplemented, "{err}");
    for statement in [
        "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT * FROM heart_rate) TO '/tmp/leak.csv'",
        "INSERT INTO heart_rate VALUES (1, 'x', now(), 60)",
    ] {
        let err = query(&mut admin, statement).await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{statement}: {err}");
    }
    let err = query(&mut admin, "SELECT * FROM read_parquet('/etc/passwd')")
        .await
        .unwrap_err();
    assert!(
        matches!(code(&err), Code::InvalidArgument | Code::NotFound),
        "{err}"
    );
}

fn readings(subject: &str, count: usize) -> RecordBatch {
    let start = 1_772_409_600_000_000_000i64; // 2026-03-02T00:00:00Z
    RecordBatch::try_from_iter(vec![
        (
            "subject",
            Arc::new(StringArray::from(vec![subject; count])) as _,
        ),
        (
            "source",
            Arc::new(StringArray::from(vec!["gateway"; count])) as _,
        ),
        (
            "time",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                (0..count as i64).map(|i| start + i * 1_000_000_000),
            )) as _,
        ),
        (
            "bpm",
            Arc::new(Float64Array::from_iter_values(
                (0..count).map(|i| 60.0 + (i % 50) as f64),
            )) as _,
        ),
    ])
    .unwrap()
}

fn ingest_command(table: &str) -> CommandStatementIngest {
    CommandStatementIngest {
        table_definition_options: None,
        table: table.into(),
        schema: None,
        catalog: None,
        temporary: false,
        transaction_id: None,
        options: Default::default(),
    }
}

#[tokio::test]
async fn bulk_ingest_writes_streams() {
    let server = Server::start();
    let mut gateway = login(&server, INGEST).await;
    // Above tonic's 4 MiB default in one message: 200 000 rows.
    let big = readings("S4", 200_000);
    assert!(big.get_array_memory_size() > 4 << 20);
    let written = gateway
        .execute_ingest(
            ingest_command("heart_rate"),
            futures::stream::iter(vec![Ok(big), Ok(readings("S1", 10))]),
        )
        .await
        .unwrap();
    assert_eq!(written, 200_010);
    let mut admin = login(&server, ADMIN).await;
    let stored = query(&mut admin, "SELECT count(*) FROM heart_rate h JOIN meta.subjects s USING (subject_id) WHERE s.pseudonym = 'S4'").await.unwrap();
    assert_eq!(single_int(&stored), 200_000);

    let mut analyst = login(&server, ANALYST).await;
    let err = analyst
        .execute_ingest(
            ingest_command("heart_rate"),
            futures::stream::iter(vec![Ok(readings("S1", 1))]),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::PermissionDenied, "{err}");
    let err = gateway
        .execute_ingest(
            ingest_command("no_such_stream"),
            futures::stream::iter(vec![Ok(readings("S1", 1))]),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::NotFound, "{err}");
}

#[tokio::test]
async fn large_results_stream_in_small_messages() {
    let server = Server::start();
    let mut admin = login(&server, ADMIN).await;
    // About 1 M rows of two strings and two numbers: far more than one 16 MiB message, and the
    // client refuses any message over 16 MiB.
    let batches = query(
        &mut admin,
        "SELECT a.source, b.source AS other, a.bpm, b.bpm AS other_bpm \
         FROM heart_rate a CROSS JOIN heart_rate b CROSS JOIN (SELECT 1 FROM heart_rate LIMIT 8) c",
    )
    .await
    .unwrap();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, (3 * READINGS).pow(2) * 8);
}

#[tokio::test]
async fn influxdb_clients_query_with_json_tickets() {
    let server = Server::start();
    let client = login(&server, ANALYST).await;
    let token = client.token().unwrap().clone();
    let channel = channel(&server).await;
    let mut flight = FlightServiceClient::new(channel);
    let ticket = serde_json::json!({
        "database": "default",
        "sql_query": "SELECT count(*) AS n FROM heart_rate",
        "query_type": "sql",
    });
    let mut request = tonic::Request::new(Ticket::new(ticket.to_string()));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let stream = flight
        .do_get(request)
        .await
        .unwrap()
        .into_inner()
        .map_err(arrow_flight::error::FlightError::from);
    let batches: Vec<RecordBatch> =
        arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream)
            .try_collect()
            .await
            .unwrap();
    assert_eq!(single_int(&batches), 3 * READINGS as i64);

    let wrong = serde_json::json!({"database": "acme", "sql_query": "SELECT 1"});
    let mut request = tonic::Request::new(Ticket::new(wrong.to_string()));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let status = flight.do_get(request).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
}

#[tokio::test]
async fn a_runaway_query_stops_and_the_server_keeps_serving() {
    let server = Server::start();
    let mut analyst = login(&server, ANALYST).await;
    let err = query(
        &mut analyst,
        "SELECT array_agg(a.bpm) FROM heart_rate a, heart_rate b, heart_rate c",
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), Code::ResourceExhausted, "{err}");
    let mut member = login(&server, MEMBER).await;
    assert_eq!(
        single_int(
            &query(&mut member, "SELECT count(*) FROM heart_rate")
                .await
                .unwrap()
        ),
        READINGS as i64
    );
    // The audit writer appends in batches: give it a moment.
    let mut audit = String::new();
    for _ in 0..50 {
        audit = server.healthai(&[
            "query",
            "SELECT actor, outcome FROM system.audit_log WHERE statement LIKE '%array_agg%'",
            "--format",
            "csv",
        ]);
        if audit.contains("analyst@example.org,error") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(audit.contains("analyst@example.org,error"), "{audit}");
}

#[tokio::test]
async fn a_dropped_stream_cancels_its_query() {
    let server = Server::start();
    let mut analyst = login(&server, ANALYST).await;
    let sql = "SELECT a.bpm, b.bpm AS other FROM heart_rate a CROSS JOIN heart_rate b CROSS JOIN heart_rate c";
    let info = analyst.execute(sql.into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut rows = analyst.do_get(ticket).await.unwrap();
    let first = rows.try_next().await.unwrap().expect("a first batch");
    assert!(first.num_rows() > 0);
    drop(rows);
    // 46 million rows were asked for; the audit entry shows the server stopped far short.
    let mut audit = String::new();
    for _ in 0..100 {
        audit = server.healthai(&[
            "query",
            "SELECT outcome, detail FROM system.audit_log WHERE statement LIKE '%CROSS JOIN heart_rate c'",
            "--format",
            "csv",
        ]);
        if audit.contains("cancelled by the client") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        audit.contains("error,cancelled by the client after"),
        "{audit}"
    );
    let returned: u64 = audit
        .split("cancelled by the client after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count in {audit}"));
    assert!(
        returned < 10_000_000,
        "{returned} rows were produced for a dropped stream"
    );
}
