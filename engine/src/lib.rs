//! The storage and query engine: turns Arrow record batches into sorted Parquet partitions
//! registered in the catalog, and answers SQL over them with DataFusion.
//!
//! Built by the storage-and-query issue; the catalog it relies on is in place.
