//! Parquet files kept in memory once read, for the queries that read them again.
//!
//! A short query (one subject, one hour) spends as long reading its few pages through the
//! object store — a blocking thread per read on a local disk, a request per read on S3 — as
//! computing its answer. Stored files are never changed once written (each has a new UUID),
//! so a copy is never stale: it goes when the file is deleted through this store, or to make
//! room for another file.
//!
//! A scan larger than the cache must not empty it for nothing: a file is only pushed out
//! when it was not read for [`MIN_IDLE`]; while every kept file is younger, a new file is
//! read from the store as if there were no cache. A repeated full scan then keeps finding
//! the files it kept, instead of pushing out each before reading it again.

use std::{
    collections::HashMap,
    fmt,
    ops::Range,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    Attributes, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, RenameOptions, path::Path,
};

use crate::metrics;

/// How long a kept file must go unread before another may take its place, and how long a
/// file that could not be kept is read from the store by range before it is tried again.
const MIN_IDLE: Duration = Duration::from_secs(30);
/// The largest share of the cache one file may take.
const MAX_FILE_SHARE: u64 = 8;
/// Files that could not be kept, remembered at most; the memory is forgotten past this many.
const MAX_DIRECT_REMEMBERED: usize = 4096;

/// An object store that keeps the Parquet files read through it in memory, up to a total
/// size; every other object and operation goes straight to the store it wraps.
pub(crate) struct FileCache {
    store: Arc<dyn ObjectStore>,
    capacity: u64,
    kept: Arc<Mutex<Kept>>,
}

#[derive(Default)]
struct Kept {
    files: HashMap<Path, KeptFile>,
    bytes: u64,
    /// Files that could not be kept, with when and why (`large`: more than a file may take
    /// of the cache; `full`: no room could be made): until [`MIN_IDLE`] has passed their
    /// reads go to the store by range, instead of each fetching the whole file again.
    direct: HashMap<Path, (Instant, &'static str)>,
}

#[derive(Clone)]
struct KeptFile {
    meta: ObjectMeta,
    attributes: Attributes,
    data: Bytes,
    last_read: Instant,
}

impl FileCache {
    /// `store` with a cache of `capacity` bytes in front, or `store` itself for none.
    pub(crate) fn wrap(store: Arc<dyn ObjectStore>, capacity: u64) -> Arc<dyn ObjectStore> {
        if capacity == 0 {
            return store;
        }
        Arc::new(FileCache {
            store,
            capacity,
            kept: Arc::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        lock(&self.kept)
    }

    /// The kept copy of `location`, if there is one.
    fn kept(&self, location: &Path) -> Option<KeptFile> {
        let mut kept = self.lock();
        let file = kept.files.get_mut(location)?;
        file.last_read = Instant::now();
        metrics::FILE_CACHE_READS.with(&["hit"]).inc();
        Some(file.clone())
    }

    /// The kept copy of `location`, fetched whole on a first read when it may be kept;
    /// `None` when the store should be read directly.
    async fn file(&self, location: &Path) -> object_store::Result<Option<KeptFile>> {
        if location.extension() != Some("parquet") {
            return Ok(None);
        }
        if let Some(file) = self.kept(location) {
            return Ok(Some(file));
        }
        if let Some(reason) = self.lock().read_directly(location) {
            metrics::FILE_CACHE_READS.with(&[reason]).inc();
            return Ok(None);
        }
        // The size comes with the answer, before its body is read: a file that cannot be
        // kept is dropped unread and read by range instead.
        let whole = self.store.get_opts(location, GetOptions::default()).await?;
        let size = whole.meta.size;
        let unkeepable = if size > self.capacity / MAX_FILE_SHARE {
            Some("large")
        } else if self.room_for(&self.lock(), size).is_none() {
            Some("full")
        } else {
            None
        };
        if let Some(reason) = unkeepable {
            self.lock().remember_direct(location, reason);
            metrics::FILE_CACHE_READS.with(&[reason]).inc();
            return Ok(None);
        }
        let meta = whole.meta.clone();
        let attributes = whole.attributes.clone();
        let data = whole.bytes().await?;
        let file = KeptFile {
            meta,
            attributes,
            data,
            last_read: Instant::now(),
        };
        // Another read may have taken the room meanwhile: this read has the bytes anyway.
        let outcome = if self.keep(location, &file) {
            "miss"
        } else {
            "full"
        };
        metrics::FILE_CACHE_READS.with(&[outcome]).inc();
        Ok(Some(file))
    }

    /// The idle files to push out to make room for `size` bytes, least recently read first;
    /// `None` when room cannot be made without pushing out a file read in the last
    /// [`MIN_IDLE`].
    fn room_for(&self, kept: &Kept, size: u64) -> Option<Vec<(Path, u64)>> {
        if kept.bytes + size <= self.capacity {
            return Some(Vec::new());
        }
        let now = Instant::now();
        let mut idle: Vec<(Instant, &Path, u64)> = kept
            .files
            .iter()
            .filter(|(_, f)| now.duration_since(f.last_read) >= MIN_IDLE)
            .map(|(path, f)| (f.last_read, path, f.meta.size))
            .collect();
        idle.sort_unstable_by_key(|(last_read, _, _)| *last_read);
        let mut bytes = kept.bytes;
        let mut evicted = Vec::new();
        for (_, path, freed) in idle {
            if bytes + size <= self.capacity {
                break;
            }
            bytes -= freed;
            evicted.push((path.clone(), freed));
        }
        (bytes + size <= self.capacity).then_some(evicted)
    }

    /// Keeps `file` if room can be made for it (see [`FileCache::room_for`]); whether it was
    /// kept.
    fn keep(&self, location: &Path, file: &KeptFile) -> bool {
        let size = file.meta.size;
        let mut kept = self.lock();
        if kept.files.contains_key(location) {
            return true;
        }
        let Some(evicted) = self.room_for(&kept, size) else {
            kept.remember_direct(location, "full");
            return false;
        };
        for (path, freed) in evicted {
            kept.files.remove(&path);
            kept.bytes -= freed;
        }
        kept.bytes += size;
        kept.files.insert(location.clone(), file.clone());
        kept.direct.remove(location);
        true
    }

    fn forget(&self, location: &Path) {
        self.lock().forget(location);
    }
}

fn lock(kept: &Mutex<Kept>) -> MutexGuard<'_, Kept> {
    kept.lock().unwrap_or_else(|e| e.into_inner())
}

impl Kept {
    /// Why `location` is read from the store directly for now, if it is.
    fn read_directly(&self, location: &Path) -> Option<&'static str> {
        let (since, reason) = self.direct.get(location)?;
        (since.elapsed() < MIN_IDLE).then_some(*reason)
    }

