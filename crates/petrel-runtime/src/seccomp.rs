//! The default seccomp filter: the system calls Docker's default profile denies to a
//! container without extra capabilities fail with `EPERM`; everything else is allowed.
//!
//! Docker's profile is an allow-list; petrel uses the equivalent deny-list, which is shorter
//! and does not break programs on system calls newer than the list. Deviations from Docker
//! (also in SECURITY.md): `personality` is allowed with any argument, system calls of a
//! foreign ABI (i386 or x32 on x86_64) fail with `ENOSYS`, and `clone3` fails with `ENOSYS`
//! (as in Docker) so the C library falls back to `clone`, whose namespace flags the filter
//! can inspect.
//!
//! The program is written here rather than built with a filter compiler: one filter that
//! finds a call with a binary search, where `seccompiler` emitted two filters of about 350
//! instructions each tested one call after another. The kernel compiles every filter and
//! runs it once per system call number at every container start; that cost 0.6 ms of a
//! 4 ms start on the benchmark machine.

use crate::error::{RuntimeError, StepError};

pub const BLOCKED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "clone (with namespace flags)",
    "clone3 (ENOSYS)",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "userfaultfd",
    "vhangup",
    "and on x86_64: \
    ioperm, iopl, lookup_dcookie, nfsservctl, _sysctl, sysfs, uselib, ustat",
];

fn denied() -> Vec<libc::c_long> {
    let mut list = vec![
        libc::SYS_acct,
        libc::SYS_add_key,
        libc::SYS_bpf,
        libc::SYS_clock_adjtime,
        libc::SYS_clock_settime,
        libc::SYS_delete_module,
        libc::SYS_fanotify_init,
        libc::SYS_finit_module,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fsopen,
        libc::SYS_fspick,
        libc::SYS_get_mempolicy,
        libc::SYS_init_module,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_io_uring_setup,
        libc::SYS_kcmp,
        libc::SYS_kexec_file_load,
        libc::SYS_kexec_load,
        libc::SYS_keyctl,
        libc::SYS_mbind,
        libc::SYS_mount,
        libc::SYS_mount_setattr,
        libc::SYS_move_mount,
        libc::SYS_move_pages,
        libc::SYS_name_to_handle_at,
        libc::SYS_open_by_handle_at,
        libc::SYS_open_tree,
        libc::SYS_perf_event_open,
        libc::SYS_pivot_root,
        libc::SYS_quotactl,
        libc::SYS_reboot,
        libc::SYS_request_key,
        libc::SYS_set_mempolicy,
        libc::SYS_setdomainname,
        libc::SYS_sethostname,
        libc::SYS_setns,
        libc::SYS_settimeofday,
        libc::SYS_swapoff,
        libc::SYS_swapon,
        libc::SYS_syslog,
        libc::SYS_umount2,
        libc::SYS_unshare,
        libc::SYS_userfaultfd,
        libc::SYS_vhangup,
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        libc::SYS_ioperm,
        libc::SYS_iopl,
        libc::SYS_lookup_dcookie,
        libc::SYS_nfsservctl,
        libc::SYS__sysctl,
        libc::SYS_sysfs,
        libc::SYS_uselib,
        libc::SYS_ustat,
    ]);
    list
}

const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
/// x32 system calls on x86_64 carry this bit in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
// Offsets in struct seccomp_data: nr, arch, then args[0] (its low word on little-endian).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0: u32 = 16;

const JA: u16 = 0x05;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The compiled filter, built by the caller before `clone` so the job only installs it.
pub(crate) struct Filters {
    program: Vec<libc::sock_filter>,
}

/// Where a system call's test sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allow,
    Eperm,
    Enosys,
    /// `clone`: EPERM if its flags ask for a namespace, else allow.
    CloneCheck,
}

/// An instruction whose jump targets are still verdicts, resolved once the tree is laid out.
enum Insn {
    Stmt(libc::sock_filter),
    /// `jeq nr`: to the verdict if equal, else the next instruction.
    Is(u32, Verdict),
    /// `jge pivot`: to `skip` instructions further if greater or equal, else the next.
    AtLeast(u32, usize),
    /// Unconditional jump to a verdict.
    Goto(Verdict),
}

