//! Running out of disk, and getting back from it without a restart.
//!
//! A full disk must not take down what is already stored: reads go on, deletes go on (they are
//! how a user frees space), and once there is room again writes work again. Two things make that
//! possible:
//!
//! - **A reserve file** (`space.reserve` in the data directory, [`DEFAULT_RESERVE_BYTES`]) holds
//!   real blocks while all is well. The first `ENOSPC` from any store puts the process into the
//!   *full* state and removes the reserve, so the metadata store's copy-on-write commits for
//!   deletes, and its reopen after the failed write, find the pages they need.
//! - **While full, writes that would grow the data are refused before they start**
//!   ([`check_writable`]; the metadata store refuses transactions that add more bytes than they
//!   remove), so the reserve's space is not eaten by the very writes that filled the disk.
//!
//! Leaving the full state: at most once a second, a caller that meets it checks the
//! filesystem's free space; once twice the reserve is free, the reserve is written again and
//! writes are admitted.
//!
//! Why process-wide state and not a handle passed to every store: one Lakebox process owns one
//! data directory (its lock file sees to that), so "the disk is full" is a fact about the
//! process. Stores opened without [`configure`] (unit tests, tools) still enter the full state
//! on `ENOSPC` and leave it when space returns; they just have no reserve to release.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{Result, StoreError};

/// Space kept back for deletes and metadata repair once the disk is full.
pub const DEFAULT_RESERVE_BYTES: u64 = 32 * 1024 * 1024;

/// The reserve file's name in the data directory.
pub const RESERVE_FILE: &str = "space.reserve";

/// How often a caller that meets the full state may check whether space has come back.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

static FULL: AtomicBool = AtomicBool::new(false);

struct Config {
    dir: PathBuf,
    reserve_bytes: u64,
    last_check: Option<Instant>,
}

static CONFIG: Mutex<Option<Config>> = Mutex::new(None);

/// Sets up the reserve for the data directory `dir`: writes it if it is missing (or short), and
/// starts in the full state if the disk has no room for it. Call once at startup, before the
/// stores open.
pub fn configure(dir: &Path, reserve_bytes: u64) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    *CONFIG.lock().unwrap() = Some(Config {
        dir: dir.to_owned(),
        reserve_bytes,
        last_check: None,
    });
    match write_reserve(dir, reserve_bytes) {
        Ok(()) => {
            FULL.store(false, Ordering::SeqCst);
            Ok(())
        }
        Err(e) if is_out_of_space(&e) => {
            let _ = fs::remove_file(dir.join(RESERVE_FILE));
            FULL.store(true, Ordering::SeqCst);
            tracing::warn!(
                dir = %dir.display(),
                "the disk holding the data directory is full: serving reads and deletes; writes resume once space is freed"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether the disk is full (writes that grow the data are refused). Meeting the full state
/// also checks, at most once a second, whether space has come back.
pub fn is_full() -> bool {
    if !FULL.load(Ordering::Acquire) {
        return false;
    }
    try_leave_full();
    FULL.load(Ordering::Acquire)
}

/// `Err(StoreError::Full)` while the disk is full: for writes that add data.
pub fn check_writable() -> Result<()> {
    if is_full() { Err(StoreError::Full) } else { Ok(()) }
}

/// Whether `e` means the filesystem (or the user's quota) has no room.
pub fn is_out_of_space(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(28)
}

/// Whether an error a service holds (a [`StoreError`] or an [`io::Error`], by value) is the
/// full disk, which services answer as unavailable rather than as an internal failure.
pub fn is_full_error(e: &dyn std::any::Any) -> bool {
    if let Some(e) = e.downcast_ref::<StoreError>() {
        return match e {
            StoreError::Full => true,
            StoreError::Io(io) => is_out_of_space(io),
            _ => false,
        };
    }
    e.downcast_ref::<io::Error>().is_some_and(is_out_of_space)
}

/// Looks at an I/O error from a store: on "no space", enters the full state (releasing the
/// reserve) and answers `true`.
pub fn note(e: &io::Error) -> bool {
    if !is_out_of_space(e) {
        return false;
    }
    if !FULL.swap(true, Ordering::AcqRel) {
        let mut config = CONFIG.lock().unwrap();
        if let Some(c) = config.as_mut() {
            let _ = fs::remove_file(c.dir.join(RESERVE_FILE));
            c.last_check = Some(Instant::now());
        }
        tracing::warn!(
            "the disk holding the data directory is full: refusing writes that add data, serving reads and deletes; writes resume once space is freed"
        );
    }
    true
}

/// An I/O error turned into the store's error: `Full` when it means no space (entering the
/// full state), `Io` otherwise.
pub fn io_error(e: io::Error) -> StoreError {
    if note(&e) {
        StoreError::Full
    } else {
        StoreError::Io(e)
    }
}

fn try_leave_full() {
    let mut config = CONFIG.lock().unwrap();
    let now = Instant::now();
    let (dir, reserve) = match config.as_mut() {
        Some(c) => {
            if c.last_check
                .is_some_and(|t| now.duration_since(t) < RECHECK_EVERY)
            {
                return;
            }
            c.last_check = Some(now);
            (Some(c.dir.clone()), c.reserve_bytes)
        }
        None => (None, 0),
    };
    let Some(dir) = dir else {
        // No reserve to restore: leave the state and let the next write find out.
        FULL.store(false, Ordering::Release);
        return;
    };
    match available_bytes(&dir) {
        Ok(free) if free >= reserve.saturating_mul(2).max(1024 * 1024) => {}
        _ => return,
    }
    match write_reserve(&dir, reserve) {
        Ok(()) => {
            FULL.store(false, Ordering::Release);
            tracing::info!("disk space is available again: writes are admitted");
        }
        Err(e) => {
            let _ = fs::remove_file(dir.join(RESERVE_FILE));
            tracing::debug!(error = %e, "space not back yet");
        }
    }
}

/// Writes the reserve with real blocks (allocated, not a sparse `set_len`, which would hold
/// no space) and makes it durable.
fn write_reserve(dir: &Path, bytes: u64) -> io::Result<()> {
    let path = dir.join(RESERVE_FILE);
    if bytes == 0 {
        let _ = fs::remove_file(&path);
        return Ok(());
    }
    if fs::metadata(&path).is_ok_and(|m| m.len() == bytes) {
        return Ok(());
    }
    let result = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        allocate(&mut f, bytes)?;
        f.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&path);
    }
    result
}

/// Gives `f` `bytes` of real blocks: `fallocate` where the filesystem has it (instant), zeros
/// written where it has not.
fn allocate(f: &mut std::fs::File, bytes: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "reserve too large"))?;
    // SAFETY: the descriptor is open for writing for the duration of the call.
    if unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(e);
    }
    let chunk = vec![0u8; 1024 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
fn available_bytes(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is a properly sized out-parameter
    // that statvfs fills completely when it returns 0.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    // The field types differ between platforms (u32 on some 32-bit targets).
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}
