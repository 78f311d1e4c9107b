//! The `meta` and `system` schemas: catalog rows as SQL tables, read from the catalog only
//! when a query scans them.

use std::{fmt, sync::Arc};

use arrow::{
    array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
        TimestampNanosecondArray,
    },
    datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit},
};
use async_trait::async_trait;
use catalog::{Catalog, OrgId};
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::{
    catalog::{Session, TableProvider},
    common::{DataFusionError, Result},
    datasource::MemTable,
    logical_expr::{Expr, TableType},
    physical_plan::ExecutionPlan,
};
use futures::future::BoxFuture;

use crate::{access::RowScope, schema::StreamSchema};

/// How many of the newest ingest batches (and quality report rows) the system tables show.
const RECENT: i64 = 10_000;
/// How many days of the audit log `system.audit_log` shows.
const AUDIT_DAYS: i64 = 30;
/// How many quarantined rows `system.quarantine` shows, those of the newest batches.
const QUARANTINE_ROWS: i64 = 100_000;

type Load = fn(Arc<dyn Catalog>, Context) -> BoxFuture<'static, catalog::Result<Vec<ArrayRef>>>;

/// What a loader may need besides the catalog.
#[derive(Clone)]
pub(crate) struct Context {
    pub org: OrgId,
    pub streams: Arc<[Arc<StreamSchema>]>,
    /// Erased subjects: never shown.
    pub hidden: Arc<[i64]>,
    /// The subjects the session may read.
    pub scope: RowScope,
    /// Whether names and emails of those subjects may be shown.
    pub identifiers: bool,
}

impl Context {
    fn visible(&self, subject: i64) -> bool {
        self.scope.allows(subject) && !self.hidden.contains(&subject)
    }
}

/// A table whose rows the catalog holds.
pub(crate) struct CatalogTable {
    schema: SchemaRef,
    catalog: Arc<dyn Catalog>,
    context: Context,
    load: Load,
}

impl fmt::Debug for CatalogTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogTable")
            .field("schema", &self.schema)
            .finish()
    }
}

#[async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns = (self.load)(self.catalog.clone(), self.context.clone())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        MemTable::try_new(self.schema.clone(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch")).num_days() as i32
}

fn strings<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn stream_name(context: &Context, id: catalog::StreamId) -> Option<&str> {
    context
        .streams
        .iter()
        .find(|s| s.id() == id)
        .map(|s| s.name())
}

/// How many foods `reference.foods` shows: all of any open database loaded today (Open Food
/// Facts, the largest, has about 3.5 million).
const FOODS: i64 = 10_000_000;

/// The tables of the `reference` schema: open data, not personal, readable by everyone of the
/// organization.
pub(crate) fn reference(
    catalog: Arc<dyn Catalog>,
    context: Context,
) -> Vec<(&'static str, Arc<dyn TableProvider>)> {
    let mut fields = vec![
        field("food_id", DataType::Utf8, false),
        field("source", DataType::Utf8, false),
        field("name", DataType::Utf8, false),
        field("brand", DataType::Utf8, true),
    ];
    fields.extend(
        catalog::Nutrients::COLUMNS
            .iter()
            .map(|column| field(column, DataType::Float64, true)),
    );
    let foods = CatalogTable {
        schema: Arc::new(Schema::new(fields)),
        catalog,
        context,
        load: |catalog, cx| {
            Box::pin(async move {
                let foods = catalog.foods().list(cx.org, FOODS).await?;
                let mut columns = vec![
                    strings(foods.iter().map(|f| Some(f.id.as_str()))),
                    strings(foods.iter().map(|f| Some(f.source.as_str()))),
                    strings(foods.iter().map(|f| Some(f.name.as_str()))),
                    strings(foods.iter().map(|f| f.brand.as_deref())),
                ];
                for nutrient in 0..catalog::Nutrients::COLUMNS.len() {
                    columns.push(Arc::new(Float64Array::from_iter(
                        foods.iter().map(|f| f.per_100g.values()[nutrient]),
                    )));
                }
                Ok(columns)
            })
        },
    };
    vec![("foods", Arc::new(foods))]
}

