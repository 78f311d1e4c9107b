//! What the catalog stores, as the rest of HealthAI sees it.

use std::{fmt, str::FromStr};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Error;

/// The connections a catalog holds, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open connections not in use.
    pub available: usize,
    /// Callers waiting for a connection, where the backend counts them.
    pub waiting: Option<usize>,
}

/// The organization every command acts on unless told otherwise; created by migration.
pub const DEFAULT_ORG: &str = "default";

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

ids! {
    OrgId,
    UserId,
    /// The `subject_id` of every stream row: a catalog id, not a personal identifier.
    SubjectId,
    GroupId,
    GoalId,
    StreamId,
    PartitionId,
    ParquetFileId,
    BatchId,
    ConnectorId,
    AuditId,
    ErasureId,
    RefreshTokenId,
}

/// A closed vocabulary stored as text: the database checks the same list.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        // Serialized as the same text the catalog stores.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(Error::invalid(
                        stringify!($name),
                        format!("'{s}' is not one of: {}", [$($text),*].join(", ")),
                    )),
                }
            }
        }
    };
}

vocabulary! {
    /// What a user may do; see [`Permission`] for what each role grants.
    Role {
        Admin = "admin",
        Analyst = "analyst",
        Coach = "coach",
        Member = "member",
        Ingest = "ingest",
        Service = "service",
    }
}

vocabulary! {
    Permission {
        ReadAllSubjects = "read_all_subjects",
        ReadGroupSubjects = "read_group_subjects",
        ReadOwnSubject = "read_own_subject",
        ReadIdentifiers = "read_identifiers",
        WriteData = "write_data",
        WriteOwnSubject = "write_own_subject",
        ManageUsers = "manage_users",
        ManageCatalog = "manage_catalog",
        EraseSubjects = "erase_subjects",
        ReadAudit = "read_audit",
    }
}

vocabulary! { Sex { Female = "female", Male = "male", Other = "other", Unknown = "unknown" } }
vocabulary! { GroupKind { Cohort = "cohort", Coaching = "coaching", Challenge = "challenge" } }
vocabulary! { Comparator { AtLeast = "at_least", AtMost = "at_most" } }
vocabulary! { GoalPeriod { Day = "day", Week = "week", Month = "month", Total = "total" } }
vocabulary! { StreamKind { Point = "point", Interval = "interval" } }
vocabulary! {
    /// The Arrow type of a stream column; `TimestampNs` is Timestamp(ns) without timezone, UTC.
    ColumnType {
        Boolean = "Boolean",
        Int64 = "Int64",
        Float64 = "Float64",
        Utf8 = "Utf8",
        TimestampNs = "Timestamp(ns)",
    }
}
vocabulary! {
    /// `key` columns form the series key with `time`; rows with equal key and time are upserts.
    ColumnRole { Key = "key", Time = "time", EndTime = "end_time", Value = "value" }
}
vocabulary! { BatchStatus { Running = "running", Committed = "committed", Failed = "failed" } }
vocabulary! { ConnectorStatus { Idle = "idle", Running = "running", Ok = "ok", Failed = "failed" } }
vocabulary! { AuditOutcome { Ok = "ok", Denied = "denied", Error = "error" } }
vocabulary! { ErasureStatus { Pending = "pending", Completed = "completed", Failed = "failed" } }

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// An argon2 PHC string. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub org: OrgId,
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: Option<PasswordHash>,
    pub roles: Vec<Role>,
    /// Required with the member role: the subject the member reads.
    pub subject: Option<SubjectId>,
    /// Groups a coach coaches.
    pub coach_of: Vec<GroupId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub org: OrgId,
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: Option<PasswordHash>,
    pub roles: Vec<Role>,
    pub subject: Option<SubjectId>,
    pub coach_of: Vec<GroupId>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// The SHA-256 of an opaque refresh token: what the catalog stores instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub id: RefreshTokenId,
    pub user: UserId,
    /// Shared by every token of one login, through its rotations.
    pub family: Uuid,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub replaced_by: Option<RefreshTokenId>,
}

/// The descriptive attributes of a subject. `display_name` and `email` are personal
/// identifiers: they stay in the catalog and are cleared on erasure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectProfile {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub sex: Option<Sex>,
    pub birth_year: Option<i64>,
    pub height_cm: Option<f64>,
    pub max_hr: Option<i64>,
    /// IANA time zone of the subject's home, for local-day bucketing and naive timestamps.
    pub timezone: String,
}

