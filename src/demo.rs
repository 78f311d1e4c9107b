//! `healthai demo`: the whole product on one machine, with no configuration. A month of
//! realistic data for 100 subjects is simulated (with the defects of real data, so cleaning
//! has work to show), ingested with progress bars, given cohorts and goals, and served over
//! Flight SQL, gRPC and HTTP, with a login to try it. A second run finds the data in place and
//! only serves it.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    io::Write,
    net::SocketAddr,
};

use catalog::{
    Catalog, Comparator, GoalPeriod, GroupKind, NewGoal, NewGroup, NewUser, OrgId, Role,
};
use chrono::{Duration, Utc};
use clap::Args;
use engine::{Engine, Principal};
use flight::Authenticator;
use ingest::simulate::{SimulationFormat, SimulationOptions, simulate};

use crate::{CliError, ingest_files, serve};

/// The demo's administrator, who logs in to the dashboard and the clients.
const DEMO_EMAIL: &str = "demo@healthai.local";

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Subjects to simulate
    #[arg(long, default_value_t = 100)]
    subjects: usize,
    /// Days to simulate, ending yesterday
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// The demo administrator's password; by default a new one is made and printed
    #[arg(long, env = "HEALTHAI_DEMO_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[command(flatten)]
    serve: serve::ServeArgs,
}

pub(crate) async fn demo(
    engine: Engine,
    args: DemoArgs,
    org_name: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let org = engine.organization(org_name).await?;
    let catalog = engine.catalog().clone();
    // A password the login would refuse is said before the long load, not after.
    let password = args.password.clone().unwrap_or_else(new_password);
    let hash = Authenticator::hash_password(&password)?;
    if catalog.subjects().list(org.id).await?.is_empty() {
        load(&engine, &org, &args, out).await?;
    } else {
        writeln!(
            out,
            "the organization '{org_name}' already has data: serving it as it is"
        )?;
    }
    set_up_login(catalog.as_ref(), org.id, hash).await?;
    let org_name = org_name.to_owned();
    let welcome = move |grpc: SocketAddr, http: Option<SocketAddr>| {
        let dashboard = match http {
            Some(http) => format!("dashboard:  http://{http}/"),
            None => "dashboard:  off (--http-addr none)".to_owned(),
        };
        format!(
            "\n{dashboard}\nlogin:      organization {org_name}, email {DEMO_EMAIL}, password {password}\n\
             Flight SQL: grpc://{grpc} (user {org_name}/{DEMO_EMAIL})\n\n\
             Python (pip install adbc-driver-flightsql pyarrow pandas):\n{}\n",
            adbc_snippet(&grpc.to_string(), &org_name, &password)
        )
    };
    serve::serve(engine, args.serve, Some(&welcome), out).await
}

/// Simulates the dataset, ingests it as one batch, and adds cohorts and goals.
async fn load(
    engine: &Engine,
    org: &catalog::Organization,
    args: &DemoArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let dir = std::env::temp_dir().join(format!("healthai-demo-{}", std::process::id()));
    let options = SimulationOptions {
        subjects: args.subjects,
        first_subject: 0,
        days: args.days,
        seed: 42,
        start: (Utc::now() - Duration::days(i64::from(args.days))).date_naive(),
        defects: true,
        format: SimulationFormat::Csv,
    };
    writeln!(
        out,
        "simulating {} subjects × {} days (with the defects of real data) into {}",
        args.subjects,
        args.days,
        dir.display()
    )?;
    simulate(&options, &dir).map_err(|e| CliError::Failed(e.to_string()))?;
    let principal = Principal::operator(org.clone());
    let ingested = ingest_files::ingest(
        engine,
        &principal,
        &ingest_files::IngestArgs::of(vec![dir.clone()]),
        out,
    )
    .await;
    // The files were only a means to show ingest; the rows are in the store now.
    let _ = std::fs::remove_dir_all(&dir);
    ingested?;
    // The month is done with: compacting it now writes the rollups the dashboard reads,
    // instead of waiting for the background maintenance to find the days settled.
    let started = std::time::Instant::now();
    let compacted = engine.compact(1).await?;
    writeln!(
        out,
        "compacted {} partitions into {} files with their rollups in {:.1} s",
        compacted.partitions,
        compacted.files_out,
        started.elapsed().as_secs_f64()
    )?;
    cohorts_and_goals(engine.catalog().as_ref(), org.id, options.start).await?;
    Ok(())
}

