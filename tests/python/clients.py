"""Third-party Flight SQL clients from PyPI against a running `healthai serve`.

Run by tests/python_clients.rs, which starts the server with the users below and three subjects
(S1, S2, S3) of 120 heart-rate readings each. Usage: clients.py HOST:PORT. Prints one
"ok <check>" line per check; any failed check raises, so the exit status is not zero.
"""

import datetime
import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import pandas
import polars
import pyarrow
import pyarrow.flight as flight
from flightsql import FlightSQLClient
from flightsql import connect as flightsql_connect

ADDRESS = sys.argv[1]
URI = f"grpc://{ADDRESS}"
ADMIN = ("admin@example.org", "admin-password")
ANALYST = ("analyst@example.org", "analyst-password")
MEMBER = ("ana@example.org", "member-password")
INGEST = ("gateway@example.org", "ingest-password")
READINGS = 120


def ok(check):
    print(f"ok {check}", flush=True)


def adbc(user):
    username, password = user
    # Every statement commits on its own: the server has no transactions to offer.
    return flight_sql.connect(URI, db_kwargs={"username": username, "password": password}, autocommit=True)


def scalar(connection, sql, parameters=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetchone()[0]


def adbc_checks():
    with adbc(ANALYST) as connection:
        info = connection.adbc_get_info()
        assert info["vendor_name"] == "HealthAI", info
        assert info["vendor_version"], info
        ok("adbc get_info")

        objects = connection.adbc_get_objects(depth="all", catalog_filter="healthai").read_all().to_pylist()
        schemas = {s["db_schema_name"]: s for c in objects for s in c["catalog_db_schemas"]}
        assert {"health", "meta", "reference", "system"} <= set(schemas), schemas.keys()
        tables = {t["table_name"]: t for t in schemas["health"]["db_schema_tables"]}
        columns = [c["column_name"] for c in tables["heart_rate"]["table_columns"]]
        assert columns == ["subject_id", "source", "time", "bpm"], columns
        ok("adbc get_objects")

        schema = connection.adbc_get_table_schema("heart_rate", db_schema_filter="health")
        assert schema.names == ["subject_id", "source", "time", "bpm"], schema
        # Times are UTC instants, stored without a zone name.
        assert schema.field("time").type == pyarrow.timestamp("ns"), schema
        assert set(connection.adbc_get_table_types()) == {"TABLE", "VIEW"}
        ok("adbc get_table_schema and get_table_types")

        count = "SELECT count(*) FROM heart_rate WHERE bpm >= ? AND source = ?"
        assert scalar(connection, count, (80.0, "watch")) == READINGS
        assert scalar(connection, count, (0.0, "watch")) == 3 * READINGS
        assert scalar(connection, count, (0.0, "elsewhere")) == 0
        ok("adbc execute with parameters")

        with connection.cursor() as cursor:
            cursor.execute("SELECT subject_id, time, bpm FROM heart_rate ORDER BY subject_id, time")
            frame = cursor.fetch_df()
        assert isinstance(frame, pandas.DataFrame) and len(frame) == 3 * READINGS, frame
        assert frame["bpm"].between(60, 89).all(), frame["bpm"].describe()
        ok("adbc pandas read")

        hourly = polars.read_database(
            "SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS hour, avg(bpm) AS mean_bpm "
            "FROM heart_rate GROUP BY 1, 2 ORDER BY 1, 2",
            connection=connection,
        )
        assert isinstance(hourly, polars.DataFrame) and hourly.height == 6, hourly
        assert hourly["mean_bpm"].to_list() == [64.5, 64.5, 74.5, 74.5, 84.5, 84.5], hourly
        ok("adbc polars read")

        try:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM heart_rate")
                cursor.fetchall()
            raise AssertionError("an analyst deleted rows")
        except flight_sql.Error as refused:
            assert "not allowed" in str(refused) or "not supported" in str(refused), refused
        assert scalar(connection, "SELECT count(*) FROM heart_rate") == 3 * READINGS
        ok("adbc refuses DML")

    with adbc(MEMBER) as connection:
        assert scalar(connection, "SELECT count(DISTINCT subject_id) FROM heart_rate") == 1
        assert scalar(connection, "SELECT count(*) FROM heart_rate") == READINGS
        ok("adbc member sees only their subject")

    start = datetime.datetime(2026, 3, 5, tzinfo=datetime.timezone.utc)
    rows = 50_000
    table = pyarrow.table(
        {
            "subject": ["S7"] * rows,
            "source": ["adbc"] * rows,
            "time": pyarrow.array([start + datetime.timedelta(seconds=i) for i in range(rows)], pyarrow.timestamp("ns", tz="UTC")),
            "bpm": pyarrow.array([50.0 + i % 100 for i in range(rows)]),
        }
    )
    with adbc(INGEST) as connection:
        with connection.cursor() as cursor:
            written = cursor.adbc_ingest("heart_rate", table, mode="append")
    assert written in (rows, -1), written
    with adbc(ADMIN) as connection:
        stored = scalar(connection, "SELECT count(*) FROM heart_rate WHERE source = 'adbc'")
        assert stored == rows, stored
    ok("adbc_ingest bulk load")


def pyarrow_checks():
    client = flight.FlightClient(URI)
    try:
        client.authenticate_basic_token(ANALYST[0], "wrong")
        raise AssertionError("a wrong password was accepted")
    except flight.FlightUnauthenticatedError:
        pass
    header = client.authenticate_basic_token(*ANALYST)
    assert header[0] == b"authorization" and header[1].startswith(b"Bearer "), header
    options = flight.FlightCallOptions(headers=[header])
    ticket = {"database": "default", "sql_query": "SELECT source, count(*) AS n FROM heart_rate WHERE source = 'watch' GROUP BY source", "query_type": "sql"}
    table = client.do_get(flight.Ticket(json.dumps(ticket).encode()), options).read_all()
    assert table.to_pylist() == [{"source": "watch", "n": 3 * READINGS}], table
    ok("pyarrow.flight handshake and JSON ticket")
    client.close()


def flightsql_dbapi_checks():
    host, port = ADDRESS.rsplit(":", 1)
    client = FlightSQLClient(host=host, port=int(port), user=ANALYST[0], password=ANALYST[1], insecure=True)
    info = client.execute("SELECT max(bpm) AS top FROM heart_rate WHERE source = 'watch'")
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert table.column("top").to_pylist() == [89.0], table
    tables = client.do_get(client.get_tables(include_schema=True).endpoints[0].ticket).read_all().to_pylist()
    assert any(t["table_name"] == "heart_rate" and t["db_schema_name"] == "health" for t in tables), tables
    ok("flightsql-dbapi client")

    cursor = flightsql_connect(client).cursor()
    cursor.execute("SELECT count(*) FROM heart_rate WHERE bpm >= ? AND source = 'watch'", [85.0])
    # Only S3 reads 85 to 89: five minutes in every ten, for two hours.
    assert cursor.fetchone()[0] == 60
    ok("flightsql-dbapi DB-API with a parameter")
    client.close()


if __name__ == "__main__":
    adbc_checks()
    pyarrow_checks()
    flightsql_dbapi_checks()