impl Default for SubjectProfile {
    fn default() -> Self {
        SubjectProfile {
            display_name: None,
            email: None,
            sex: None,
            birth_year: None,
            height_cm: None,
            max_hr: None,
            timezone: "UTC".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    pub id: SubjectId,
    pub org: OrgId,
    /// The organization's stable pseudonymous id for the subject ("S0042").
    pub pseudonym: String,
    pub profile: SubjectProfile,
    pub created_at: DateTime<Utc>,
    /// Set when erasure was requested: the subject is hidden from queries from then on.
    pub erased_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    pub org: OrgId,
    pub name: String,
    pub kind: GroupKind,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub id: GroupId,
    pub org: OrgId,
    pub name: String,
    pub kind: GroupKind,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewGoal {
    pub org: OrgId,
    pub subject: SubjectId,
    /// What is measured, e.g. `steps`, `sleep_minutes`, `weight_kg`.
    pub metric: String,
    pub target: f64,
    pub comparator: Comparator,
    pub period: GoalPeriod,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    pub id: GoalId,
    pub org: OrgId,
    pub subject: SubjectId,
    pub metric: String,
    pub target: f64,
    pub comparator: Comparator,
    pub period: GoalPeriod,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamColumn {
    pub name: String,
    pub arrow_type: ColumnType,
    /// UCUM unit of the canonical values.
    pub unit: Option<String>,
    pub role: ColumnRole,
    pub nullable: bool,
    pub plausible_min: Option<f64>,
    pub plausible_max: Option<f64>,
    /// For categorical columns, the accepted values.
    pub allowed_values: Option<Vec<String>>,
    pub description: String,
}

impl StreamColumn {
    /// A nullable value column with no unit, range or vocabulary.
    pub fn value(name: &str, arrow_type: ColumnType) -> Self {
        StreamColumn {
            name: name.into(),
            arrow_type,
            unit: None,
            role: ColumnRole::Value,
            nullable: true,
            plausible_min: None,
            plausible_max: None,
            allowed_values: None,
            description: String::new(),
        }
    }

    fn key(name: &str, arrow_type: ColumnType, description: &str) -> Self {
        StreamColumn {
            role: ColumnRole::Key,
            nullable: false,
            description: description.into(),
            ..StreamColumn::value(name, arrow_type)
        }
    }

    fn time(name: &str, role: ColumnRole, description: &str) -> Self {
        StreamColumn {
            role,
            nullable: false,
            description: description.into(),
            ..StreamColumn::value(name, ColumnType::TimestampNs)
        }
    }
}

/// A custom stream to register. Build it with [`NewStream::new`], which puts the series key
/// and time columns every stream has in front of the given columns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStream {
    pub name: String,
    pub kind: StreamKind,
    pub description: String,
    pub retention_days: Option<i64>,
    pub max_duration_seconds: Option<i64>,
    pub columns: Vec<StreamColumn>,
}

impl NewStream {
    /// ```
    /// use catalog::{ColumnType, NewStream, StreamColumn, StreamKind};
    /// let stream = NewStream::new(
    ///     "skin_temperature",
    ///     StreamKind::Point,
    ///     vec![StreamColumn { unit: Some("Cel".into()), ..StreamColumn::value("celsius", ColumnType::Float64) }],
    /// );
    /// let names: Vec<_> = stream.columns.iter().map(|c| c.name.as_str()).collect();
    /// assert_eq!(names, ["subject_id", "source", "time", "celsius"]);
    /// ```
    pub fn new(name: &str, kind: StreamKind, extra_columns: Vec<StreamColumn>) -> Self {
        let mut columns = vec![
            StreamColumn::key(
                "subject_id",
                ColumnType::Int64,
                "Pseudonymous subject id (meta.subjects.id)",
            ),
            StreamColumn::key(
                "source",
                ColumnType::Utf8,
                "Device or application that produced the row",
            ),
            StreamColumn::time(
                "time",
                ColumnRole::Time,
                "Instant of the reading, or start of the interval (UTC)",
            ),
        ];
        if kind == StreamKind::Interval {
            columns.push(StreamColumn::time(
                "end_time",
                ColumnRole::EndTime,
                "End of the interval (UTC)",
            ));
        }
        columns.extend(extra_columns);
        NewStream {
            name: name.into(),
            kind,
            description: String::new(),
            retention_days: None,
            max_duration_seconds: None,
            columns,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stream {
    pub id: StreamId,
    pub org: OrgId,
    pub name: String,
    pub kind: StreamKind,
    /// One of the standard health streams every organization has.
    pub standard: bool,
    pub description: String,
    pub schema_version: i64,
    pub retention_days: Option<i64>,
    pub max_duration_seconds: Option<i64>,
    /// In position order.
    pub columns: Vec<StreamColumn>,
    pub created_at: DateTime<Utc>,
}

impl Stream {
    pub fn column(&self, name: &str) -> Option<&StreamColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A stream's data for one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Partition {
    pub id: PartitionId,
    pub stream: StreamId,
    pub day: NaiveDate,
    /// The write order given to the partition's newest file.
    pub last_sequence: i64,
    pub live_files: i64,
    pub live_rows: i64,
    pub live_bytes: i64,
    pub created_at: DateTime<Utc>,
}

/// A file written to the object store, about to be registered. Times are nanoseconds since
/// the Unix epoch (UTC) and all lie in `day`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewParquetFile {
    pub stream: StreamId,
    pub day: NaiveDate,
    pub object_store_id: Uuid,
    pub path: String,
    pub min_time: i64,
    pub max_time: i64,
    pub min_subject: SubjectId,
    pub max_subject: SubjectId,
    pub row_count: i64,
    pub size_bytes: i64,
    pub compaction_level: i64,
    pub ingest_batch: Option<BatchId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParquetFile {
    pub id: ParquetFileId,
    pub partition: PartitionId,
    pub stream: StreamId,
    pub day: NaiveDate,
    pub object_store_id: Uuid,
    pub path: String,
    /// Where rows share a series key and time, the file with the greater sequence wins.
    pub sequence: i64,
    pub min_time: i64,
    pub max_time: i64,
    pub min_subject: SubjectId,
    pub max_subject: SubjectId,
    pub row_count: i64,
    pub size_bytes: i64,
    pub compaction_level: i64,
    pub ingest_batch: Option<BatchId>,
    pub created_at: DateTime<Utc>,
    pub to_delete_at: Option<DateTime<Utc>>,
}

/// Which live files a query needs: those that may hold rows in `[start, end)` (nanoseconds,
/// UTC) for subjects in `subjects` (inclusive). `None` means unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FileFilter {
    pub time: Option<(i64, i64)>,
    pub subjects: Option<(SubjectId, SubjectId)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewBatch {
    pub org: OrgId,
    /// Where the rows come from: a file path, `http`, `flight`, a connector name.
    pub source: String,
    pub format: String,
    pub bytes: i64,
    pub created_by: Option<UserId>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    pub rows_in: i64,
    pub rows_accepted: i64,
    pub rows_rejected: i64,
    pub rows_corrected: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestBatch {
    pub id: BatchId,
    pub org: OrgId,
    pub source: String,
    pub format: String,
    pub status: BatchStatus,
    pub counts: BatchCounts,
    pub bytes: i64,
    pub error: Option<String>,
    pub created_by: Option<UserId>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The counts of one cleaning rule on one column of one stream, in one batch. `column` is
/// `*` for rules about whole rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    pub stream: StreamId,
    pub column: String,
    pub rule: String,
    pub rows_checked: i64,
    pub rows_corrected: i64,
    pub rows_rejected: i64,
    pub rows_flagged: i64,
    /// Share of non-missing values in the column, where the rule measures it.
    pub completeness: Option<f64>,
}

/// The rows an ingest batch accepted for one subject of one stream: how many, and the first
/// and last instant among them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectCoverage {
    pub stream: StreamId,
    pub subject: SubjectId,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub rows: i64,
}

/// A row an ingest batch rejected: where it came from, which rule refused it and why. The
/// catalog keeps `value` to its first 200 characters and `reason` to its first 1000.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantinedRow {
    pub batch: BatchId,
    /// `None` when the row was refused before its stream was known.
    pub stream: Option<StreamId>,
    /// The file or source as the user gave it, e.g.
    /// `export.zip!apple_health_export/export.xml`.
    pub file: String,
    /// Line or record number in the source, 1-based.
    pub record: Option<i64>,
    pub column: Option<String>,
    /// The check that refused the row: `range`, `type`, `time`, `required`, `vocabulary`,
    /// `interval`, `subject`, `parse`, …
    pub rule: String,
    /// The message, for a person.
    pub reason: String,
    /// The offending value, as text.
    pub value: Option<String>,
}

/// A food of the `foods` reference table: what 100 g of it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Food {
    /// Unique in the organization; open databases' ids carry their prefix (`off:`, `fdc:`,
    /// `ciqual:`).
    pub id: String,
    /// Where it comes from: `open_food_facts`, `usda_fdc`, `ciqual`, or a file's name.
    pub source: String,
    pub name: String,
    pub brand: Option<String>,
    pub per_100g: Nutrients,
}

/// Nutrients of a quantity of food; `None` where the source does not say (never zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Nutrients {
    pub energy_kcal: Option<f64>,
    pub protein_g: Option<f64>,
    pub carbs_g: Option<f64>,
    pub fat_g: Option<f64>,
    pub fiber_g: Option<f64>,
    pub sugars_g: Option<f64>,
    pub sodium_mg: Option<f64>,
}

impl Nutrients {
    /// The names of the nutrients, as the `foods` table and the `meals` stream call them.
    pub const COLUMNS: [&'static str; 7] = [
        "energy_kcal",
        "protein_g",
        "carbs_g",
        "fat_g",
        "fiber_g",
        "sugars_g",
        "sodium_mg",
    ];

    /// The values, in the order of [`Nutrients::COLUMNS`].
    pub fn values(&self) -> [Option<f64>; 7] {
        [
            self.energy_kcal,
            self.protein_g,
            self.carbs_g,
            self.fat_g,
            self.fiber_g,
            self.sugars_g,
            self.sodium_mg,
        ]
    }

    /// From values in the order of [`Nutrients::COLUMNS`].
    pub fn from_values(values: [Option<f64>; 7]) -> Self {
        let [
            energy_kcal,
            protein_g,
            carbs_g,
            fat_g,
            fiber_g,
            sugars_g,
            sodium_mg,
        ] = values;
        Nutrients {
            energy_kcal,
            protein_g,
            carbs_g,
            fat_g,
            fiber_g,
            sugars_g,
            sodium_mg,
        }
    }

    /// What `grams` of a food with these nutrients per 100 g hold.
    pub fn scaled(&self, grams: f64) -> Self {
        Nutrients::from_values(self.values().map(|v| v.map(|v| v * grams / 100.0)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewConnector {
    pub org: OrgId,
    pub name: String,
    pub kind: String,
    pub config: serde_json::Value,
    pub schedule_seconds: i64,
    pub first_run_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connector {
    pub id: ConnectorId,
    pub org: OrgId,
    pub name: String,
    pub kind: String,
    pub config: serde_json::Value,
    pub schedule_seconds: i64,
    pub enabled: bool,
    pub cursor: Option<String>,
    pub status: ConnectorStatus,
    pub last_error: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// How a connector run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorRun {
    /// The cursor to resume from; `None` keeps the previous one.
    pub cursor: Option<String>,
    pub error: Option<String>,
    pub finished_at: DateTime<Utc>,
    /// When the connector is due again; the runner decides, backing off after failures.
    pub next_run_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub org: OrgId,
    pub at: DateTime<Utc>,
    pub user: Option<UserId>,
    /// Who acted, as shown at the time: an email or `system`.
    pub actor: String,
    /// `query`, `export`, `erase`, `login`, `ingest`, …
    pub action: String,
    /// `flight`, `grpc`, `rest`, `cli`.
    pub interface: String,
    pub statement: Option<String>,
    pub subject: Option<SubjectId>,
    pub rows: Option<i64>,
    pub outcome: AuditOutcome,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: AuditId,
    pub entry: AuditEntry,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErasureRequest {
    pub id: ErasureId,
    pub org: OrgId,
    pub subject: SubjectId,
    pub requested_by: Option<UserId>,
    pub requested_at: DateTime<Utc>,
    pub status: ErasureStatus,
    pub completed_at: Option<DateTime<Utc>>,
    pub files_rewritten: Option<i64>,
    pub rows_removed: Option<i64>,
    pub error: Option<String>,
}
