//! Ingest: reads health data from files, HTTP bodies and connectors, cleans it in parallel
//! batches and hands canonical Arrow batches to the engine.
//!
//! Built by the ingest issue.