/// Two cohorts (odd and even subjects) and everyday goals for everyone, so that the
/// dashboard's filters and goal progress have something to show.
async fn cohorts_and_goals(
    catalog: &dyn Catalog,
    org: OrgId,
    start: chrono::NaiveDate,
) -> Result<(), CliError> {
    let subjects = catalog.subjects().list(org).await?;
    let mut cohorts = Vec::new();
    for name in ["cohort-a", "cohort-b"] {
        cohorts.push(
            catalog
                .subjects()
                .create_group(NewGroup {
                    org,
                    name: name.to_owned(),
                    kind: GroupKind::Cohort,
                    description: "demo cohort".to_owned(),
                })
                .await?
                .id,
        );
    }
    for (i, subject) in subjects.iter().enumerate() {
        catalog
            .subjects()
            .add_member(cohorts[i % 2], subject.id)
            .await?;
        for (metric, target, comparator) in [
            ("steps", 8_000.0, Comparator::AtLeast),
            ("sleep_hours", 7.0, Comparator::AtLeast),
            ("workouts", 3.0, Comparator::AtLeast),
        ] {
            let period = if metric == "workouts" {
                GoalPeriod::Week
            } else {
                GoalPeriod::Day
            };
            catalog
                .goals()
                .create(NewGoal {
                    org,
                    subject: subject.id,
                    metric: metric.to_owned(),
                    target,
                    comparator,
                    period,
                    starts_on: start,
                    ends_on: None,
                })
                .await?;
        }
    }
    Ok(())
}

/// Makes the demo administrator, or gives the existing one this password.
async fn set_up_login(
    catalog: &dyn Catalog,
    org: OrgId,
    hash: catalog::PasswordHash,
) -> Result<(), CliError> {
    match catalog.users().get_by_email(org, DEMO_EMAIL).await {
        Ok(user) => catalog.users().set_password_hash(user.id, hash).await?,
        Err(catalog::Error::NotFound { .. }) => {
            catalog
                .users()
                .create(NewUser {
                    org,
                    email: DEMO_EMAIL.to_owned(),
                    display_name: Some("Demo administrator".to_owned()),
                    password_hash: Some(hash),
                    roles: vec![Role::Admin],
                    subject: None,
                    coach_of: Vec::new(),
                })
                .await?;
        }
        Err(other) => return Err(other.into()),
    }
    Ok(())
}

/// Sixteen characters from the process's random hasher keys, which the standard library
/// draws from the operating system: enough for a demo bound to the loopback interface.
fn new_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bits = 0u128;
    for _ in 0..2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(0);
        bits = (bits << 64) | u128::from(hasher.finish());
    }
    (0..16)
        .map(|_| {
            let index = (bits % ALPHABET.len() as u128) as usize;
            bits /= ALPHABET.len() as u128;
            char::from(ALPHABET[index])
        })
        .collect()
}

fn adbc_snippet(grpc: &str, org: &str, password: &str) -> String {
    format!(
        r#"    import adbc_driver_flightsql.dbapi as flightsql
    conn = flightsql.connect("grpc://{grpc}", db_kwargs={{
        "username": "{org}/{DEMO_EMAIL}", "password": "{password}"}})
    cur = conn.cursor()
    cur.execute("SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS hour, avg(bpm) "
                "FROM heart_rate GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 10")
    print(cur.fetch_df())"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_sixteen_unambiguous_characters_and_differ() {
        let (a, b) = (new_password(), new_password());
        assert_eq!(a.chars().count(), 16);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"l1O0Io".contains(c))
        );
        assert_ne!(a, b);
    }
}
