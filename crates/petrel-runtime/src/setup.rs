//! The container's setup as one ordered list of steps.
//!
//! The caller turns a [`ContainerSpec`] into a [`Plan`] (checking everything it can on the
//! host first, so most mistakes are reported before any namespace exists); the container's
//! init then runs the plan once, in order, with [`execute`]. As in bubblewrap, reading the
//! list is reading what the container gets:
//!
//! 1. the root: the image bind-mounted on itself, or an overlay with a writable layer;
//! 2. a fresh `/proc` for the new pid namespace;
//! 3. a minimal `/dev`: a tmpfs with the host's null, zero, full, random, urandom and tty
//!    bound in, a private devpts instance with `ptmx`, `shm` and `mqueue`;
//! 4. `/sys` read-only (a fresh sysfs with a private network, else the host's);
//! 5. `/tmp` as a tmpfs;
//! 6. the job scratch directory at the target dir, then the caller's bind mounts;
//! 7. `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` where the image lacks them;
//! 8. the root made nosuid and nodev, and read-only unless the caller asked for a writable
//!    layer (an overlay petrel adds only to create missing mount points stays read-only);
//! 9. `pivot_root` into it, with the old root detached;
//! 10. hostname and loopback interface.
//!
//! Mount targets are resolved inside the new root, following the image's symlinks as if
//! the root were `/`, so an image cannot point a mount at a host path.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{RuntimeError, StepError};
use crate::mounts::{self, ATTR_NODEV, ATTR_NOSUID, ATTR_RDONLY};
use crate::spec::{ContainerSpec, NetMode, Overlay};

/// One setup step; see the module docs for their order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    BindRoot {
        rootfs: PathBuf,
    },
    OverlayRoot {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
    },
    Proc,
    Dev,
    Sys {
        fresh: bool,
    },
    Tmpfs {
        target: String,
    },
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        /// Skip quietly when the target cannot be made (optional `/etc` files).
        optional: bool,
    },
    RootAttrs {
        read_only: bool,
    },
    PivotRoot,
    Hostname(String),
    LoopbackUp,
}

/// The ordered steps and where the new root is mounted.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) newroot: PathBuf,
    pub(crate) ops: Vec<Op>,
    /// Whether missing mount points may be created (the root is writable: an overlay).
    pub(crate) writable_root: bool,
}

/// Where the overlay is mounted and its layers live, inside the per-run state directory.
pub(crate) struct OverlayDirs {
    pub(crate) mount: PathBuf,
    pub(crate) upper: PathBuf,
    pub(crate) work: PathBuf,
}

/// Mount points the read-only image lacks; each one makes the plan add an overlay.
pub(crate) fn missing_mount_points(spec: &ContainerSpec) -> Vec<String> {
    let mut needed: Vec<&str> = vec!["/proc", "/dev"];
    if spec.scratch.is_some() {
        needed.push(&spec.target_dir);
    }
    needed.extend(spec.binds.iter().map(|b| b.target.as_str()));
    if spec.hostname.is_some() {
        needed.push("/etc/hostname");
    }
    needed
        .into_iter()
        .filter(|t| fs::symlink_metadata(resolve_in_root(&spec.rootfs, t)).is_err())
        .map(str::to_string)
        .collect()
}

/// Builds the plan. `overlay` is where the writable layer goes, when there is one.
pub(crate) fn plan(
    spec: &ContainerSpec,
    overlay: Option<&OverlayDirs>,
    hostname_file: Option<&Path>,
) -> Result<Plan, RuntimeError> {
    let mut ops = Vec::new();
    let newroot = match overlay {
        Some(dirs) => {
            ops.push(Op::OverlayRoot {
                lower: spec.rootfs.clone(),
                upper: dirs.upper.clone(),
                work: dirs.work.clone(),
            });
            dirs.mount.clone()
        }
        None => {
            ops.push(Op::BindRoot {
                rootfs: spec.rootfs.clone(),
            });
            spec.rootfs.clone()
        }
    };
    ops.push(Op::Proc);
    ops.push(Op::Dev);
    ops.push(Op::Sys {
        fresh: spec.net == NetMode::None,
    });
    ops.push(Op::Tmpfs {
        target: "/tmp".into(),
    });
    if let Some(scratch) = &spec.scratch {
        ops.push(Op::Bind {
            source: existing_dir(scratch, "scratch directory")?,
            target: spec.target_dir.clone(),
            read_only: false,
            optional: false,
        });
    }
    for bind in &spec.binds {
        let source = fs::canonicalize(&bind.source).map_err(|e| {
            RuntimeError::InvalidSpec(format!("bind source {}: {e}", bind.source.display()))
        })?;
        ops.push(Op::Bind {
            source,
            target: bind.target.clone(),
            read_only: bind.read_only,
            optional: false,
        });
    }
    ops.extend(etc_files(spec, hostname_file));
    // An overlay petrel added only to create mount points still leaves the image read-only.
    ops.push(Op::RootAttrs {
        read_only: spec.overlay == Overlay::None,
    });
    ops.push(Op::PivotRoot);
    if let Some(name) = &spec.hostname {
        ops.push(Op::Hostname(name.clone()));
    }
    if spec.net == NetMode::None {
        ops.push(Op::LoopbackUp);
    }
    Ok(Plan {
        newroot,
        ops,
        writable_root: overlay.is_some(),
    })
}

