//! Mount primitives for the container's setup. Each failure says what was being mounted
//! where, with the kernel's reason.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::StepError;

pub(crate) fn cpath(path: &Path) -> Result<CString, StepError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| StepError::step(format!("path {} contains a NUL byte", path.display())))
}

fn cstr(s: &str) -> CString {
    // Only called with literals and option strings petrel builds, which hold no NUL.
    CString::new(s).unwrap_or_default()
}

/// `mount(2)`; `what` names the step in errors ("mounting proc").
pub(crate) fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
    what: &str,
) -> Result<(), StepError> {
    let src = source.map(cpath).transpose()?;
    let tgt = cpath(target)?;
    let fs = fstype.map(cstr);
    let dat = data.map(cstr);
    // SAFETY: every pointer is either null or a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            tgt.as_ptr(),
            fs.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            dat.as_ref().map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc != 0 {
        return Err(StepError::os(format_args!(
            "{what} at {}",
            target.display()
        )));
    }
    Ok(())
}

/// Bind-mounts `source` on `target` (recursively, so submounts come along).
pub(crate) fn bind(source: &Path, target: &Path, what: &str) -> Result<(), StepError> {
    mount(
        Some(source),
        target,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        what,
    )
}

pub(crate) const ATTR_RDONLY: u64 = 0x1;
pub(crate) const ATTR_NOSUID: u64 = 0x2;
pub(crate) const ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Adds mount attributes (read-only, nosuid, nodev) to the mount at `target`, and with
/// `recursive` to every mount below it.
///
/// `mount_setattr(2)` (Linux 5.12) changes only the named attributes, so flags the kernel
/// locked on a mount that came from a more privileged namespace are left alone. Older
/// kernels get a bind remount that carries those flags over from `statvfs`.
pub(crate) fn add_attrs(
    target: &Path,
    attrs: u64,
    recursive: bool,
    what: &str,
) -> Result<(), StepError> {
    let tgt = cpath(target)?;
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: tgt is a valid C string and attr a properly sized, initialised struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            tgt.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    if std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
        return Err(StepError::os(format_args!(
            "{what} at {}",
            target.display()
        )));
    }
    remount_with_attrs(target, &tgt, attrs, what)
}

fn remount_with_attrs(
    target: &Path,
    tgt: &CString,
    attrs: u64,
    what: &str,
) -> Result<(), StepError> {
    // SAFETY: statvfs is plain data; zeroed is a valid initial value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: tgt is a valid C string and st a valid out-pointer.
    if unsafe { libc::statvfs(tgt.as_ptr(), &mut st) } != 0 {
        return Err(StepError::os(format_args!("statvfs {}", target.display())));
    }
    let mut flags = libc::MS_BIND | libc::MS_REMOUNT;
    let carry = [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    for (st_flag, ms_flag) in carry {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    if attrs & ATTR_RDONLY != 0 {
        flags |= libc::MS_RDONLY;
    }
    if attrs & ATTR_NOSUID != 0 {
        flags |= libc::MS_NOSUID;
    }
    if attrs & ATTR_NODEV != 0 {
        flags |= libc::MS_NODEV;
    }
    mount(None, target, None, flags, None, what)
}