/// The tables of the `meta` schema, of the `system` schema (organization-wide operations, for
/// principals who read the whole organization), and the audit log and the ingest quarantine
/// (for those who may read the audit log: rejected values are raw input of any subject).
pub(crate) fn meta_and_system(
    catalog: Arc<dyn Catalog>,
    context: Context,
    system_tables: bool,
    audit_table: bool,
) -> [Vec<(&'static str, Arc<dyn TableProvider>)>; 2] {
    let table = |schema: Vec<Field>, load: Load| -> Arc<dyn TableProvider> {
        Arc::new(CatalogTable {
            schema: Arc::new(Schema::new(schema)),
            catalog: catalog.clone(),
            context: context.clone(),
            load,
        })
    };
    let meta = vec![
        (
            "subjects",
            table(
                vec![
                    field("subject_id", DataType::Int64, false),
                    field("pseudonym", DataType::Utf8, false),
                    field("display_name", DataType::Utf8, true),
                    field("email", DataType::Utf8, true),
                    field("sex", DataType::Utf8, true),
                    field("birth_year", DataType::Int64, true),
                    field("height_cm", DataType::Float64, true),
                    field("max_hr", DataType::Int64, true),
                    field("timezone", DataType::Utf8, false),
                    field("created_at", timestamp(), false),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let subjects: Vec<_> = catalog
                            .subjects()
                            .list(cx.org)
                            .await?
                            .into_iter()
                            .filter(|s| s.erased_at.is_none() && cx.visible(s.id.0))
                            .collect();
                        let shown = cx.identifiers;
                        fn identifier(value: &Option<String>, shown: bool) -> Option<&str> {
                            value.as_deref().filter(|_| shown)
                        }
                        Ok(vec![
                            Arc::new(Int64Array::from_iter_values(
                                subjects.iter().map(|s| s.id.0),
                            )) as ArrayRef,
                            strings(subjects.iter().map(|s| Some(s.pseudonym.as_str()))),
                            strings(
                                subjects
                                    .iter()
                                    .map(|s| identifier(&s.profile.display_name, shown)),
                            ),
                            strings(subjects.iter().map(|s| identifier(&s.profile.email, shown))),
                            strings(subjects.iter().map(|s| s.profile.sex.map(|x| x.as_str()))),
                            Arc::new(Int64Array::from_iter(
                                subjects.iter().map(|s| s.profile.birth_year),
                            )),
                            Arc::new(Float64Array::from_iter(
                                subjects.iter().map(|s| s.profile.height_cm),
                            )),
                            Arc::new(Int64Array::from_iter(
                                subjects.iter().map(|s| s.profile.max_hr),
                            )),
                            strings(subjects.iter().map(|s| Some(s.profile.timezone.as_str()))),
                            Arc::new(TimestampNanosecondArray::from_iter_values(
                                subjects.iter().map(|s| nanos(s.created_at)),
                            )),
                        ])
                    })
                },
            ),
        ),
        (
            "groups",
            table(
                vec![
                    field("group_id", DataType::Int64, false),
                    field("name", DataType::Utf8, false),
                    field("kind", DataType::Utf8, false),
                    field("description", DataType::Utf8, false),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let mut groups = Vec::new();
                        for group in catalog.subjects().list_groups(cx.org).await? {
                            let shown = cx.scope == RowScope::All
                                || catalog
                                    .subjects()
                                    .members(group.id)
                                    .await?
                                    .iter()
                                    .any(|s| cx.visible(s.0));
                            if shown {
                                groups.push(group);
                            }
                        }
                        Ok(vec![
                            Arc::new(Int64Array::from_iter_values(groups.iter().map(|g| g.id.0)))
                                as ArrayRef,
                            strings(groups.iter().map(|g| Some(g.name.as_str()))),
                            strings(groups.iter().map(|g| Some(g.kind.as_str()))),
                            strings(groups.iter().map(|g| Some(g.description.as_str()))),
                        ])
                    })
                },
            ),
        ),
        (
            "group_members",
            table(
                vec![
                    field("group_id", DataType::Int64, false),
                    field("subject_id", DataType::Int64, false),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let mut pairs = Vec::new();
                        for group in catalog.subjects().list_groups(cx.org).await? {
                            for subject in catalog.subjects().members(group.id).await? {
                                if cx.visible(subject.0) {
                                    pairs.push((group.id.0, subject.0));
                                }
                            }
                        }
                        Ok(vec![
                            Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.0)))
                                as ArrayRef,
                            Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.1))),
                        ])
                    })
                },
            ),
        ),
        (
            "goals",
            table(
                vec![
                    field("goal_id", DataType::Int64, false),
                    field("subject_id", DataType::Int64, false),
                    field("metric", DataType::Utf8, false),
                    field("target", DataType::Float64, false),
                    field("comparator", DataType::Utf8, false),
                    field("period", DataType::Utf8, false),
                    field("starts_on", DataType::Date32, false),
                    field("ends_on", DataType::Date32, true),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let goals: Vec<_> = catalog
                            .goals()
                            .list(cx.org)
                            .await?
                            .into_iter()
                            .filter(|g| cx.visible(g.subject.0))
                            .collect();
                        Ok(vec![
                            Arc::new(Int64Array::from_iter_values(goals.iter().map(|g| g.id.0)))
                                as ArrayRef,
                            Arc::new(Int64Array::from_iter_values(
                                goals.iter().map(|g| g.subject.0),
                            )),
                            strings(goals.iter().map(|g| Some(g.metric.as_str()))),
                            Arc::new(Float64Array::from_iter_values(
                                goals.iter().map(|g| g.target),
                            )),
                            strings(goals.iter().map(|g| Some(g.comparator.as_str()))),
                            strings(goals.iter().map(|g| Some(g.period.as_str()))),
                            Arc::new(Date32Array::from_iter_values(
                                goals.iter().map(|g| days(g.starts_on)),
                            )),
                            Arc::new(Date32Array::from_iter(
                                goals.iter().map(|g| g.ends_on.map(days)),
                            )),
                        ])
                    })
                },
            ),
        ),
    ];
    let mut system = vec![
        (
            "partitions",
            table(
                vec![
                    field("stream", DataType::Utf8, false),
                    field("day", DataType::Date32, false),
                    field("live_files", DataType::Int64, false),
                    field("live_rows", DataType::Int64, false),
                    field("live_bytes", DataType::Int64, false),
                    field("last_sequence", DataType::Int64, false),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let mut rows = Vec::new();
                        for stream in cx.streams.iter() {
                            for p in catalog.files().partitions(stream.id()).await? {
                                rows.push((stream.name().to_owned(), p));
                            }
                        }
                        Ok(vec![
                            strings(rows.iter().map(|(s, _)| Some(s.as_str()))),
                            Arc::new(Date32Array::from_iter_values(
                                rows.iter().map(|(_, p)| days(p.day)),
                            )) as ArrayRef,
                            Arc::new(Int64Array::from_iter_values(
                                rows.iter().map(|(_, p)| p.live_files),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                rows.iter().map(|(_, p)| p.live_rows),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                rows.iter().map(|(_, p)| p.live_bytes),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                rows.iter().map(|(_, p)| p.last_sequence),
                            )),
                        ])
                    })
                },
            ),
        ),
        (
            "files",
            table(
                vec![
                    field("stream", DataType::Utf8, false),
                    field("day", DataType::Date32, false),
                    field("path", DataType::Utf8, false),
                    field("sequence", DataType::Int64, false),
                    field("compaction_level", DataType::Int64, false),
                    field("min_time", timestamp(), false),
                    field("max_time", timestamp(), false),
                    field("min_subject", DataType::Int64, false),
                    field("max_subject", DataType::Int64, false),
                    field("rows", DataType::Int64, false),
                    field("bytes", DataType::Int64, false),
                    field("created_at", timestamp(), false),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let mut files = Vec::new();
                        for stream in cx.streams.iter() {
                            let live = catalog
                                .files()
                                .live_files(stream.id(), Default::default())
                                .await?;
                            files.extend(live.into_iter().map(|f| (stream.name().to_owned(), f)));
                        }
                        Ok(vec![
                            strings(files.iter().map(|(s, _)| Some(s.as_str()))),
                            Arc::new(Date32Array::from_iter_values(
                                files.iter().map(|(_, f)| days(f.day)),
                            )) as ArrayRef,
                            strings(files.iter().map(|(_, f)| Some(f.path.as_str()))),
                            Arc::new(Int64Array::from_iter_values(
                                files.iter().map(|(_, f)| f.sequence),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                files.iter().map(|(_, f)| f.compaction_level),
                            )),
                            Arc::new(TimestampNanosecondArray::from_iter_values(
                                files.iter().map(|(_, f)| f.min_time),
                            )),
                            Arc::new(TimestampNanosecondArray::from_iter_values(
                                files.iter().map(|(_, f)| f.max_time),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                files.iter().map(|(_, f)| f.min_subject.0),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                files.iter().map(|(_, f)| f.max_subject.0),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                files.iter().map(|(_, f)| f.row_count),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                files.iter().map(|(_, f)| f.size_bytes),
                            )),
                            Arc::new(TimestampNanosecondArray::from_iter_values(
                                files.iter().map(|(_, f)| nanos(f.created_at)),
                            )),
                        ])
                    })
                },
            ),
        ),
        (
            "ingest_batches",
            table(
                vec![
                    field("batch_id", DataType::Int64, false),
                    field("source", DataType::Utf8, false),
                    field("format", DataType::Utf8, false),
                    field("status", DataType::Utf8, false),
                    field("rows_in", DataType::Int64, false),
                    field("rows_accepted", DataType::Int64, false),
                    field("rows_rejected", DataType::Int64, false),
                    field("rows_corrected", DataType::Int64, false),
                    field("bytes", DataType::Int64, false),
                    field("error", DataType::Utf8, true),
                    field("started_at", timestamp(), false),
                    field("finished_at", timestamp(), true),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let batches = catalog.ingest().list_batches(cx.org, RECENT).await?;
                        Ok(vec![
                            Arc::new(Int64Array::from_iter_values(batches.iter().map(|b| b.id.0)))
                                as ArrayRef,
                            strings(batches.iter().map(|b| Some(b.source.as_str()))),
                            strings(batches.iter().map(|b| Some(b.format.as_str()))),
                            strings(batches.iter().map(|b| Some(b.status.as_str()))),
                            Arc::new(Int64Array::from_iter_values(
                                batches.iter().map(|b| b.counts.rows_in),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                batches.iter().map(|b| b.counts.rows_accepted),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                batches.iter().map(|b| b.counts.rows_rejected),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                batches.iter().map(|b| b.counts.rows_corrected),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                batches.iter().map(|b| b.bytes),
                            )),
                            strings(batches.iter().map(|b| b.error.as_deref())),
                            Arc::new(TimestampNanosecondArray::from_iter_values(
                                batches.iter().map(|b| nanos(b.started_at)),
                            )),
                            Arc::new(TimestampNanosecondArray::from_iter(
                                batches.iter().map(|b| b.finished_at.map(nanos)),
                            )),
                        ])
                    })
                },
            ),
        ),
        (
            "quality_reports",
            table(
                vec![
                    field("batch_id", DataType::Int64, false),
                    field("stream", DataType::Utf8, true),
                    field("column_name", DataType::Utf8, false),
                    field("rule", DataType::Utf8, false),
                    field("rows_checked", DataType::Int64, false),
                    field("rows_corrected", DataType::Int64, false),
                    field("rows_rejected", DataType::Int64, false),
                    field("rows_flagged", DataType::Int64, false),
                    field("completeness", DataType::Float64, true),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let reports = catalog.ingest().org_quality_reports(cx.org, RECENT).await?;
                        Ok(vec![
                            Arc::new(Int64Array::from_iter_values(
                                reports.iter().map(|(b, _)| b.0),
                            )) as ArrayRef,
                            strings(reports.iter().map(|(_, r)| stream_name(&cx, r.stream))),
                            strings(reports.iter().map(|(_, r)| Some(r.column.as_str()))),
                            strings(reports.iter().map(|(_, r)| Some(r.rule.as_str()))),
                            Arc::new(Int64Array::from_iter_values(
                                reports.iter().map(|(_, r)| r.rows_checked),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                reports.iter().map(|(_, r)| r.rows_corrected),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                reports.iter().map(|(_, r)| r.rows_rejected),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                reports.iter().map(|(_, r)| r.rows_flagged),
                            )),
                            Arc::new(Float64Array::from_iter(
                                reports.iter().map(|(_, r)| r.completeness),
                            )),
                        ])
                    })
                },
            ),
        ),
        (
            "ingest_coverage",
            table(
                vec![
                    field("batch_id", DataType::Int64, false),
                    field("stream", DataType::Utf8, true),
                    field("subject_id", DataType::Int64, false),
                    field("first_time", timestamp(), false),
                    field("last_time", timestamp(), false),
                    field("rows", DataType::Int64, false),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let coverage: Vec<_> = catalog
                            .ingest()
                            .org_coverage(cx.org, RECENT)
                            .await?
                            .into_iter()
                            .filter(|(_, c)| !cx.hidden.contains(&c.subject.0))
                            .collect();
                        Ok(vec![
                            Arc::new(Int64Array::from_iter_values(
                                coverage.iter().map(|(b, _)| b.0),
                            )) as ArrayRef,
                            strings(coverage.iter().map(|(_, c)| stream_name(&cx, c.stream))),
                            Arc::new(Int64Array::from_iter_values(
                                coverage.iter().map(|(_, c)| c.subject.0),
                            )),
                            Arc::new(TimestampNanosecondArray::from_iter_values(
                                coverage.iter().map(|(_, c)| nanos(c.first)),
                            )),
                            Arc::new(TimestampNanosecondArray::from_iter_values(
                                coverage.iter().map(|(_, c)| nanos(c.last)),
                            )),
                            Arc::new(Int64Array::from_iter_values(
                                coverage.iter().map(|(_, c)| c.rows),
                            )),
                        ])
                    })
                },
            ),
        ),
        (
            "streams",
            table(
                vec![
                    field("stream", DataType::Utf8, false),
                    field("kind", DataType::Utf8, false),
                    field("standard", DataType::Boolean, false),
                    field("retention_days", DataType::Int64, true),
                    field("columns", DataType::Utf8, false),
                ],
                |_, cx| {
                    Box::pin(async move {
                        let streams = &cx.streams;
                        let columns: Vec<String> = streams
                            .iter()
                            .map(|s| {
                                s.stream
                                    .columns
                                    .iter()
                                    .map(|c| match &c.unit {
                                        Some(unit) => {
                                            format!("{} {} [{unit}]", c.name, c.arrow_type)
                                        }
                                        None => format!("{} {}", c.name, c.arrow_type),
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .collect();
                        Ok(vec![
                            strings(streams.iter().map(|s| Some(s.name()))),
                            strings(streams.iter().map(|s| Some(s.stream.kind.as_str())))
                                as ArrayRef,
                            Arc::new(BooleanArray::from_iter(
                                streams.iter().map(|s| Some(s.stream.standard)),
                            )),
                            Arc::new(Int64Array::from_iter(
                                streams.iter().map(|s| s.stream.retention_days),
                            )),
                            strings(columns.iter().map(|c| Some(c.as_str()))),
                        ])
                    })
                },
            ),
        ),
    ];
    if !system_tables {
        system.clear();
    }
    if audit_table {
        system.push((
            "audit_log",
            table(
                vec![
                    field("at", timestamp(), false),
                    field("actor", DataType::Utf8, false),
                    field("action", DataType::Utf8, false),
                    field("interface", DataType::Utf8, false),
                    field("statement", DataType::Utf8, true),
                    field("subject_id", DataType::Int64, true),
                    field("rows", DataType::Int64, true),
                    field("outcome", DataType::Utf8, false),
                    field("detail", DataType::Utf8, true),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let since = Utc::now() - chrono::Duration::days(AUDIT_DAYS);
                        let records = catalog.audit().list(cx.org, since, RECENT * 10).await?;
                        let entries: Vec<_> = records.iter().map(|r| &r.entry).collect();
                        Ok(vec![
                            Arc::new(TimestampNanosecondArray::from_iter_values(
                                entries.iter().map(|e| nanos(e.at)),
                            )) as ArrayRef,
                            strings(entries.iter().map(|e| Some(e.actor.as_str()))),
                            strings(entries.iter().map(|e| Some(e.action.as_str()))),
                            strings(entries.iter().map(|e| Some(e.interface.as_str()))),
                            strings(entries.iter().map(|e| e.statement.as_deref())),
                            Arc::new(Int64Array::from_iter(
                                entries.iter().map(|e| e.subject.map(|s| s.0)),
                            )),
                            Arc::new(Int64Array::from_iter(entries.iter().map(|e| e.rows))),
                            strings(entries.iter().map(|e| Some(e.outcome.as_str()))),
                            strings(entries.iter().map(|e| e.detail.as_deref())),
                        ])
                    })
                },
            ),
        ));
        system.push((
            "quarantine",
            table(
                vec![
                    field("batch_id", DataType::Int64, false),
                    field("stream", DataType::Utf8, true),
                    field("file", DataType::Utf8, false),
                    field("record", DataType::Int64, true),
                    field("column_name", DataType::Utf8, true),
                    field("rule", DataType::Utf8, false),
                    field("reason", DataType::Utf8, false),
                    field("value", DataType::Utf8, true),
                ],
                |catalog, cx| {
                    Box::pin(async move {
                        let rows = catalog
                            .ingest()
                            .org_quarantine(cx.org, QUARANTINE_ROWS)
                            .await?;
                        Ok(vec![
                            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.batch.0)))
                                as ArrayRef,
                            strings(
                                rows.iter()
                                    .map(|r| r.stream.and_then(|s| stream_name(&cx, s))),
                            ),
                            strings(rows.iter().map(|r| Some(r.file.as_str()))),
                            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.record))),
                            strings(rows.iter().map(|r| r.column.as_deref())),
                            strings(rows.iter().map(|r| Some(r.rule.as_str()))),
                            strings(rows.iter().map(|r| Some(r.reason.as_str()))),
                            strings(rows.iter().map(|r| r.value.as_deref())),
                        ])
                    })
                },
            ),
        ));
    }
    [meta, system]
}