/// Lays out a binary search over the sorted `(nr, verdict)` list: a `jge` at each split and
/// `jeq` tests at the leaves. The kernel runs the program for every system call and, when
/// a filter is installed, once per system call number to build its allow cache, so a few
/// comparisons per call instead of one per listed call is what keeps both cheap.
fn search_tree(list: &[(u32, Verdict)], out: &mut Vec<Insn>) {
    if list.len() <= 3 {
        out.extend(list.iter().map(|&(nr, v)| Insn::Is(nr, v)));
        out.push(Insn::Goto(Verdict::Allow));
        return;
    }
    let mid = list.len() / 2;
    let split = out.len();
    out.push(Insn::AtLeast(list[mid].0, 0));
    search_tree(&list[..mid], out);
    let skip = out.len() - split - 1;
    out[split] = Insn::AtLeast(list[mid].0, skip);
    search_tree(&list[mid..], out);
}

/// Builds the program:
///
/// ```text
///   arch != native          -> ENOSYS
///   nr has the x32 bit      -> ENOSYS
///   nr is a denied call     -> EPERM        (binary search over the numbers)
///   nr == clone             -> namespace flags in args[0] ? EPERM : ALLOW
///   nr == clone3            -> ENOSYS
///   otherwise               -> ALLOW
/// ```
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn build() -> Result<Filters, RuntimeError> {
    let mut list: Vec<(u32, Verdict)> = denied()
        .into_iter()
        .map(|nr| (nr as u32, Verdict::Eperm))
        .collect();
    list.push((libc::SYS_clone as u32, Verdict::CloneCheck));
    list.push((libc::SYS_clone3 as u32, Verdict::Enosys));
    list.sort_unstable_by_key(|e| e.0);
    list.dedup_by_key(|e| e.0);

    let mut body = vec![
        Insn::Stmt(stmt(LD_W_ABS, OFF_ARCH)),
        Insn::Is(AUDIT_ARCH, Verdict::Allow), // patched below: mismatch goes to ENOSYS
        Insn::Stmt(stmt(LD_W_ABS, OFF_NR)),
        Insn::AtLeast(X32_SYSCALL_BIT, 0), // patched below: to ENOSYS
    ];
    search_tree(&list, &mut body);
    // The verdict block, after the tree.
    let allow = body.len();
    let clone_check = allow + 1;
    let eperm = clone_check + 2;
    let enosys = eperm + 2;
    let target = |v: Verdict| match v {
        Verdict::Allow => allow,
        Verdict::Eperm => eperm,
        Verdict::Enosys => enosys,
        Verdict::CloneCheck => clone_check,
    };
    let offset = |from: usize, to: usize| -> Result<u8, RuntimeError> {
        u8::try_from(to - from - 1)
            .map_err(|_| RuntimeError::InvalidSpec("seccomp filter too long for BPF jumps".into()))
    };
    let mut program = Vec::with_capacity(enosys + 1);
    for (pc, insn) in body.iter().enumerate() {
        program.push(match *insn {
            Insn::Stmt(s) => s,
            // The arch test: equal goes on, anything else to ENOSYS.
            Insn::Is(k, Verdict::Allow) if pc == 1 => jump(JEQ_K, k, 0, offset(pc, enosys)?),
            Insn::Is(nr, v) => jump(JEQ_K, nr, offset(pc, target(v))?, 0),
            Insn::AtLeast(k, _) if pc == 3 => jump(JGE_K, k, offset(pc, enosys)?, 0),
            Insn::AtLeast(k, skip) => jump(
                JGE_K,
                k,
                u8::try_from(skip).map_err(|_| {
                    RuntimeError::InvalidSpec("seccomp filter too long for BPF jumps".into())
                })?,
                0,
            ),
            Insn::Goto(v) => stmt(JA, (target(v) - pc - 1) as u32),
        });
    }
    program.push(stmt(RET_K, RET_ALLOW));
    program.push(stmt(LD_W_ABS, OFF_ARG0));
    program.push(jump(JSET_K, NAMESPACE_FLAGS, 0, 1)); // flags set: EPERM; else the ALLOW after it
    program.push(stmt(RET_K, RET_ERRNO | libc::EPERM as u32));
    program.push(stmt(RET_K, RET_ALLOW));
    program.push(stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32));
    debug_assert_eq!(program.len(), enosys + 1);
    Ok(Filters { program })
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn build() -> Result<Filters, RuntimeError> {
    Err(RuntimeError::InvalidSpec(format!(
        "no seccomp filter for architecture {}; run with --no-seccomp",
        std::env::consts::ARCH
    )))
}

