//! The Python clients a data team uses, from PyPI, against `healthai serve`: the ADBC Flight SQL
//! driver (with pandas and polars), `pyarrow.flight` and `flightsql-dbapi`. The checks are in
//! `tests/python/clients.py`; `scripts/test` prepares the Python environment.

mod server;

use std::{path::PathBuf, process::Command};

use server::Server;

/// The interpreter with the client packages: `HEALTHAI_TEST_PYTHON`, else the environment
/// `scripts/test` creates.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("HEALTHAI_TEST_PYTHON") {
        return python.into();
    }
    let prepared = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/healthai-venv/bin/python");
    assert!(
        prepared.exists(),
        "no Python environment with the Flight SQL clients: run scripts/test, or set HEALTHAI_TEST_PYTHON to a \
         python that has the packages of tests/python/requirements.txt"
    );
    prepared
}

#[test]
fn python_clients_query_and_ingest() {
    let server = Server::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/clients.py");
    let output = Command::new(python())
        .arg(script)
        .arg(format!("127.0.0.1:{}", server.port))
        .output()
        .expect("run the Python clients");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python clients failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let checks: Vec<_> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .collect();
    assert_eq!(
        checks,
        [
            "adbc get_info",
            "adbc get_objects",
            "adbc get_table_schema and get_table_types",
            "adbc execute with parameters",
            "adbc pandas read",
            "adbc polars read",
            "adbc refuses DML",
            "adbc member sees only their subject",
            "adbc_ingest bulk load",
            "pyarrow.flight handshake and JSON ticket",
            "flightsql-dbapi client",
            "flightsql-dbapi DB-API with a parameter",
        ]
    );
}
