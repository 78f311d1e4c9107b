//! [`QueryStream`]: a running query's rows, under its time limit, and audited when it ends.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use arrow::{array::RecordBatch, datatypes::SchemaRef};
use catalog::{AuditEntry, AuditOutcome};
use datafusion::{error::DataFusionError, execution::SendableRecordBatchStream};
use futures::{Stream, StreamExt};
use tokio::time::Sleep;

use crate::{Error, QueryLimits, Result, audit::AuditLog};

/// The rows of a query, in batches of exactly the schema announced before it ran. Ends with
/// an error if the query outlives its time limit or its memory; dropping it cancels the
/// query. Whatever way it ends, one audit entry records the statement and the rows returned.
pub struct QueryStream {
    schema: SchemaRef,
    inner: SendableRecordBatchStream,
    /// When planning began, for the latency metric.
    began: Instant,
    deadline: Pin<Box<Sleep>>,
    limits: QueryLimits,
    rows: i64,
    state: State,
    audit: Option<(AuditLog, AuditEntry)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Done,
    Failed,
}

impl QueryStream {
    pub(crate) fn new(
        schema: SchemaRef,
        inner: SendableRecordBatchStream,
        began: Instant,
        limits: QueryLimits,
        audit: AuditLog,
        entry: AuditEntry,
    ) -> Self {
        QueryStream {
            schema,
            inner,
            began,
            deadline: Box::pin(tokio::time::sleep(limits.timeout)),
            limits,
            rows: 0,
            state: State::Running,
            audit: Some((audit, entry)),
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Collects every batch.
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next().await {
            batches.push(batch?);
        }
        Ok(batches)
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<RecordBatch>>> {
        self.state = State::Failed;
        self.finish(AuditOutcome::Error, Some(error.to_string()));
        Poll::Ready(Some(Err(error)))
    }

    fn finish(&mut self, outcome: AuditOutcome, detail: Option<String>) {
        if let Some((log, mut entry)) = self.audit.take() {
            crate::metrics::QUERY_SECONDS
                .with(&[entry.interface.as_str(), outcome.as_str()])
                .observe(self.began.elapsed());
            entry.rows = Some(self.rows);
            entry.outcome = outcome;
            entry.detail = detail;
            log.record(entry);
        }
    }

    fn limit_error(&self, error: DataFusionError) -> Error {
        match error.find_root() {
            DataFusionError::ResourcesExhausted(reason) => Error::Limit(format!(
                "the query needs more than its {} MiB of memory ({reason}); narrow it by time or subject, or aggregate",
                self.limits.memory >> 20
            )),
            _ => Error::Query(error),
        }
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.state != State::Running {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let timeout = seconds(self.limits.timeout);
            return self.fail(Error::Limit(format!(
                "the query ran past its time limit of {timeout}"
            )));
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(batch))) => {
                self.rows += batch.num_rows() as i64;
                // The plan's batches may differ from the announced schema in details such as
                // nullability; clients compare the two.
                match RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec()) {
                    Ok(batch) => Poll::Ready(Some(Ok(batch))),
                    Err(e) => self.fail(Error::Arrow(e)),
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let error = self.limit_error(e);
                self.fail(error)
            }
            Poll::Ready(None) => {
                self.state = State::Done;
                self.finish(AuditOutcome::Ok, None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        let rows = self.rows;
        self.finish(
            AuditOutcome::Error,
            Some(format!("cancelled by the client after {rows} rows")),
        );
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}
