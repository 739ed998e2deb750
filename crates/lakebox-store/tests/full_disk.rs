//! The full disk and I/O errors, through the stores' public API. One test function, because
//! the full state is process-wide and tests in one binary run in parallel.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lakebox_store::{Log, LogConfig, LogEntry, MetaStore, StoreError, blob, space};
use redb::StorageBackend;
use redb::backends::FileBackend;

/// A file backend whose writes fail with "no space left on device" while `fail` is set.
#[derive(Debug)]
struct Flaky {
    inner: FileBackend,
    fail: Arc<AtomicBool>,
}

impl Flaky {
    fn check(&self) -> Result<(), io::Error> {
        if self.fail.load(Ordering::SeqCst) {
            Err(io::Error::from_raw_os_error(28))
        } else {
            Ok(())
        }
    }
}

impl StorageBackend for Flaky {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
        self.inner.read(offset, len)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self, eventual: bool) -> Result<(), io::Error> {
        self.check()?;
        self.inner.sync_data(eventual)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

#[test]
fn full_disk_refuses_growth_keeps_deletes_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    let fail = Arc::new(AtomicBool::new(false));
    let opener_fail = fail.clone();
    let kv = MetaStore::open_with(move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(redb::StorageError::Io)?;
        let backend = Flaky {
            inner: FileBackend::new(file)?,
            fail: opener_fail.clone(),
        };
        redb::Builder::new().create_with_backend(backend)
    })
    .unwrap();
    kv.put("t", b"kept", b"v1").unwrap();
    kv.put("t", b"doomed", b"v2").unwrap();

    // A commit that meets ENOSPC fails as Full and puts the process in the full state.
    fail.store(true, Ordering::SeqCst);
    let err = kv.put("t", b"new", b"v3").unwrap_err();
    assert!(err.is_full(), "{err}");
    fail.store(false, Ordering::SeqCst);

    // No reserve configured: the state is left at the next check, and the store, which redb
    // failed for good after the I/O error, has been reopened: reads and writes work.
    assert!(!space::is_full());
    assert_eq!(kv.get("t", b"kept").unwrap(), Some(b"v1".to_vec()));
    assert_eq!(kv.get("t", b"new").unwrap(), None);
    kv.put("t", b"after", b"v4").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(kv.write_async(|b| b.put("t", b"async", b"v5")))
        .unwrap();

    // The same through the group-commit writer.
    fail.store(true, Ordering::SeqCst);
    let err = rt
        .block_on(kv.write_async(|b| b.put("t", b"lost", b"x")))
        .unwrap_err();
    assert!(err.is_full(), "{err}");
    fail.store(false, Ordering::SeqCst);
    assert!(!space::is_full());
    rt.block_on(kv.write_async(|b| b.put("t", b"async2", b"v6")))
        .unwrap();
    assert_eq!(kv.get("t", b"async2").unwrap(), Some(b"v6".to_vec()));

    // With a reserve: the full state holds until space is back, and while it holds, writes
    // that grow the data are refused, deletes and same-size overwrites are not.
    let data = dir.path().join("data");
    space::configure(&data, 1024 * 1024).unwrap();
    assert!(data.join(space::RESERVE_FILE).exists());
    assert!(space::note(&io::Error::from_raw_os_error(28)));
    assert!(
        !data.join(space::RESERVE_FILE).exists(),
        "the reserve is released"
    );
    assert!(space::is_full());
    assert!(kv.put("t", b"grow", b"more").unwrap_err().is_full());
    assert!(
        rt.block_on(kv.write_async(|b| b.put("t", b"grow", b"more")))
            .unwrap_err()
            .is_full()
    );
    assert!(kv.delete("t", b"doomed").unwrap());
    rt.block_on(kv.write_async(|b| b.put("t", b"kept", b"v9")))
        .unwrap();
    assert_eq!(kv.get("t", b"kept").unwrap(), Some(b"v9".to_vec()));
    assert!(matches!(
        blob::BlobWriter::create(&data.join("obj")),
        Err(StoreError::Full)
    ));
    let log = Log::open(&dir.path().join("log"), LogConfig::default()).unwrap();
    let entry = LogEntry {
        timestamp_millis: 0,
        payload: b"r".to_vec(),
    };
    assert!(log.append_blocking(vec![entry.clone()]).unwrap_err().is_full());

    // This disk has room: a second later the reserve is written again and writes resume.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(!space::is_full());
    assert!(data.join(space::RESERVE_FILE).exists());
    kv.put("t", b"grow", b"more").unwrap();
    assert_eq!(log.append_blocking(vec![entry]).unwrap(), 0..1);
    blob::write_atomic(&data.join("obj"), b"data").unwrap();
}
