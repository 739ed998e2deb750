//! Function packages: the zip kept durably by its SHA-256, and unpacked beside it for the
//! execution environments to run (the unpacked tree is a cache, rebuilt from the zip).

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use lakebox_core::ServiceError;
use sha2::{Digest, Sha256};

/// AWS's limits on a package: 50 MB zipped when uploaded directly, 250 MB unzipped.
pub const MAX_ZIPPED: u64 = 50 * 1024 * 1024;
pub const MAX_UNZIPPED: u64 = 250 * 1024 * 1024;

/// A stored package.
#[derive(Debug, Clone)]
pub struct Package {
    /// Hex SHA-256: the file name of the zip and of its unpacked directory.
    pub hex: String,
    /// `CodeSha256` as Lambda reports it: base64 of the SHA-256.
    pub sha256_b64: String,
    pub size: i64,
}

pub struct CodeStore {
    dir: PathBuf,
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidParameterValueException", message).with_extra("Type", "User")
}

impl CodeStore {
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        // Merged layer trees are a cache, rebuilt when first needed.
        let _ = std::fs::remove_dir_all(dir.join("opt"));
        Ok(CodeStore { dir })
    }

    /// The tree of `layers` (package hashes) merged in order, later ones over earlier ones, as
    /// AWS merges a function's layers under `/opt`; built once per combination.
    pub fn layered(&self, layers: &[String]) -> Result<PathBuf, ServiceError> {
        let key = hex::encode(Sha256::digest(layers.join(",").as_bytes()));
        let dest = self.dir.join("opt").join(&key);
        if dest.is_dir() {
            return Ok(dest);
        }
        let tmp = self
            .dir
            .join("opt")
            .join(format!("{key}.merging-{}", uuid::Uuid::new_v4()));
        let result = layers
            .iter()
            .try_for_each(|hex| {
                let zip = self
                    .read_zip(hex)
                    .map_err(|e| ServiceError::internal(format!("reading layer {hex}: {e}")))?;
                unpack(&zip, &tmp)
            })
            .and_then(|()| std::fs::rename(&tmp, &dest).map_err(|e| invalid(e.to_string())));
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
            if dest.is_dir() {
                return Ok(dest); // another environment merged it first
            }
        }
        result.map(|()| dest)
    }

    /// Checks that `zip` is a package Lambda accepts, keeps it durably (fsynced) and unpacks it.
    pub fn put(&self, zip: &[u8]) -> Result<Package, ServiceError> {
        if zip.len() as u64 > MAX_ZIPPED {
            return Err(ServiceError::new(
                "RequestEntityTooLargeException",
                413,
                format!("Request must be smaller than {MAX_ZIPPED} bytes for the CreateFunction operation"),
            )
            .with_extra("Type", "User"));
        }
        let unzipped = unzipped_size(zip)?;
        if unzipped > MAX_UNZIPPED {
            return Err(invalid(format!(
                "Unzipped size must be smaller than {MAX_UNZIPPED} bytes"
            )));
        }
        let digest = Sha256::digest(zip);
        let hex = hex::encode(digest);
        let path = self.zip_path(&hex);
        if !path.exists() {
            lakebox_store::blob::write_atomic(&path, zip)
                .map_err(|e| ServiceError::internal(e.to_string()))?;
        }
        if let Err(e) = self.unpacked(&hex) {
            // A package that cannot be unpacked is refused, and not kept.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(Package {
            sha256_b64: base64::engine::general_purpose::STANDARD.encode(digest),
            size: zip.len() as i64,
            hex,
        })
    }

    pub fn zip_path(&self, hex: &str) -> PathBuf {
        self.dir.join(format!("{hex}.zip"))
    }

    pub fn read_zip(&self, hex: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.zip_path(hex))
    }

    /// The unpacked tree of a stored package, unpacking it first if it is not there (after a
    /// crash between the zip's fsync and the unpacking, or a cleaned cache).
    pub fn unpacked(&self, hex: &str) -> Result<PathBuf, ServiceError> {
        let dest = self.dir.join(hex);
        if dest.is_dir() {
            return Ok(dest);
        }
        let zip = self
            .read_zip(hex)
            .map_err(|e| ServiceError::internal(format!("reading package {hex}: {e}")))?;
        // Unpack beside the destination and rename it into place, so a tree is whole or absent.
        let tmp = self.dir.join(format!("{hex}.unpacking-{}", uuid::Uuid::new_v4()));
        let result = unpack(&zip, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &dest).map_err(|e| invalid(e.to_string())));
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
            if dest.is_dir() {
                return Ok(dest); // another request unpacked it first
            }
        }
        result.map(|()| dest)
    }

    /// Forgets a package no function uses any more.
    pub fn remove(&self, hex: &str) {
        let _ = std::fs::remove_file(self.zip_path(hex));
        let _ = std::fs::remove_dir_all(self.dir.join(hex));
    }
}

