//! An execution environment's own view of the file system, where the system allows it: a
//! mount namespace (entered directly by root, else inside a user namespace) in which `/tmp` is
//! the environment's own tmpfs of `EphemeralStorage` megabytes (writes past it fail with
//! ENOSPC, as on AWS) and the function's merged layers are at `/opt`, read-only.
//!
//! When the data directory or the runtime's interpreter lives under the machine's `/tmp` (test
//! runs, `--ephemeral`), hiding it would hide the function's own code: `/tmp` is then an overlay
//! whose writes go to the environment's tmpfs and whose reads fall through to the machine's.
//!
//! Everything here that runs in the child does so between fork and exec: only system calls on
//! strings prepared beforehand, nothing allocated. A system without mount namespaces (not
//! Linux, user namespaces disabled, a container without the privilege) makes the spawn fail;
//! the caller then runs environments without a sandbox, as before, and says so once.

use std::ffi::CString;
use std::io;
use std::path::Path;

/// What one environment's child sets up before it runs the runtime.
#[derive(Clone)]
pub struct Sandbox {
    /// tmpfs options for the environment's `/tmp`.
    tmp_options: CString,
    /// With an overlay: the environment's directory that holds the tmpfs, its upper and work
    /// directories, and the overlay's options.
    overlay: Option<Overlay>,
    /// The merged layers, bound at `/opt` (when the machine has an `/opt` to bind over).
    opt: Option<(CString, libc::c_ulong)>,
    uid_map: CString,
    gid_map: CString,
}

#[derive(Clone)]
struct Overlay {
    dir: CString,
    upper: CString,
    work: CString,
    options: CString,
}

fn cstr(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::other("a path holds a NUL"))
}

impl Sandbox {
    /// `tmp_dir` is the environment's directory in Lakebox's data; `keep_host_tmp` says the
    /// machine's `/tmp` holds something the environment needs.
    pub fn new(
        tmp_dir: &Path,
        size_mb: u32,
        opt_dir: Option<&Path>,
        keep_host_tmp: bool,
    ) -> io::Result<Sandbox> {
        let overlay = if keep_host_tmp {
            let text = tmp_dir.to_string_lossy();
            // Overlay options separate with ',' and ':'; such a path cannot be named.
            if text.contains([',', ':', '\\']) {
                return Err(io::Error::other(
                    "the data directory's path cannot name an overlay",
                ));
            }
            Some(Overlay {
                dir: cstr(tmp_dir)?,
                upper: cstr(&tmp_dir.join("upper"))?,
                work: cstr(&tmp_dir.join("work"))?,
                options: CString::new(format!("lowerdir=/tmp,upperdir={text}/upper,workdir={text}/work"))?,
            })
        } else {
            None
        };
        let opt = match opt_dir {
            Some(dir) if Path::new("/opt").is_dir() => Some((cstr(dir)?, locked_flags(dir)?)),
            _ => None,
        };
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Ok(Sandbox {
            tmp_options: CString::new(format!("size={size_mb}m,mode=1777"))?,
            overlay,
            opt,
            uid_map: CString::new(format!("{uid} {uid} 1"))?,
            gid_map: CString::new(format!("{gid} {gid} 1"))?,
        })
    }

    /// Where the environment finds its layers: `/opt` when they are bound there.
    pub fn binds_opt(&self) -> bool {
        self.opt.is_some()
    }

    /// Enters the namespaces and mounts. Runs in the child between fork and exec.
    ///
    /// # Safety
    /// Only in a `pre_exec` hook: it changes the calling process's namespaces.
    pub unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY (the whole body): system calls on NUL-terminated strings owned by `self`.
        unsafe {
            if libc::geteuid() != 0 || libc::unshare(libc::CLONE_NEWNS) != 0 {
                check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS))?;
                // The same ids inside as outside, so files keep their owners; the namespace's
                // capabilities last until exec, long enough to mount.
                write_file(c"/proc/self/setgroups", c"deny")?;
                write_file(c"/proc/self/uid_map", &self.uid_map)?;
                write_file(c"/proc/self/gid_map", &self.gid_map)?;
            }
            // Nothing mounted here propagates back to the machine.
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            let tmpfs_flags = libc::MS_NOSUID | libc::MS_NODEV;
            match &self.overlay {
                None => check(libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/tmp".as_ptr(),
                    c"tmpfs".as_ptr(),
                    tmpfs_flags,
                    self.tmp_options.as_ptr().cast(),
                ))?,
                Some(o) => {
                    check(libc::mount(
                        c"tmpfs".as_ptr(),
                        o.dir.as_ptr(),
                        c"tmpfs".as_ptr(),
                        tmpfs_flags,
                        self.tmp_options.as_ptr().cast(),
                    ))?;
                    check(libc::mkdir(o.upper.as_ptr(), 0o1777))?;
                    check(libc::chmod(o.upper.as_ptr(), 0o1777))?;
                    check(libc::mkdir(o.work.as_ptr(), 0o700))?;
                    check(libc::mount(
                        c"overlay".as_ptr(),
                        c"/tmp".as_ptr(),
                        c"overlay".as_ptr(),
                        0,
                        o.options.as_ptr().cast(),
                    ))?;
                }
            }
            if let Some((opt, locked)) = &self.opt {
                check(libc::mount(
                    opt.as_ptr(),
                    c"/opt".as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
                // Read-only, as AWS's /opt; a remount must repeat the flags the source's mount
                // has locked (nosuid, nodev, noexec), or a user namespace may not make it.
                check(libc::mount(
                    std::ptr::null(),
                    c"/opt".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked,
                    std::ptr::null(),
                ))?;
            }
        }
        Ok(())
    }
}

/// The mount flags of the file system holding `dir` that a bind remount must keep.
fn locked_flags(dir: &Path) -> io::Result<libc::c_ulong> {
    let path = cstr(dir)?;
    // SAFETY: statvfs writes into the zeroed struct it is given.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        check(libc::statvfs(path.as_ptr(), &mut st))?;
        st
    };
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

/// The child ends when Lakebox does, however Lakebox ends (even SIGKILL). Runs in the child
/// between fork and exec, after any namespace change (entering one clears the setting).
///
/// # Safety
/// Only in a `pre_exec` hook.
pub unsafe fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: prctl and getppid on the calling process.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        if libc::getppid() != parent {
            // Lakebox ended before the setting took.
            libc::_exit(1);
        }
    }
    Ok(())
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `text` to `path` with bare system calls.
unsafe fn write_file(path: &std::ffi::CStr, text: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: open, write and close on a NUL-terminated path and a byte slice.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let bytes = text.to_bytes();
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let err = io::Error::last_os_error();
        libc::close(fd);
        if n != bytes.len() as isize {
            return Err(err);
        }
    }
    Ok(())
}
