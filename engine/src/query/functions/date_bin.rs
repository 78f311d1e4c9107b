//! DataFusion's `date_bin`, hashed by its name.
//!
//! Planning hashes every expression many times (common subexpressions, grouping sets,
//! equivalence classes), and hashing a function call hashes its signature: `date_bin`'s lists
//! 32 argument type combinations, so hashing it was a sixth of planning a one-hour query
//! (`perf`, q1 of the workload). Every instance of this function is the same function, so its
//! name identifies it.

use std::{
    hash::{Hash, Hasher},
    sync::{Arc, LazyLock},
};

use arrow::datatypes::DataType;
use datafusion::{
    common::Result,
    functions::datetime::date_bin::DateBinFunc,
    logical_expr::{
        ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
        sort_properties::{ExprProperties, SortProperties},
    },
};

/// The `date_bin` every session has, and the engine's rewrites call.
pub(crate) fn date_bin() -> Arc<ScalarUDF> {
    static DATE_BIN: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(DateBin::new())));
    DATE_BIN.clone()
}

/// Delegates every method `DateBinFunc` implements; the others keep their defaults in both.
#[derive(Debug)]
pub(crate) struct DateBin(DateBinFunc);

impl DateBin {
    pub(crate) fn new() -> Self {
        Self(DateBinFunc::new())
    }
}

impl PartialEq for DateBin {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for DateBin {}

impl Hash for DateBin {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name().hash(state);
    }
}

impl ScalarUDFImpl for DateBin {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn signature(&self) -> &Signature {
        self.0.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.0.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.0.invoke_with_args(args)
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.0.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.0.documentation()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use datafusion::{
        arrow::array::{Array, TimestampNanosecondArray},
        prelude::SessionContext,
    };

    use super::*;

    #[tokio::test]
    async fn bins_as_datafusions_date_bin() {
        let ctx = SessionContext::new();
        let sql = "SELECT date_bin(INTERVAL '15 minutes', t, TIMESTAMP '2026-01-01 00:05:00') AS b \
                   FROM (VALUES (TIMESTAMP '2026-03-01 10:04:59'), (TIMESTAMP '2026-03-01 10:05:00'), \
                   (TIMESTAMP '2026-03-01 10:19:59'), (NULL)) AS v(t) ORDER BY t";
        let builtin = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        ctx.register_udf(ScalarUDF::from(DateBin::new()));
        let ours = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        assert_eq!(ours, builtin);
        let bins = ours[0]
            .column(0)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        assert_eq!(bins.len(), 4);
        assert!(bins.is_null(3));
        assert_eq!(bins.value(1) - bins.value(0), 15 * 60 * 1_000_000_000);
        assert_eq!(bins.value(2), bins.value(1));
    }

    #[test]
    fn keeps_the_order_of_the_times_it_bins() {
        let constant = ExprProperties::new_unknown().with_order(SortProperties::Singleton);
        let ascending = ExprProperties::new_unknown().with_order(SortProperties::Ordered(
            arrow::compute::SortOptions::default(),
        ));
        let order = DateBin::new()
            .output_ordering(&[constant, ascending.clone()])
            .unwrap();
        assert_eq!(order, ascending.sort_properties);
        let unordered = DateBin::new()
            .output_ordering(&[ascending.clone(), ascending])
            .unwrap();
        assert_eq!(unordered, SortProperties::Unordered);
    }

    #[test]
    fn hashes_and_compares_by_name() {
        let hasher = std::collections::hash_map::RandomState::new();
        let (a, b) = (
            ScalarUDF::from(DateBin::new()),
            ScalarUDF::from(DateBin::new()),
        );
        assert_eq!(a, b);
        assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
        assert_ne!(a, ScalarUDF::from(DateBinFunc::new()));
    }
}
