//! What the ingest end-to-end tests share: a real engine over a throwaway SQLite catalog and a
//! local object store in a temporary directory, acting as the organization's operator.

// Each test file is its own crate and uses a part of this.
#![allow(dead_code)]

use std::sync::Arc;

use catalog::testing::TestDatabase;
use engine::{Engine, EngineConfig, Principal};
use object_store::local::LocalFileSystem;

pub struct Harness {
    _db: TestDatabase,
    /// Where tests may write their input files; the store is its `store/`.
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub principal: Principal,
}

impl Harness {
    pub async fn new() -> Self {
        let db = TestDatabase::sqlite().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("store")).unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("store")).unwrap());
        let engine = Engine::open(db.catalog().await, store, EngineConfig::default()).unwrap();
        let principal = Principal::operator(engine.organization("default").await.unwrap());
        Harness {
            _db: db,
            dir,
            engine,
            principal,
        }
    }
}