fn archive(zip: &[u8]) -> Result<zip::ZipArchive<std::io::Cursor<&[u8]>>, ServiceError> {
    zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|_| {
        invalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
    })
}

fn unzipped_size(zip: &[u8]) -> Result<u64, ServiceError> {
    let mut a = archive(zip)?;
    let mut total = 0u64;
    for i in 0..a.len() {
        let f = a.by_index(i).map_err(|_| {
            invalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
        })?;
        total = total.saturating_add(f.size());
    }
    Ok(total)
}

fn unpack(zip: &[u8], dest: &Path) -> Result<(), ServiceError> {
    let bad = || invalid("Could not unzip uploaded file. Please check your file, then try to upload again.");
    let mut a = archive(zip)?;
    std::fs::create_dir_all(dest).map_err(|e| ServiceError::internal(e.to_string()))?;
    for i in 0..a.len() {
        let mut f = a.by_index(i).map_err(|_| bad())?;
        // `enclosed_name` refuses entries that would land outside the tree (`../x`, `/etc/x`).
        let Some(rel) = f.enclosed_name() else {
            return Err(bad());
        };
        let path = dest.join(rel);
        if f.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| ServiceError::internal(e.to_string()))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ServiceError::internal(e.to_string()))?;
        }
        let mut data = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut data).map_err(|_| bad())?;
        // A later layer replaces an earlier one's file (which may be read-only).
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, &data).map_err(|e| ServiceError::internal(e.to_string()))?;
        // Keep the executable bit (a custom runtime's `bootstrap`); files without a mode (zips
        // made on Windows) are readable and executable, as Lambda makes them.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = f
                .unix_mode()
                .map(|m| m & 0o777)
                .filter(|m| *m != 0)
                .unwrap_or(0o755)
                | 0o444;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn stores_by_hash_and_unpacks() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path().join("code")).unwrap();
        let zip = zip_of(&[("app.py", b"x = 1\n"), ("pkg/mod.py", b"y = 2\n")]);
        let p = store.put(&zip).unwrap();
        assert_eq!(p.size, zip.len() as i64);
        let tree = store.unpacked(&p.hex).unwrap();
        assert_eq!(std::fs::read(tree.join("pkg/mod.py")).unwrap(), b"y = 2\n");
        // A lost tree is rebuilt from the zip.
        std::fs::remove_dir_all(&tree).unwrap();
        assert!(store.unpacked(&p.hex).unwrap().join("app.py").is_file());
    }

    #[test]
    fn refuses_what_is_not_a_zip_and_entries_outside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path().join("code")).unwrap();
        let e = store.put(b"not a zip").unwrap_err();
        assert_eq!(e.code, "InvalidParameterValueException");
        let evil = zip_of(&[("../escape.py", b"x")]);
        assert!(store.put(&evil).is_err());
        assert!(!dir.path().join("escape.py").exists());
    }
}