impl Filters {
    /// Installs the filter on the calling thread; needs `no_new_privs` set first.
    pub(crate) fn install(&self) -> Result<(), StepError> {
        let prog = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: prog points to a valid program that outlives the call; the kernel copies it.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
                0,
                0,
            )
        };
        if rc != 0 {
            return Err(StepError::os("installing the seccomp filter"));
        }
        Ok(())
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    /// Runs the program as the kernel would, over one system call.
    fn verdict(program: &[libc::sock_filter], arch: u32, nr: u32, arg0: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = program[pc];
            match ins.code {
                LD_W_ABS => {
                    acc = match ins.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        OFF_ARG0 => arg0,
                        other => panic!("load of offset {other}"),
                    };
                    pc += 1;
                }
                JEQ_K | JGE_K | JSET_K => {
                    let taken = match ins.code {
                        JEQ_K => acc == ins.k,
                        JGE_K => acc >= ins.k,
                        _ => acc & ins.k != 0,
                    };
                    pc += 1 + usize::from(if taken { ins.jt } else { ins.jf });
                }
                JA => pc += 1 + ins.k as usize,
                RET_K => return ins.k,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn verdicts() {
        let filters = build().unwrap();
        let p = &filters.program;
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let enosys = RET_ERRNO | libc::ENOSYS as u32;
        let nr = |n: libc::c_long| n as u32;
        assert_eq!(verdict(p, AUDIT_ARCH, nr(libc::SYS_getpid), 0), RET_ALLOW);
        assert_eq!(verdict(p, AUDIT_ARCH, nr(libc::SYS_mount), 0), eperm);
        assert_eq!(verdict(p, AUDIT_ARCH, nr(libc::SYS_unshare), 0), eperm);
        assert_eq!(verdict(p, AUDIT_ARCH, nr(libc::SYS_vhangup), 0), eperm);
        assert_eq!(verdict(p, AUDIT_ARCH, nr(libc::SYS_clone3), 0), enosys);
        let fork_flags = libc::SIGCHLD as u32;
        assert_eq!(
            verdict(p, AUDIT_ARCH, nr(libc::SYS_clone), fork_flags),
            RET_ALLOW
        );
        let userns = fork_flags | libc::CLONE_NEWUSER as u32;
        assert_eq!(verdict(p, AUDIT_ARCH, nr(libc::SYS_clone), userns), eperm);
        assert_eq!(verdict(p, 0x4000_0003, nr(libc::SYS_getpid), 0), enosys);
        assert_eq!(verdict(p, AUDIT_ARCH, X32_SYSCALL_BIT | 39, 0), enosys);
        // Every number: denied ones get EPERM, the rest (but clone and clone3) are allowed.
        let denied: Vec<u32> = denied().into_iter().map(|n| n as u32).collect();
        for n in 0..600u32 {
            let want = if denied.contains(&n) {
                eperm
            } else if n == libc::SYS_clone3 as u32 {
                enosys
            } else {
                RET_ALLOW
            };
            assert_eq!(verdict(p, AUDIT_ARCH, n, 0), want, "system call {n}");
        }
        assert!(p.len() < 200, "{} instructions", p.len());
        for (i, ins) in p.iter().enumerate() {
            assert!(
                i + 1 + usize::from(ins.jt.max(ins.jf)) <= p.len(),
                "jump out at {i}"
            );
        }
    }
}