fn existing_dir(path: &Path, what: &str) -> Result<PathBuf, RuntimeError> {
    let canonical = fs::canonicalize(path)
        .map_err(|e| RuntimeError::InvalidSpec(format!("{what} {}: {e}", path.display())))?;
    if !canonical.is_dir() {
        return Err(RuntimeError::InvalidSpec(format!(
            "{what} {} is not a directory",
            path.display()
        )));
    }
    Ok(canonical)
}

/// `/etc/hostname` when the caller names a host, and the host's `/etc/hosts` and
/// `/etc/resolv.conf` when the image has none (or an empty one) of its own.
fn etc_files(spec: &ContainerSpec, hostname_file: Option<&Path>) -> Vec<Op> {
    let mut ops = Vec::new();
    if let Some(file) = hostname_file {
        ops.push(Op::Bind {
            source: file.to_path_buf(),
            target: "/etc/hostname".into(),
            read_only: true,
            // An unprivileged user cannot create it in an image owned by root.
            optional: true,
        });
    }
    let mut from_host = vec!["/etc/hosts"];
    if spec.net == NetMode::Host {
        from_host.push("/etc/resolv.conf");
    }
    for target in from_host {
        let in_image = resolve_in_root(&spec.rootfs, target);
        let image_has_it = fs::metadata(&in_image)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        if image_has_it {
            continue;
        }
        if let Ok(source) = fs::canonicalize(target) {
            ops.push(Op::Bind {
                source,
                target: target.into(),
                read_only: true,
                optional: true,
            });
        }
    }
    ops
}

/// Resolves `path` inside `root` as if `root` were `/`: symlinks are followed relative to
/// `root`, and `..` never climbs above it. Components that do not exist are kept as they
/// are. The result is a host path under `root`.
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<String> = components(path).into_iter().rev().collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let host = root.join(&candidate);
        match fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() && links < 40 => {
                links += 1;
                let Ok(target) = fs::read_link(&host) else {
                    resolved = candidate;
                    continue;
                };
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved = PathBuf::new();
                }
                pending.extend(components(&target).into_iter().rev());
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Runs the plan inside the new namespaces (in the container's init).
pub(crate) fn execute(plan: &Plan) -> Result<(), StepError> {
    mounts::mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_SLAVE,
        None,
        "making the mount tree private",
    )?;
    let root = &plan.newroot;
    for op in &plan.ops {
        match op {
            Op::BindRoot { rootfs } => mounts::bind(rootfs, rootfs, "binding the root filesystem")?,
            Op::OverlayRoot { lower, upper, work } => overlay_root(lower, upper, work, root)?,
            Op::Proc => {
                let target = mount_point(plan, "/proc", true)?;
                mounts::mount(
                    Some(Path::new("proc")),
                    &target,
                    Some("proc"),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    None,
                    "mounting proc",
                )?;
            }
            Op::Dev => dev(&mount_point(plan, "/dev", true)?)?,
            Op::Sys { fresh } => {
                if let Ok(target) = mount_point(plan, "/sys", true) {
                    if let Err(e) = sys(&target, *fresh) {
                        tracing::debug!("no /sys in the container: {}", e.message);
                    }
                }
            }
            Op::Tmpfs { target } => {
                if let Ok(path) = mount_point(plan, target, true) {
                    mounts::mount(
                        Some(Path::new("tmpfs")),
                        &path,
                        Some("tmpfs"),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        Some("mode=1777"),
                        "mounting a tmpfs",
                    )?;
                }
            }
            Op::Bind {
                source,
                target,
                read_only,
                optional,
            } => {
                let path = match mount_point(plan, target, source.is_dir()) {
                    Ok(path) => path,
                    Err(_) if *optional => continue,
                    Err(e) => return Err(e),
                };
                mounts::bind(source, &path, &format!("binding {}", source.display()))?;
                let mut attrs = ATTR_NOSUID | ATTR_NODEV;
                if *read_only {
                    attrs |= ATTR_RDONLY;
                }
                mounts::add_attrs(&path, attrs, true, "restricting a bind mount")?;
            }
            Op::RootAttrs { read_only } => {
                let mut attrs = ATTR_NOSUID | ATTR_NODEV;
                if *read_only {
                    attrs |= ATTR_RDONLY;
                }
                mounts::add_attrs(root, attrs, false, "making the root filesystem read-only")?;
            }
            Op::PivotRoot => pivot_root(root)?,
            Op::Hostname(name) => {
                // SAFETY: name points to name.len() valid bytes.
                if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
                    return Err(StepError::os(format_args!(
                        "setting the hostname to {name}"
                    )));
                }
            }
            Op::LoopbackUp => loopback_up()?,
        }
    }
    Ok(())
}

