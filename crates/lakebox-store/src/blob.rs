//! Atomic whole-file writes.
//!
//! A blob is written under a temporary name in its final directory, fsynced, renamed over the
//! final name and the directory fsynced, so after a crash a reader sees the old file or the new
//! one in full. Temporary files left by a crash carry [`TEMP_MARKER`] and are removed by
//! [`remove_stale_temp_files`] at startup.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Result;

/// Part of every temporary file name; nothing else may use it.
pub const TEMP_MARKER: &str = ".lakebox-tmp-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Fsyncs a directory, making renames and creations inside it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `data` to `path` atomically and durably.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let mut w = BlobWriter::create(path)?;
    w.write_all(data)?;
    w.commit()
}

/// Streams a blob to disk in chunks; nothing is visible at the final path until
/// [`commit`](BlobWriter::commit). Dropping an uncommitted writer removes its temporary file.
pub struct BlobWriter {
    file: Option<File>,
    temp: PathBuf,
    dest: PathBuf,
    written: u64,
    committed: bool,
}

impl BlobWriter {
    /// Starts a blob; refused with [`StoreError::Full`](crate::StoreError::Full) while the disk
    /// is full.
    pub fn create(dest: &Path) -> Result<Self> {
        crate::space::check_writable()?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
        let temp = dir.join(format!(
            "{name}{TEMP_MARKER}{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        Ok(BlobWriter {
            file: Some(file),
            temp,
            dest: dest.to_owned(),
            written: 0,
            committed: false,
        })
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Makes the blob durable and visible at its final path.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("file is present until commit");
        file.sync_all()?;
        drop(file);
        fs::rename(&self.temp, &self.dest)?;
        self.committed = true;
        sync_dir(self.dest.parent().unwrap_or(Path::new(".")))?;
        Ok(())
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self
            .file
            .as_mut()
            .expect("file is present until commit")
            .write(buf)
            .inspect_err(|e| {
                crate::space::note(e);
            })?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("file is present until commit").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // Also after a failed commit: a partial temporary file must not hold space on a disk
        // that may be full.
        if !self.committed {
            self.file.take();
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Removes temporary files a crash left behind under `root` (recursively). Returns how many.
pub fn remove_stale_temp_files(root: &Path) -> Result<usize> {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(root) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let ty = entry.file_type()?;
        if ty.is_dir() {
            removed += remove_stale_temp_files(&path)?;
        } else if entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/obj");
        write_atomic(&p, b"first version").unwrap();
        write_atomic(&p, b"v2").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"v2");
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn uncommitted_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("obj");
        write_atomic(&p, b"old").unwrap();
        {
            let mut w = BlobWriter::create(&p).unwrap();
            w.write_all(b"partial new content").unwrap();
            assert_eq!(w.bytes_written(), 19);
        }
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temp_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join(format!("a/b/x{TEMP_MARKER}1-1")), b"junk").unwrap();
        fs::write(dir.path().join("a/keep"), b"data").unwrap();
        assert_eq!(remove_stale_temp_files(dir.path()).unwrap(), 1);
        assert!(dir.path().join("a/keep").exists());
    }
}