    fn remember_direct(&mut self, location: &Path, reason: &'static str) {
        if self.direct.len() >= MAX_DIRECT_REMEMBERED {
            self.direct.clear();
        }
        self.direct
            .insert(location.clone(), (Instant::now(), reason));
    }

    fn forget(&mut self, location: &Path) {
        if let Some(file) = self.files.remove(location) {
            self.bytes -= file.meta.size;
        }
        self.direct.remove(location);
    }
}

/// The bytes of `range` of a kept file.
fn slice(file: &KeptFile, range: GetRange) -> object_store::Result<(Range<u64>, Bytes)> {
    let range = range
        .as_range(file.meta.size)
        .map_err(|e| object_store::Error::Generic {
            store: "file cache",
            source: Box::new(e),
        })?;
    let bytes = file.data.slice(range.start as usize..range.end as usize);
    Ok((range, bytes))
}

impl fmt::Display for FileCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileCache({}, {} bytes)", self.store, self.capacity)
    }
}

impl fmt::Debug for FileCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[async_trait]
impl ObjectStore for FileCache {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.forget(location);
        self.store.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.forget(location);
        self.store.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none();
        if !plain {
            return self.store.get_opts(location, options).await;
        }
        // A head asks for no bytes: answered from a kept copy, never by fetching one.
        let file = if options.head {
            self.kept(location)
        } else {
            self.file(location).await?
        };
        let Some(file) = file else {
            return self.store.get_opts(location, options).await;
        };
        let (range, data) = if options.head {
            (0..file.meta.size, Bytes::new())
        } else {
            slice(&file, options.range.unwrap_or(GetRange::Offset(0)))?
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(futures::stream::once(async { Ok(data) }).boxed()),
            meta: file.meta,
            range,
            attributes: file.attributes,
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let Some(file) = self.file(location).await? else {
            return self.store.get_ranges(location, ranges).await;
        };
        ranges
            .iter()
            .map(|range| slice(&file, GetRange::Bounded(range.clone())).map(|(_, bytes)| bytes))
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let kept = Arc::clone(&self.kept);
        self.store
            .delete_stream(locations)
            .map_ok(move |path| {
                lock(&kept).forget(&path);
                path
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.store.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.store.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.store.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.forget(to);
        self.store.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.forget(from);
        self.forget(to);
        self.store.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::{ObjectStoreExt, memory::InMemory};

    use super::*;

    fn bytes(n: usize) -> Bytes {
        (0..n).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
    }

    async fn store_with(files: &[(&str, usize)]) -> Arc<InMemory> {
        let store = Arc::new(InMemory::new());
        for (name, size) in files {
            store
                .put(&Path::from(*name), bytes(*size).into())
                .await
                .unwrap();
        }
        store
    }

    fn cache(store: &Arc<InMemory>, capacity: u64) -> FileCache {
        FileCache {
            store: store.clone(),
            capacity,
            kept: Arc::default(),
        }
    }

    #[tokio::test]
    async fn a_file_read_once_is_read_from_memory() {
        let store = store_with(&[("a/1.parquet", 1000)]).await;
        let cache = cache(&store, 1 << 20);
        let path = Path::from("a/1.parquet");
        // A head fetches nothing to keep.
        assert_eq!(cache.head(&path).await.unwrap().size, 1000);
        assert!(cache.lock().files.is_empty());
        let first = cache.get_ranges(&path, &[10..20, 990..1000]).await.unwrap();
        assert_eq!(
            first,
            vec![bytes(1000).slice(10..20), bytes(1000).slice(990..1000)]
        );
        // Gone from the store, still answered: the second read never reached it.
        store.delete(&path).await.unwrap();
        assert_eq!(
            cache.get_range(&path, 5..9).await.unwrap(),
            bytes(1000).slice(5..9)
        );
        let suffix = cache
            .get_opts(
                &path,
                GetOptions::default().with_range(Some(GetRange::Suffix(3))),
            )
            .await
            .unwrap();
        assert_eq!(suffix.range, 997..1000);
        assert_eq!(suffix.bytes().await.unwrap(), bytes(1000).slice(997..1000));
        assert_eq!(cache.head(&path).await.unwrap().size, 1000);
        assert!(cache.get_range(&path, 1001..1005).await.is_err());
    }

    #[tokio::test]
    async fn deleting_or_replacing_a_file_forgets_it() {
        let store = store_with(&[("a/1.parquet", 100), ("a/2.parquet", 100)]).await;
        let cache = cache(&store, 1 << 20);
        let (one, two) = (Path::from("a/1.parquet"), Path::from("a/2.parquet"));
        cache.get_range(&one, 0..10).await.unwrap();
        cache.get_range(&two, 0..10).await.unwrap();
        cache.delete(&one).await.unwrap();
        assert!(matches!(
            cache.get_range(&one, 0..10).await,
            Err(object_store::Error::NotFound { .. })
        ));
        cache
            .put(&two, Bytes::from_static(b"new").into())
            .await
            .unwrap();
        assert_eq!(cache.get(&two).await.unwrap().bytes().await.unwrap(), "new");
        assert_eq!(cache.lock().bytes, 3);
    }

    #[tokio::test]
    async fn only_parquet_files_of_a_share_of_the_cache_are_kept() {
        let store = store_with(&[("a/1.json", 100), ("a/big.parquet", 200)]).await;
        let cache = cache(&store, 8 * 150);
        for name in ["a/1.json", "a/big.parquet"] {
            let path = Path::from(name);
            assert_eq!(cache.get_range(&path, 0..50).await.unwrap(), bytes(50));
            store.delete(&path).await.unwrap();
            assert!(cache.get_range(&path, 0..50).await.is_err(), "{name} kept");
        }
        assert_eq!(cache.lock().bytes, 0);
        let big = Path::from("a/big.parquet");
        assert_eq!(cache.lock().read_directly(&big), Some("large"));
    }

    #[tokio::test]
    async fn recently_read_files_stay_when_a_scan_outgrows_the_cache() {
        let names: Vec<String> = (1..=9).map(|i| format!("{i}.parquet")).collect();
        let sizes: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 60)).collect();
        let store = store_with(&sizes).await;
        // Room for eight of the nine.
        let cache = cache(&store, 8 * 60);
        let kept = |cache: &FileCache| {
            let mut names: Vec<String> = cache.lock().files.keys().map(|p| p.to_string()).collect();
            names.sort();
            names
        };
        for _ in 0..2 {
            for name in &names {
                let read = cache
                    .get_range(&Path::from(name.as_str()), 0..60)
                    .await
                    .unwrap();
                assert_eq!(read, bytes(60));
            }
            assert_eq!(kept(&cache), names[..8]);
        }
        // The ninth is read by range meanwhile, not fetched whole for every read.
        let ninth = Path::from("9.parquet");
        assert_eq!(cache.lock().read_directly(&ninth), Some("full"));
        // Once idle, the least recently read goes first.
        let long_ago = Instant::now() - MIN_IDLE * 2;
        {
            let mut state = cache.lock();
            for (path, file) in state.files.iter_mut() {
                let order: u64 = path.as_ref().trim_end_matches(".parquet").parse().unwrap();
                file.last_read = long_ago + Duration::from_secs(order);
            }
            for (since, _) in state.direct.values_mut() {
                *since = long_ago;
            }
        }
        cache
            .get_range(&Path::from("9.parquet"), 0..60)
            .await
            .unwrap();
        assert_eq!(kept(&cache), names[1..]);
        assert_eq!(cache.lock().bytes, 8 * 60);
    }
}