/// The host path of a mount point inside the new root; creates it on a writable root.
fn mount_point(plan: &Plan, target: &str, is_dir: bool) -> Result<PathBuf, StepError> {
    let path = resolve_in_root(&plan.newroot, target);
    if fs::symlink_metadata(&path).is_ok() {
        return Ok(path);
    }
    if !plan.writable_root {
        return Err(StepError::step(format!(
            "mount point {target} does not exist in the read-only image (use --writable)"
        )));
    }
    let made = if is_dir {
        fs::create_dir_all(&path)
    } else {
        path.parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::File::create(&path).map(drop))
    };
    made.map_err(|e| StepError::step(format!("creating mount point {target} in the image: {e}")))?;
    Ok(path)
}

/// Escapes a path for overlayfs's comma- and colon-separated options.
fn overlay_escape(path: &Path) -> String {
    let mut out = String::new();
    for ch in path.to_string_lossy().chars() {
        if matches!(ch, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn overlay_root(lower: &Path, upper: &Path, work: &Path, target: &Path) -> Result<(), StepError> {
    let base = format!(
        "lowerdir={},upperdir={},workdir={}",
        overlay_escape(lower),
        overlay_escape(upper),
        overlay_escape(work)
    );
    let flags = libc::MS_NOSUID | libc::MS_NODEV;
    let what = "mounting the writable overlay";
    // Inside a user namespace overlayfs needs `userxattr` (Linux 5.11+); older kernels
    // allow overlay only to real root, which takes the plain form.
    let with_userxattr = format!("{base},userxattr");
    mounts::mount(
        Some(Path::new("overlay")),
        target,
        Some("overlay"),
        flags,
        Some(&with_userxattr),
        what,
    )
    .or_else(|_| {
        mounts::mount(
            Some(Path::new("overlay")),
            target,
            Some("overlay"),
            flags,
            Some(&base),
            what,
        )
    })
}

const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn dev(dev: &Path) -> Result<(), StepError> {
    mounts::mount(
        Some(Path::new("tmpfs")),
        dev,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("mode=0755,size=65536k"),
        "mounting /dev",
    )?;
    let io = |what: &str, e: std::io::Error| StepError::step(format!("{what} in /dev: {e}"));
    for name in DEVICES {
        let node = dev.join(name);
        fs::File::create(&node).map_err(|e| io("creating a device mount point", e))?;
        mounts::mount(
            Some(&Path::new("/dev").join(name)),
            &node,
            None,
            libc::MS_BIND,
            None,
            "binding a device",
        )?;
    }
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    for (name, target) in links {
        std::os::unix::fs::symlink(target, dev.join(name)).map_err(|e| io("creating a link", e))?;
    }
    for sub in ["pts", "shm", "mqueue"] {
        fs::create_dir(dev.join(sub)).map_err(|e| io("creating a directory", e))?;
    }
    mounts::mount(
        Some(Path::new("devpts")),
        &dev.join("pts"),
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
        "mounting devpts",
    )?;
    mounts::mount(
        Some(Path::new("shm")),
        &dev.join("shm"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
        "mounting /dev/shm",
    )?;
    if let Err(e) = mounts::mount(
        Some(Path::new("mqueue")),
        &dev.join("mqueue"),
        Some("mqueue"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
        "mounting /dev/mqueue",
    ) {
        tracing::debug!("{}", e.message);
    }
    Ok(())
}

fn sys(target: &Path, fresh: bool) -> Result<(), StepError> {
    let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // A fresh sysfs needs the network namespace to belong to the container's user namespace.
    if fresh
        && mounts::mount(
            Some(Path::new("sysfs")),
            target,
            Some("sysfs"),
            ro,
            None,
            "mounting sysfs",
        )
        .is_ok()
    {
        return Ok(());
    }
    mounts::bind(Path::new("/sys"), target, "binding /sys")?;
    mounts::add_attrs(
        target,
        ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        true,
        "making /sys read-only",
    )
}

fn pivot_root(root: &Path) -> Result<(), StepError> {
    let c_root = mounts::cpath(root)?;
    // SAFETY: all arguments are valid C strings; pivot_root(".", ".") stacks the old root
    // on the new one, and the detach below removes it (the trick runc uses, which needs no
    // directory for the old root inside a read-only image).
    unsafe {
        if libc::chdir(c_root.as_ptr()) != 0 {
            return Err(StepError::os(format_args!("entering {}", root.display())));
        }
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0 {
            return Err(StepError::os("pivot_root"));
        }
        if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
            return Err(StepError::os("detaching the old root"));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(StepError::os("entering the new root"));
        }
    }
    Ok(())
}

fn loopback_up() -> Result<(), StepError> {
    // SAFETY: socket/ioctl/close are called with a zeroed ifreq holding a NUL-terminated name.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(StepError::os("opening a socket to configure lo"));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let ok = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == 0 && {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) == 0
        };
        let err = StepError::os("bringing up the loopback interface");
        libc::close(sock);
        if !ok {
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("real/srv")).unwrap();
        symlink("/real/srv", root.join("srv")).unwrap();
        symlink("../../../../etc", root.join("escape")).unwrap();
        symlink("/", root.join("abs")).unwrap();
        assert_eq!(resolve_in_root(root, "/srv"), root.join("real/srv"));
        assert_eq!(
            resolve_in_root(root, "/escape/passwd"),
            root.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(root, "/abs/../../x"), root.join("x"));
        assert_eq!(
            resolve_in_root(root, "/missing/dir"),
            root.join("missing/dir")
        );
    }

    #[test]
    fn symlink_loops_end() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/b", dir.path().join("a")).unwrap();
        symlink("/a", dir.path().join("b")).unwrap();
        let resolved = resolve_in_root(dir.path(), "/a/x");
        assert!(resolved.starts_with(dir.path()));
    }

    #[test]
    fn plan_order_and_overlay_choice() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for d in ["proc", "dev", "tmp"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let mut spec = ContainerSpec::new(&root, vec!["/bin/true".into()]);
        spec.scratch = Some(dir.path().to_path_buf());
        assert_eq!(missing_mount_points(&spec), vec!["/srv".to_string()]);
        fs::create_dir(root.join("srv")).unwrap();
        assert!(missing_mount_points(&spec).is_empty());
        spec.net = NetMode::None;
        spec.hostname = Some("box".into());
        let plan = plan(&spec, None, None).unwrap();
        let kinds: Vec<&str> = plan
            .ops
            .iter()
            .map(|op| match op {
                Op::BindRoot { .. } => "root",
                Op::OverlayRoot { .. } => "overlay",
                Op::Proc => "proc",
                Op::Dev => "dev",
                Op::Sys { fresh: true } => "sysfs",
                Op::Sys { fresh: false } => "sys-bind",
                Op::Tmpfs { .. } => "tmp",
                Op::Bind { target, .. } if target.starts_with("/etc/") => "etc",
                Op::Bind { .. } => "bind",
                Op::RootAttrs { read_only: true } => "ro",
                Op::RootAttrs { read_only: false } => "rw",
                Op::PivotRoot => "pivot",
                Op::Hostname(_) => "hostname",
                Op::LoopbackUp => "lo",
            })
            .filter(|k| *k != "etc")
            .collect();
        assert_eq!(
            kinds,
            ["root", "proc", "dev", "sysfs", "tmp", "bind", "ro", "pivot", "hostname", "lo"]
        );
    }

    #[test]
    fn missing_scratch_is_an_error_before_any_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = ContainerSpec::new(dir.path(), vec!["/bin/true".into()]);
        spec.scratch = Some(dir.path().join("nope"));
        let err = plan(&spec, None, None).unwrap_err().to_string();
        assert!(
            err.contains("scratch directory") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn overlay_options_are_escaped() {
        assert_eq!(overlay_escape(Path::new("/a,b:c")), "/a\\,b\\:c");
    }
}
